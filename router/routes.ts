// The route table: parsing and validation of the contract's RouteTable, the per-request version
// match (the version header, or the same key inside OpenTelemetry `baggage` headers), and the
// difference between two tables for the logs.
import { isIP } from 'node:net';
import type { Route, RouteTable } from '../contract/index.ts';

export type PortProtocol = RouteTable['ports'][number]['protocol'];

/** A route table that is not valid JSON or not the contract's shape; `message` names the problem. */
export class RouteTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteTableError';
  }
}

/** A table ready for per-request lookups. */
export interface CompiledTable {
  readonly table: RouteTable;
  /** The version header's name, lower-case (as Node gives header names). */
  readonly header: string;
  /** The same as bytes, for the HTTP/1.1 fast path's head parser. */
  readonly headerBytes: Buffer;
  readonly byVersion: ReadonlyMap<string, Route>;
  readonly ports: ReadonlyMap<number, PortProtocol>;
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

/**
 * Checks that `value` has the contract's shape and returns a clean copy (unknown fields dropped,
 * hosts trimmed). Throws RouteTableError naming the first problem.
 */
export function validateRouteTable(value: unknown): RouteTable {
  if (!isRecord(value)) throw new RouteTableError('the route table must be a JSON object');

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

  return { header, ports, defaultTarget, routes };
}

/** Parses JSON text (the ConfigMap's ROUTES_KEY, or the routes file) into a valid table. */
export function parseRouteTable(text: string): RouteTable {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RouteTableError(`the route table is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  return validateRouteTable(value);
}

export function compileTable(table: RouteTable): CompiledTable {
  return {
    table,
    header: table.header.toLowerCase(),
    headerBytes: Buffer.from(table.header.toLowerCase(), 'latin1'),
    byVersion: new Map(table.routes.map((route) => [route.version, route])),
    ports: new Map(table.ports.map((p) => [p.port, p.protocol])),
  };
}

/** Header values as Node gives them: HTTP/1 and HTTP/2 incoming headers both fit. */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

function decodeBaggageValue(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // a stray '%': compare the text as it came
  }
}

/**
 * The values of `key` in W3C baggage header values (`k1=v1;prop, k2=v2`), percent-decoded, in
 * order. Several baggage headers are all read; whitespace around members, keys and values is
 * ignored, properties after `;` are skipped, members without `=` are ignored. Keys are matched
 * case-insensitively, like the header name they mirror.
 */
export function baggageValues(baggage: string | readonly string[] | undefined, key: string): string[] {
  const found: string[] = [];
  if (baggage === undefined) return found;
  const wanted = key.toLowerCase();
  const headers = typeof baggage === 'string' ? [baggage] : baggage;
  for (const header of headers) {
    for (const member of header.split(',')) {
      const semicolon = member.indexOf(';');
      const pair = semicolon < 0 ? member : member.slice(0, semicolon);
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === wanted) {
        found.push(decodeBaggageValue(pair.slice(eq + 1).trim()));
      }
    }
  }
  return found;
}

function lookup(compiled: CompiledTable, value: string): Route | undefined {
  const exact = compiled.byVersion.get(value.trim());
  if (exact !== undefined || !value.includes(',')) return exact;
  // The header was sent more than once and Node joined the values with ", ".
  for (const part of value.split(',')) {
    const route = compiled.byVersion.get(part.trim());
    if (route !== undefined) return route;
  }
  return undefined;
}

/**
 * The route a request goes to: the version header if it names a route, else the first baggage
 * member with the header's key that names one; undefined means the default target.
 */
export function matchRoute(compiled: CompiledTable, headers: HeaderBag): Route | undefined {
  if (compiled.byVersion.size === 0) return undefined;
  const direct = headers[compiled.header];
  if (direct !== undefined) {
    for (const value of typeof direct === 'string' ? [direct] : direct) {
      const route = lookup(compiled, value);
      if (route !== undefined) return route;
    }
  }
  const baggage = headers.baggage;
  if (baggage === undefined) return undefined;
  for (const value of baggageValues(baggage, compiled.header)) {
    const route = compiled.byVersion.get(value);
    if (route !== undefined) return route;
  }
  return undefined;
}

/** What changed from one table to the next, for the logs. */
export interface TableDiff {
  added: Route[];
  removed: Route[];
  /** Same version, different target/session/user. */
  changed: { before: Route; after: Route }[];
  portsAdded: RouteTable['ports'];
  portsRemoved: RouteTable['ports'];
  header?: { before: string; after: string };
  defaultTarget?: { before: string; after: string };
}

function sameRoute(a: Route, b: Route): boolean {
  return a.target === b.target && a.session === b.session && a.user === b.user;
}

export function diffTables(before: RouteTable | undefined, after: RouteTable): TableDiff {
  const old = new Map((before?.routes ?? []).map((r) => [r.version, r]));
  const next = new Map(after.routes.map((r) => [r.version, r]));
  const diff: TableDiff = {
    added: after.routes.filter((r) => !old.has(r.version)),
    removed: [...old.values()].filter((r) => !next.has(r.version)),
    changed: [],
    portsAdded: [],
    portsRemoved: [],
  };
  for (const route of after.routes) {
    const prev = old.get(route.version);
    if (prev !== undefined && !sameRoute(prev, route)) diff.changed.push({ before: prev, after: route });
  }
  const key = (p: RouteTable['ports'][number]): string => `${p.port}/${p.protocol}`;
  const oldPorts = new Set((before?.ports ?? []).map(key));
  const newPorts = new Set(after.ports.map(key));
  diff.portsAdded = after.ports.filter((p) => !oldPorts.has(key(p)));
  diff.portsRemoved = (before?.ports ?? []).filter((p) => !newPorts.has(key(p)));
  if (before && before.header !== after.header) diff.header = { before: before.header, after: after.header };
  if (before && before.defaultTarget !== after.defaultTarget) {
    diff.defaultTarget = { before: before.defaultTarget, after: after.defaultTarget };
  }
  return diff;
}

/** Whether two valid tables route identically (port names included). */
export function sameTable(a: RouteTable | undefined, b: RouteTable): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/** `host:port`, with brackets around IPv6 literals. */
export function hostPort(hostName: string, port: number): string {
  return hostName.includes(':') ? `[${hostName}]:${port}` : `${hostName}:${port}`;
}
