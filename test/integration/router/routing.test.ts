// The router on loopback in front of three echo workloads: the real pods (default), developer A and
// developer B, plus a version C whose backend is down. The table comes from a temp file; table
// host names are dialled at the echo servers' loopback ports. Covers HTTP/1.1 (keep-alive,
// baggage), WebSocket, HTTP/2 and gRPC, raw TCP, failures, health, and live table changes under load.
import { once } from 'node:events';
import { Agent, request as httpRequestRaw } from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http2';
import { createServer } from 'node:net';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, ROUTER_STATUS } from '../../../contract/index.ts';
import type { RouteTable } from '../../../contract/index.ts';
import { OWN_CONTRACT } from '../../../contract/version.ts';
import { fileRouteSource } from '../../../router/route-source.ts';
import { startRouter } from '../../../router/router.ts';
import type { RouterHandle } from '../../../router/router.ts';
import { createLogger } from '../../../runtime/log.ts';
import { POD_HEADER, grpcStream, grpcUnary, httpGet, tcpEcho, wsHello } from '../../workloads/echo/client.ts';
import { startEcho } from '../../workloads/echo/echo.ts';
import type { EchoServers } from '../../workloads/echo/echo.ts';
import { silentLogger } from '../../workloads/echo/log.ts';

const HOST = '127.0.0.1';
const PORT = { http: 8080, grpc: 9090, tcp: 7070 } as const;
const NAME = {
  default: 'echo.demo.svc.cluster.local',
  a: 'echo-kt-a.demo.svc.cluster.local',
  b: 'echo-kt-b.demo.svc.cluster.local',
  c: 'echo-kt-c.demo.svc.cluster.local',
} as const;
const POD = { default: 'echo-real-pod', a: 'echo-dev-a', b: 'echo-dev-b' } as const;

const route = {
  a: { version: 'A', target: NAME.a, session: 'sess-a', user: 'alice' },
  b: { version: 'B', target: NAME.b, session: 'sess-b', user: 'bob' },
  c: { version: 'C', target: NAME.c, session: 'sess-c', user: 'carol' },
};
const table: RouteTable = {
  header: 'kt-version',
  ports: [
    { port: PORT.http, name: 'http', protocol: 'http' },
    { port: PORT.grpc, name: 'grpc', protocol: 'http' },
    { port: PORT.tcp, name: 'raw', protocol: 'tcp' },
  ],
  defaultTarget: NAME.default,
  routes: [route.a, route.b, route.c],
};

let dir: string;
let routesPath: string;
let router: RouterHandle;
let echo: Record<'default' | 'a' | 'b', EchoServers>;
let closedPort: number;
const dials: string[] = [];
const logs: Record<string, unknown>[] = [];

/** A loopback port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

function writeTable(next: RouteTable | string): void {
  const tmp = `${routesPath}.tmp`;
  writeFileSync(tmp, typeof next === 'string' ? next : JSON.stringify(next, null, 2));
  renameSync(tmp, routesPath);
}

async function eventually<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const port = (p: number): number => router.ports.traffic.get(p)!;
const httpUrl = (path = '/'): string => `http://${HOST}:${port(PORT.http)}${path}`;
const grpcAddress = (): string => `${HOST}:${port(PORT.grpc)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kt-router-routing-'));
  routesPath = join(dir, 'routes.json');
  const start = (pod: string): Promise<EchoServers> => startEcho({ host: HOST, httpPort: 0, grpcPort: 0, tcpPort: 0, pod, log: silentLogger });
  const [d, a, b] = await Promise.all([start(POD.default), start(POD.a), start(POD.b)]);
  echo = { default: d, a, b };
  closedPort = await freePort();
  writeTable(table);
  const byName: Record<string, EchoServers> = { [NAME.default]: d, [NAME.a]: a, [NAME.b]: b };
  const log = createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  router = await startRouter({
    source: fileRouteSource({ path: routesPath, log, pollMs: 200 }),
    log,
    host: HOST,
    healthPort: 0,
    listenPort: () => 0,
    failureLogIntervalMs: 60_000,
    dial: (host, p) => {
      dials.push(`${host}:${p}`);
      const servers = byName[host];
      if (servers === undefined) return { host: HOST, port: closedPort };
      const bound = p === PORT.http ? servers.http.port : p === PORT.grpc ? servers.grpc.port : servers.tcp.port;
      return { host: HOST, port: bound };
    },
  });
  await router.ready();
});

afterAll(async () => {
  await router?.close(1000);
  await Promise.all(Object.values(echo ?? {}).map((e) => e.close(500)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('HTTP/1.1', () => {
  it('routes by the version header, and everything else to the default target', async () => {
    const pod = async (headers: Record<string, string | string[]>): Promise<string | undefined> => (await httpGet(httpUrl('/p?q=1'), headers)).body?.pod;
    expect(await pod({})).toBe(POD.default);
    expect(await pod({ 'kt-version': 'A' })).toBe(POD.a);
    expect(await pod({ 'kt-version': 'B' })).toBe(POD.b);
    expect(await pod({ 'kt-version': 'nobody' })).toBe(POD.default);
    expect(await pod({ 'KT-Version': 'A' })).toBe(POD.a);
  });

  it('routes by OpenTelemetry baggage', async () => {
    const pod = async (headers: Record<string, string | string[]>): Promise<string | undefined> => (await httpGet(httpUrl(), headers)).body?.pod;
    expect(await pod({ baggage: 'foo=bar, kt-version=A;prop=1' })).toBe(POD.a);
    expect(await pod({ baggage: ['userId=alice', 'kt-version = B'] })).toBe(POD.b);
    expect(await pod({ baggage: 'kt-version=nobody' })).toBe(POD.default);
  });

  it('passes method, path, headers and body through', async () => {
    const reply = await new Promise<{ status: number; body: string; pod: string | undefined }>((resolve, reject) => {
      const req = httpRequestRaw(httpUrl('/upload?x=1'), { method: 'POST', headers: { 'kt-version': 'B', 'x-extra': 'yes' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), pod: res.headers[POD_HEADER] as string }));
      });
      req.on('error', reject);
      req.end('a'.repeat(200_000));
    });
    expect(reply.status).toBe(200);
    expect(reply.pod).toBe(POD.b);
    const echoed = JSON.parse(reply.body) as { method: string; path: string; body: string; headers: Record<string, string> };
    expect(echoed).toMatchObject({ method: 'POST', path: '/upload?x=1' });
    expect(echoed.body).toHaveLength(200_000);
    expect(echoed.headers['x-extra']).toBe('yes');
  });

  it('decides per request on one kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const order = ['A', undefined, 'B', 'A', 'nobody', 'B', undefined, 'A'] as const;
      const expected = { A: POD.a, B: POD.b, nobody: POD.default, none: POD.default };
      for (const [i, version] of order.entries()) {
        const reply = await httpGet(httpUrl(`/ka/${i}`), version ? { 'kt-version': version } : {}, 5000, agent);
        expect(reply.body?.pod, `request ${i} (${version})`).toBe(expected[version ?? 'none']);
        expect(reply.reusedSocket).toBe(i > 0);
      }
    } finally {
      agent.destroy();
    }
  });
});

describe('WebSocket', () => {
  it('routes the upgrade by its headers', async () => {
    expect((await wsHello(`ws://${HOST}:${port(PORT.http)}/ws`, { 'kt-version': 'B' })).pod).toBe(POD.b);
    expect((await wsHello(`ws://${HOST}:${port(PORT.http)}/ws`, { baggage: 'kt-version=A' })).pod).toBe(POD.a);
    expect((await wsHello(`ws://${HOST}:${port(PORT.http)}/ws`)).pod).toBe(POD.default);
  });
});

describe('gRPC and HTTP/2', () => {
  it('routes unary calls by metadata', async () => {
    const a = await grpcUnary(grpcAddress(), 'to A', { 'kt-version': 'A' });
    expect(a).toMatchObject({ pod: POD.a, message: 'to A' });
    expect(a.metadata['kt-version']).toBe('A');
    expect((await grpcUnary(grpcAddress(), 'to default')).pod).toBe(POD.default);
    expect((await grpcUnary(grpcAddress(), 'baggage', { baggage: 'kt-version=B' })).pod).toBe(POD.b);
  });

  it('routes server streams by metadata', async () => {
    const replies = await grpcStream(grpcAddress(), 'stream', 5, { 'kt-version': 'A' });
    expect(replies.map((r) => [r.pod, r.index])).toEqual([0, 1, 2, 3, 4].map((i) => [POD.a, i]));
    expect((await grpcStream(grpcAddress(), 'stream', 2)).map((r) => r.pod)).toEqual([POD.default, POD.default]);
  });

  it('passes trailers, and trailers-only statuses, intact', async () => {
    const session = h2connect(`http://${grpcAddress()}`);
    try {
      const call = (path: string, version: string): Promise<{ headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | undefined; data: Buffer }> =>
        new Promise((resolve, reject) => {
          const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'kt-version': version });
          let headers: IncomingHttpHeaders = {};
          let trailers: IncomingHttpHeaders | undefined;
          const chunks: Buffer[] = [];
          stream.on('response', (h) => (headers = h));
          stream.on('trailers', (t) => (trailers = t));
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve({ headers, trailers, data: Buffer.concat(chunks) }));
          stream.on('error', reject);
          // EchoRequest{message: "hi"}: field 1, length 2.
          const message = Buffer.from([0x0a, 0x02, 0x68, 0x69]);
          const frame = Buffer.alloc(5);
          frame.writeUInt32BE(message.length, 1);
          stream.end(Buffer.concat([frame, message]));
        });
      const ok = await call('/kt.echo.Echo/Unary', 'B');
      expect(ok.headers[':status']).toBe(200);
      expect(ok.data.toString('latin1')).toContain(POD.b);
      expect(ok.trailers?.['grpc-status']).toBe('0');
      const missing = await call('/kt.echo.Echo/NoSuchMethod', 'A');
      expect(missing.headers['grpc-status']).toBe('12'); // UNIMPLEMENTED, trailers-only
      expect(missing.trailers).toBeUndefined();
    } finally {
      session.close();
    }
  });
});

describe('TCP', () => {
  it('pipes a tcp port to the default target whatever is sent', async () => {
    const before = dials.length;
    const payload = Buffer.from('GET / HTTP/1.1\r\nkt-version: A\r\n\r\n'.repeat(1000));
    expect((await tcpEcho(HOST, port(PORT.tcp), payload)).equals(payload)).toBe(true);
    expect(dials.slice(before)).toEqual([`${NAME.default}:${PORT.tcp}`]);
  });
});

describe('a version whose backend is down', () => {
  const message = (p: number): string => `kt router: version "C" (session sess-c by carol) unreachable at ${NAME.c}:${p}: ECONNREFUSED`;

  it('answers HTTP with 502 and a sentence naming the version and why', async () => {
    const reply = await httpGet(httpUrl('/'), { 'kt-version': 'C' });
    expect(reply.status).toBe(502);
    expect(reply.text.trim()).toBe(message(PORT.http));
    await expect(wsHello(`ws://${HOST}:${port(PORT.http)}/ws`, { 'kt-version': 'C' })).rejects.toThrow(/502/);
  });

  it('answers gRPC with UNAVAILABLE and the same sentence', async () => {
    const err = await grpcUnary(grpcAddress(), 'x', { 'kt-version': 'C' }).then(
      () => undefined,
      (e: unknown) => e as { code: number; details: string },
    );
    expect(err?.code).toBe(14);
    expect(err?.details).toBe(message(PORT.grpc));
  });

  it('logs the failure once per interval, not once per request', async () => {
    for (let i = 0; i < 5; i++) await httpGet(httpUrl('/'), { 'kt-version': 'C' });
    const lines = logs.filter((l) => l.msg === 'backend unreachable' && l.protocol === 'http');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', version: 'C', session: 'sess-c', user: 'carol', reason: 'ECONNREFUSED' });
  });
});

describe('health', () => {
  it('serves /healthz, /readyz and /routes', async () => {
    const base = `http://${HOST}:${router.ports.health}`;
    expect((await httpGet(`${base}/healthz`)).status).toBe(200);
    const ready = await httpGet(`${base}/readyz`);
    expect([ready.status, ready.text.trim()]).toEqual([200, 'ready']);
    const routes = await httpGet(`${base}/routes`);
    expect(routes.headers['content-type']).toBe('application/json');
    expect(JSON.parse(routes.text)).toEqual({ ...router.table(), [ROUTER_STATUS.versionField]: CONTRACT_VERSION });
    expect((await httpGet(`${base}/nope`)).status).toBe(404);
  });
});

describe('live table changes', () => {
  it('keeps the last good table when the file turns invalid', async () => {
    const errorsBefore = logs.filter((l) => l.msg === 'route table invalid; keeping the current table').length;
    writeTable('{"header": "kt-version", "ports": [');
    await eventually('the invalid table to be reported', () =>
      logs.filter((l) => l.msg === 'route table invalid; keeping the current table').length > errorsBefore ? true : undefined,
    );
    expect(router.table()).toEqual(table);
    expect((await httpGet(httpUrl(), { 'kt-version': 'B' })).body?.pod).toBe(POD.b);
    writeTable(table);
  });

  it('drops route B under steady keep-alive load without failing a request', async () => {
    const CLIENTS = 20;
    const DURATION_MS = 3000;
    const CHANGE_AT_MS = 1000;
    const versions = ['A', 'B', undefined] as const;
    type Outcome = { version: string; pod: string | undefined; status: number; startedAt: number };
    const outcomes: Outcome[][] = [];
    const failures: string[] = [];
    let changedAt = Infinity;
    const started = Date.now();

    const client = async (id: number): Promise<void> => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const mine: Outcome[] = [];
      outcomes.push(mine);
      try {
        for (let i = id; Date.now() - started < DURATION_MS; i++) {
          const version = versions[i % versions.length];
          const startedAt = Date.now();
          try {
            const reply = await httpGet(httpUrl(`/load/${id}/${i}`), version ? { 'kt-version': version } : {}, 5000, agent);
            mine.push({ version: version ?? 'none', pod: reply.body?.pod, status: reply.status, startedAt });
          } catch (err) {
            failures.push(`${version}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const change = (async () => {
      await new Promise((resolve) => setTimeout(resolve, CHANGE_AT_MS));
      writeTable({ ...table, routes: [route.a, route.c] });
      await eventually('the new table', () => (router.table()?.routes.some((r) => r.version === 'B') ? undefined : true));
      changedAt = Date.now();
    })();
    await Promise.all([...Array.from({ length: CLIENTS }, (_, id) => client(id)), change]);

    const all = outcomes.flat();
    expect(failures).toEqual([]);
    expect(all.length).toBeGreaterThan(CLIENTS * 10);
    expect(all.filter((o) => o.status !== 200)).toEqual([]);
    expect(all.filter((o) => o.version === 'A' && o.pod !== POD.a)).toEqual([]);
    expect(all.filter((o) => o.version === 'none' && o.pod !== POD.default)).toEqual([]);
    const b = all.filter((o) => o.version === 'B');
    expect(b.filter((o) => o.pod !== POD.b && o.pod !== POD.default)).toEqual([]);
    // B went to B before the change, to the default after it, and never back.
    expect(b.some((o) => o.pod === POD.b)).toBe(true);
    expect(b.some((o) => o.pod === POD.default)).toBe(true);
    expect(b.filter((o) => o.startedAt > changedAt + 50 && o.pod !== POD.default)).toEqual([]);
    for (const mine of outcomes) {
      const pods = mine.filter((o) => o.version === 'B').map((o) => o.pod);
      const firstDefault = pods.indexOf(POD.default);
      if (firstDefault >= 0) expect(pods.slice(firstDefault).every((p) => p === POD.default)).toBe(true);
    }
    const changed = logs.find((l) => l.msg === 'route table changed');
    expect(changed).toMatchObject({ added: [], removed: [{ version: 'B', target: NAME.b, session: 'sess-b', user: 'bob' }] });
  });

  it('opens a port the table adds and closes one it drops', async () => {
    writeTable({ ...table, ports: [...table.ports.filter((p) => p.port !== PORT.tcp), { port: 8081, protocol: 'http' }] });
    await eventually('port 8081', () => router.ports.traffic.get(8081));
    expect(router.ports.traffic.has(PORT.tcp)).toBe(false);
    expect(router.notReady()).toBeUndefined();
    writeTable(table);
    await eventually('port 7070 again', () => router.ports.traffic.get(PORT.tcp));
  });
});

// Last: the table changes here must not come before the ones the tests above look for in the logs.
describe('contract versions of the table', () => {
  it('refuses a table written by a newer contract MAJOR and keeps the last good one', async () => {
    const errorsBefore = logs.filter((l) => l.msg === 'route table invalid; keeping the current table').length;
    const newer = `${OWN_CONTRACT.major + 1}.0`;
    writeTable({ ...table, contract: newer, routes: [] });
    const line = await eventually('the newer table to be refused', () =>
      logs.filter((l) => l.msg === 'route table invalid; keeping the current table').at(errorsBefore),
    );
    expect(String(line.error)).toContain(`contract ${newer}`);
    expect(router.table()).toEqual(table);
    // A newer MINOR is read, its unknown fields ignored.
    writeTable(JSON.stringify({ ...table, contract: `${OWN_CONTRACT.major}.${OWN_CONTRACT.minor + 1}`, futureField: { x: 1 } }));
    await eventually('the newer MINOR table to load', () => (router.table()?.contract === `${OWN_CONTRACT.major}.${OWN_CONTRACT.minor + 1}` ? true : undefined));
    writeTable(table);
    await eventually('the table to be back', () => (router.table()?.contract === undefined ? true : undefined));
  });
});
