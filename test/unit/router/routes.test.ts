// The route table: validation, version matching (header and W3C baggage) and table diffs.
import { describe, expect, it } from 'vitest';
import type { RouteTable } from '../../../contract/index.ts';
import { DEFAULT_VERSION_HEADER } from '../../../contract/index.ts';
import {
  RouteTableError,
  baggageValues,
  compileTable,
  diffTables,
  matchRoute,
  parseRouteTable,
  sameTable,
  validateRouteTable,
} from '../../../router/routes.ts';

const table: RouteTable = {
  header: DEFAULT_VERSION_HEADER,
  ports: [
    { port: 8080, name: 'http', protocol: 'http' },
    { port: 7070, protocol: 'tcp' },
  ],
  defaultTarget: 'echo.demo.svc.cluster.local',
  routes: [
    { version: 'A', target: 'echo-kt-a.demo.svc.cluster.local', session: 'sa', user: 'alice' },
    { version: 'B', target: 'echo-kt-b.demo.svc.cluster.local', session: 'sb', user: 'bob' },
    { version: 'with space', target: '10.0.0.7', session: 'sc', user: 'carol' },
  ],
};

function invalid(change: (t: Record<string, unknown>) => void): () => RouteTable {
  const copy = JSON.parse(JSON.stringify(table)) as Record<string, unknown>;
  change(copy);
  return () => validateRouteTable(copy);
}

describe('validateRouteTable', () => {
  it('accepts the contract shape and drops unknown fields', () => {
    const parsed = parseRouteTable(JSON.stringify({ ...table, extra: 1, routes: table.routes.map((r) => ({ ...r, note: 'x' })) }));
    expect(parsed).toEqual(table);
  });

  it('accepts IPv6 targets with or without brackets, and an empty route list', () => {
    const parsed = validateRouteTable({ ...table, defaultTarget: '[fd00::1]', routes: [{ ...table.routes[0], target: '::1' }] });
    expect(parsed.defaultTarget).toBe('fd00::1');
    expect(parsed.routes[0]?.target).toBe('::1');
    expect(validateRouteTable({ ...table, routes: [] }).routes).toEqual([]);
  });

  it('rejects what is not JSON', () => {
    expect(() => parseRouteTable('{"header":')).toThrow(/not valid JSON/);
  });

  it.each([
    ['not an object', () => validateRouteTable([]), /JSON object/],
    ['a header that is no header name', invalid((t) => (t.header = 'kt version')), /"header"/],
    ['no ports', invalid((t) => (t.ports = [])), /"ports"/],
    ['a port out of range', invalid((t) => (t.ports = [{ port: 70000, protocol: 'http' }])), /ports\[0\]\.port/],
    ['a port twice', invalid((t) => (t.ports = [{ port: 1, protocol: 'http' }, { port: 1, protocol: 'tcp' }])), /appears twice/],
    ['an unknown protocol', invalid((t) => (t.ports = [{ port: 1, protocol: 'udp' }])), /protocol/],
    ['a default target with a port', invalid((t) => (t.defaultTarget = 'echo:8080')), /defaultTarget/],
    ['a default target with a scheme', invalid((t) => (t.defaultTarget = 'http://echo')), /defaultTarget/],
    ['routes not an array', invalid((t) => (t.routes = {})), /"routes"/],
    ['an empty version', invalid((t) => ((t.routes as Record<string, unknown>[])[0]!.version = '')), /routes\[0\]\.version/],
    ['a version with spaces around', invalid((t) => ((t.routes as Record<string, unknown>[])[0]!.version = ' A')), /version/],
    ['a version twice', invalid((t) => ((t.routes as Record<string, unknown>[])[1]!.version = 'A')), /appears twice/],
    ['a route without session', invalid((t) => delete (t.routes as Record<string, unknown>[])[0]!.session), /session/],
    ['a route target with a path', invalid((t) => ((t.routes as Record<string, unknown>[])[0]!.target = 'a/b')), /target/],
  ])('rejects %s', (_name, run, message) => {
    expect(run).toThrow(RouteTableError);
    expect(run).toThrow(message);
  });
});

describe('baggageValues', () => {
  it('reads members, properties, whitespace and percent-encoding', () => {
    expect(baggageValues('foo=bar, kt-version=A;prop=1', 'kt-version')).toEqual(['A']);
    expect(baggageValues('  kt-version  =  B  ;  p  ', 'kt-version')).toEqual(['B']);
    expect(baggageValues('kt-version=with%20space,x=y', 'kt-version')).toEqual(['with space']);
    expect(baggageValues('kt-version=100%', 'kt-version')).toEqual(['100%']);
    expect(baggageValues('KT-Version=A', 'kt-version')).toEqual(['A']);
  });

  it('reads several headers and ignores malformed members', () => {
    expect(baggageValues(['a=1', 'b=2, kt-version=B'], 'kt-version')).toEqual(['B']);
    expect(baggageValues('kt-version, =x, ;kt-version=A, kt-versionX=A', 'kt-version')).toEqual([]);
    expect(baggageValues(undefined, 'kt-version')).toEqual([]);
    expect(baggageValues('', 'kt-version')).toEqual([]);
  });
});

describe('matchRoute', () => {
  const compiled = compileTable(table);

  it('routes by the version header', () => {
    expect(matchRoute(compiled, { 'kt-version': 'A' })?.user).toBe('alice');
    expect(matchRoute(compiled, { 'kt-version': ' B ' })?.user).toBe('bob');
    expect(matchRoute(compiled, {})).toBeUndefined();
    expect(matchRoute(compiled, { 'kt-version': 'Z' })).toBeUndefined();
    expect(matchRoute(compiled, { 'kt-version': 'a' })).toBeUndefined();
  });

  it('takes a known version out of a repeated header', () => {
    expect(matchRoute(compiled, { 'kt-version': 'Z, B' })?.user).toBe('bob');
    expect(matchRoute(compiled, { 'kt-version': ['Z', 'A'] })?.user).toBe('alice');
  });

  it('routes by baggage when the header names no route', () => {
    expect(matchRoute(compiled, { baggage: 'foo=bar, kt-version=A;prop=1' })?.user).toBe('alice');
    expect(matchRoute(compiled, { baggage: 'kt-version=with%20space' })?.user).toBe('carol');
    expect(matchRoute(compiled, { 'kt-version': 'Z', baggage: 'kt-version=B' })?.user).toBe('bob');
    expect(matchRoute(compiled, { 'kt-version': 'A', baggage: 'kt-version=B' })?.user).toBe('alice');
    expect(matchRoute(compiled, { baggage: 'other=A' })).toBeUndefined();
  });

  it('uses the table header name, case-insensitively', () => {
    const custom = compileTable({ ...table, header: 'X-Mesh-Version' });
    expect(matchRoute(custom, { 'x-mesh-version': 'A' })?.user).toBe('alice');
    expect(matchRoute(custom, { 'kt-version': 'A' })).toBeUndefined();
    expect(matchRoute(custom, { baggage: 'x-mesh-version=B' })?.user).toBe('bob');
  });
});

describe('diffTables', () => {
  it('names added, removed and changed routes and ports', () => {
    const next: RouteTable = {
      ...table,
      ports: [{ port: 8080, name: 'http', protocol: 'http' }, { port: 9090, protocol: 'http' }],
      defaultTarget: 'echo2.demo',
      routes: [
        { version: 'A', target: 'elsewhere', session: 'sa', user: 'alice' },
        { version: 'D', target: 'echo-kt-d', session: 'sd', user: 'dave' },
      ],
    };
    const diff = diffTables(table, next);
    expect(diff.added.map((r) => r.version)).toEqual(['D']);
    expect(diff.removed.map((r) => r.version)).toEqual(['B', 'with space']);
    expect(diff.changed.map((c) => [c.before.target, c.after.target])).toEqual([['echo-kt-a.demo.svc.cluster.local', 'elsewhere']]);
    expect(diff.portsAdded).toEqual([{ port: 9090, protocol: 'http' }]);
    expect(diff.portsRemoved).toEqual([{ port: 7070, protocol: 'tcp' }]);
    expect(diff.defaultTarget).toEqual({ before: 'echo.demo.svc.cluster.local', after: 'echo2.demo' });
    expect(diff.header).toBeUndefined();
  });

  it('treats the first table as all added', () => {
    expect(diffTables(undefined, table).added).toHaveLength(3);
    expect(sameTable(undefined, table)).toBe(false);
    expect(sameTable(table, JSON.parse(JSON.stringify(table)) as RouteTable)).toBe(true);
  });
});
