// The route table's one validator, used by every side that reads it: the router (what it loads),
// the laptop (what it joins and edits) and the shadow's self-healing (what it edits). A table that
// does not validate is an error naming the first problem, never taken for an empty one.
import { isIP } from 'node:net';
import { CONTRACT_VERSION, type Route, type RouteTable } from './index.ts';
import { ContractError, OWN_CONTRACT, compatibility, documentVersion, formatContractVersion, maxContractVersion, type ContractVersion } from './version.ts';

/** A route table that is not valid JSON, not the contract's shape, or from a newer MAJOR. */
export class RouteTableError extends ContractError {
  constructor(message: string) {
    super(message);
    this.name = 'RouteTableError';
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A host name or IP address (IPv6 with or without brackets); returns it without brackets. */
function host(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new RouteTableError(`${where} must be a non-empty host name`);
  const text = value.trim();
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare) !== 0) return bare;
  if (!DNS_NAME.test(text)) {
    throw new RouteTableError(`${where} must be a host name or IP address without scheme or port, not ${JSON.stringify(value)}`);
  }
  return text;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new RouteTableError(`${where} must be a string`);
  return value;
}

/** The table's writer version; throws when it is malformed or of a MAJOR newer than `own`. */
function tableVersion(value: unknown, own: ContractVersion): ContractVersion {
  let v: ContractVersion;
  try {
    v = documentVersion(value, '"contract"');
  } catch (err) {
    throw new RouteTableError((err as Error).message);
  }
  if (compatibility(v, own) === 'newer-major') {
    throw new RouteTableError(`the route table was written by a kt speaking contract ${formatContractVersion(v)}, whose MAJOR is newer than the ${formatContractVersion(own)} this side speaks, so it cannot be read safely`);
  }
  return v;
}

/**
 * Checks that `value` has the contract's shape and returns a clean copy (unknown fields dropped,
 * hosts trimmed). Throws RouteTableError naming the first problem; a table from a newer MAJOR
 * than `own` is one.
 */
export function validateRouteTable(value: unknown, own: ContractVersion = OWN_CONTRACT): RouteTable {
  if (!isRecord(value)) throw new RouteTableError('the route table must be a JSON object');
  tableVersion(value.contract, own);

  const header = value.header;
  if (typeof header !== 'string' || !TOKEN.test(header)) {
    throw new RouteTableError(`"header" must be an HTTP header name, not ${JSON.stringify(header)}`);
  }

  if (!Array.isArray(value.ports) || value.ports.length === 0) throw new RouteTableError('"ports" must be a non-empty array');
  const seenPorts = new Set<number>();
  const ports: RouteTable['ports'] = value.ports.map((entry: unknown, i) => {
    const where = `ports[${i}]`;
    if (!isRecord(entry)) throw new RouteTableError(`${where} must be an object`);
    const port = entry.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RouteTableError(`${where}.port must be a port number from 1 to 65535, not ${JSON.stringify(port)}`);
    }
    if (seenPorts.has(port)) throw new RouteTableError(`${where}.port ${port} appears twice`);
    seenPorts.add(port);
    const protocol = entry.protocol;
    if (protocol !== 'http' && protocol !== 'tcp') {
      throw new RouteTableError(`${where}.protocol must be "http" or "tcp", not ${JSON.stringify(protocol)}`);
    }
    const out: RouteTable['ports'][number] = { port, protocol };
    if (entry.name !== undefined) out.name = string(entry.name, `${where}.name`);
    return out;
  });

  const defaultTarget = host(value.defaultTarget, '"defaultTarget"');

  if (!Array.isArray(value.routes)) throw new RouteTableError('"routes" must be an array');
  const seenVersions = new Set<string>();
  const routes: Route[] = value.routes.map((entry: unknown, i) => {
    const where = `routes[${i}]`;
    if (!isRecord(entry)) throw new RouteTableError(`${where} must be an object`);
    const version = entry.version;
    if (typeof version !== 'string' || version === '' || version.trim() !== version || CONTROL.test(version)) {
      throw new RouteTableError(
        `${where}.version must be a non-empty string without surrounding spaces or control characters, not ${JSON.stringify(version)}`,
      );
    }
    if (seenVersions.has(version)) throw new RouteTableError(`${where}.version "${version}" appears twice`);
    seenVersions.add(version);
    return {
      version,
      target: host(entry.target, `${where}.target`),
      session: string(entry.session, `${where}.session`),
      user: string(entry.user, `${where}.user`),
    };
  });

  return { ...(value.contract !== undefined ? { contract: value.contract as string } : {}), header, ports, defaultTarget, routes };
}

/** Parses JSON text (the ConfigMap's ROUTES_KEY, or the routes file) into a valid table. */
export function parseRouteTable(text: string, own: ContractVersion = OWN_CONTRACT): RouteTable {
  return validateRouteTable(parseJson(text), own);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new RouteTableError(`the route table is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A table changed by this side, ready to write back over `rawText` (what was read): the writer
 * version raised to this side's, and the fields a newer MINOR added (which the validator dropped)
 * kept, at the top, in each port (by number) and in each route (by version, while its target,
 * session and user are unchanged). So an older kt editing a newer table loses nothing.
 */
export function writeBackRouteTable(rawText: string | undefined, next: RouteTable): RouteTable {
  const raw = rawText === undefined ? undefined : parseJson(rawText);
  const before = isRecord(raw) ? raw : {};
  const contract = formatContractVersion(maxContractVersion(documentVersion(isRecord(raw) ? raw.contract : CONTRACT_VERSION, '"contract"'), OWN_CONTRACT));
  const entries = (list: unknown): Record<string, unknown>[] => (Array.isArray(list) ? list.filter(isRecord) : []);
  const oldPorts = entries(before.ports);
  const oldRoutes = entries(before.routes);
  return {
    ...before,
    ...next,
    contract,
    ports: next.ports.map((p) => ({ ...oldPorts.find((o) => o.port === p.port), ...p })),
    routes: next.routes.map((r) => ({
      ...oldRoutes.find((o) => o.version === r.version && o.target === r.target && o.session === r.session && o.user === r.user),
      ...r,
    })),
  };
}
