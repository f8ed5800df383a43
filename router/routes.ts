// The route table in the router: the per-request version match (the version header, or the same
// key inside OpenTelemetry `baggage` headers), and the difference between two tables for the logs.
import type { Route, RouteTable } from '../contract/index.ts';

export type PortProtocol = RouteTable['ports'][number]['protocol'];

// The route table's shape and validation are the contract's (contract/route-table.ts, shared with
// the laptop and the shadow); re-exported here for the router's modules.
export { RouteTableError, parseRouteTable, validateRouteTable } from '../contract/route-table.ts';

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

export { hostPort } from '../runtime/host-port.ts';
