// The laptop's probe (contract ROUTER_PROBE): a request carrying the probe header is answered by
// the router itself, with its pod name, and never reaches a backend; on the fast path (one
// connection, interleaved with routed requests, pipelined, Connection: close, HTTP/1.0), through
// node:http (a probe with a body, the `native` forwarder) and over HTTP/2. A draining router
// still answers, with Connection: close like every other answer then. And the laptop's side
// (plugins/mesh/switch.ts probeRouter, over a stand-in for the tunnel): a router's answer names
// its pod; a real pod's answer, a refusal or silence count as not routed.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { Http2Server } from 'node:http2';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTER_PROBE } from '../../../contract/index.ts';
import type { RouteTable } from '../../../contract/index.ts';
import { startRouter } from '../../../router/router.ts';
import type { RouterHandle } from '../../../router/router.ts';
import type { Http1Forwarder } from '../../../router/http-router.ts';
import { MESH_SWITCH_TIMING, probeRouter } from '../../../plugins/mesh/switch.ts';
import type { Tunnel } from '../../../plugins/tunnel/tunnel.ts';
import { HOST, fixedSource, listenLoopback } from './fixtures.ts';

const PORT = 8080;
const POD = 'echo-kt-router-5d8f-abcde';
const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: PORT, protocol: 'http' }],
  defaultTarget: 'real.demo',
  routes: [{ version: 'A', target: 'a.demo', session: 'sa', user: 'alice' }],
};
const PROBE = `${ROUTER_PROBE.method} ${ROUTER_PROBE.path} HTTP/1.1\r\nHost: echo\r\n${ROUTER_PROBE.header}: 1\r\n`;

let real: Server;
let devA: Server;
/** Developer A's backend speaking HTTP/2 (cleartext), for the HTTP/2 test's router. */
let devA2: Http2Server;
/** Requests the backends saw, as `pod method path`. */
const seen: string[] = [];
const routers: RouterHandle[] = [];

function backend(pod: string): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push(`${pod} ${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end(pod));
  });
}

async function router(forwarder: Http1Forwarder = 'fast', h2 = false): Promise<RouterHandle> {
  const ports: Record<string, number> = { 'real.demo': await portOf(real), 'a.demo': h2 ? await listenLoopback(devA2) : await portOf(devA) };
  const r = await startRouter({
    source: fixedSource(table),
    host: HOST,
    healthPort: 0,
    listenPort: () => 0,
    dial: (host) => ({ host: HOST, port: ports[host] ?? 1 }),
    http1Forwarder: forwarder,
    podName: POD,
  });
  await r.ready();
  routers.push(r);
  return r;
}

async function portOf(server: Server): Promise<number> {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : listenLoopback(server);
}

/** Writes `bytes` on one connection and collects what comes back until the router closes it or `until` matches. */
async function exchange(r: RouterHandle, bytes: string, until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  const socket = connect(r.ports.traffic.get(PORT)!, HOST);
  let text = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.write(bytes);
  const end = Date.now() + 5000;
  while (!closed && !(until?.(text) ?? false) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5));
  const wasClosed = closed;
  socket.destroy();
  return { text, closed: wasClosed };
}

const count = (text: string, what: string): number => text.split(what).length - 1;
const probeAnswer = `HTTP/1.1 204 No Content\r\n${ROUTER_PROBE.podHeader}: ${POD}\r\n`;

beforeAll(async () => {
  real = backend('real');
  devA = backend('dev-a');
  devA2 = createH2Server((req, res) => {
    seen.push(`dev-a ${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('dev-a'));
  });
  await listenLoopback(real);
  await listenLoopback(devA);
});

afterAll(async () => {
  for (const r of routers) await r.close(100);
  real?.close();
  devA?.close();
  devA2?.close();
});

describe('the router answers the laptop\'s probe itself', () => {
  it('fast path: probes and routed requests alternate on one kept-alive connection; no probe reaches a backend', async () => {
    const r = await router();
    seen.length = 0;
    const marked = 'GET /marked HTTP/1.1\r\nHost: echo\r\nkt-version: A\r\n\r\n';
    const { text, closed } = await exchange(r, `${PROBE}\r\n`, (t) => t.includes('\r\n\r\n'));
    expect(closed).toBe(false);
    expect(text).toBe(`${probeAnswer}\r\n`);
    // Pipelined: a probe between two routed requests, then a marked probe (the mark changes nothing).
    const mixed = await exchange(r, `GET /one HTTP/1.1\r\nHost: echo\r\n\r\n${PROBE}\r\n${marked}${PROBE}kt-version: A\r\n\r\n`, (t) => count(t, ROUTER_PROBE.podHeader) === 2 && t.includes('dev-a'));
    expect(mixed.closed).toBe(false);
    expect(count(mixed.text, probeAnswer)).toBe(2);
    expect(mixed.text.indexOf('real')).toBeLessThan(mixed.text.indexOf(probeAnswer));
    expect(mixed.text.indexOf('dev-a')).toBeLessThan(mixed.text.lastIndexOf(probeAnswer));
    expect(seen).toEqual(['real GET /one', 'dev-a GET /marked']);
  });

  it('fast path: Connection: close and HTTP/1.0 get the answer and then the end of the connection', async () => {
    const r = await router();
    seen.length = 0;
    const close = await exchange(r, `${PROBE}Connection: close\r\n\r\nGET /after HTTP/1.1\r\nHost: echo\r\n\r\n`);
    expect(close.closed).toBe(true);
    expect(close.text).toBe(`${probeAnswer}connection: close\r\n\r\n`);
    const old = await exchange(r, `${ROUTER_PROBE.method} ${ROUTER_PROBE.path} HTTP/1.0\r\n${ROUTER_PROBE.header}: 1\r\nConnection: keep-alive\r\n\r\n`);
    expect(old.closed).toBe(true);
    expect(old.text).toBe(`${probeAnswer}connection: close\r\n\r\n`);
    expect(seen).toEqual([]);
  });

  it('node:http: a probe with a body, and every probe with the native forwarder, is answered too', async () => {
    const fast = await router();
    const native = await router('native');
    seen.length = 0;
    const withBody = await exchange(fast, `${PROBE}content-length: 5\r\n\r\nhello`, (t) => t.includes('\r\n\r\n'));
    expect(withBody.text).toMatch(/^HTTP\/1\.1 204 No Content\r\n/);
    expect(withBody.text.toLowerCase()).toContain(`${ROUTER_PROBE.podHeader}: ${POD}`);
    const viaNode = await exchange(native, `${PROBE}\r\nGET /two HTTP/1.1\r\nHost: echo\r\n\r\n`, (t) => t.includes('real'));
    expect(viaNode.text.toLowerCase()).toContain(`${ROUTER_PROBE.podHeader}: ${POD}`);
    expect(seen).toEqual(['real GET /two']);
  });

  it('HTTP/2: the probe stream is answered 204 with the pod name; other streams are routed', async () => {
    const r = await router('fast', true);
    seen.length = 0;
    const session = h2connect(`http://${HOST}:${r.ports.traffic.get(PORT)}`);
    const ask = (headers: Record<string, string>): Promise<{ status: number; pod: string | undefined; body: string }> => new Promise((resolve, reject) => {
      const stream = session.request({ ':method': ROUTER_PROBE.method, ':path': ROUTER_PROBE.path, ...headers });
      let body = '';
      let status = 0;
      let pod: string | undefined;
      stream.on('response', (h) => {
        status = Number(h[':status']);
        pod = h[ROUTER_PROBE.podHeader] as string | undefined;
      });
      stream.on('data', (d: Buffer) => (body += d.toString()));
      stream.on('end', () => resolve({ status, pod, body }));
      stream.on('error', reject);
      stream.end();
    });
    expect(await ask({ [ROUTER_PROBE.header]: '1' })).toEqual({ status: 204, pod: POD, body: '' });
    expect(await ask({ 'kt-version': 'A' })).toMatchObject({ status: 200, body: 'dev-a' });
    session.close();
    await once(session, 'close');
    expect(seen).toEqual([`dev-a ${ROUTER_PROBE.method} ${ROUTER_PROBE.path}`]);
  });

  it('while draining, a probe is still answered, with Connection: close', async () => {
    const r = await router();
    const draining = r.drain(300, 100);
    const { text, closed } = await exchange(r, `${PROBE}\r\n`);
    expect(closed).toBe(true);
    expect(text).toBe(`${probeAnswer}connection: close\r\n\r\n`);
    await draining;
  });
});

describe('the laptop\'s probe (probeRouter)', () => {
  /** A tunnel whose dial opens a loopback connection to the port asked for. */
  const loopback = { dial: (_host: string, port: number) => new Promise<Socket>((resolve, reject) => {
    const socket = connect(port, HOST, () => resolve(socket));
    socket.once('error', reject);
  }) } as unknown as Tunnel;

  it('names the router pod that answered; a real pod, a closed port and a silent one (within its bound) are not a router', async () => {
    const r = await router();
    seen.length = 0;
    expect(await probeRouter(loopback, HOST, r.ports.traffic.get(PORT)!)).toBe(POD);
    expect(await probeRouter(loopback, HOST, await portOf(real))).toBeUndefined();
    // The real pod got the harmless request the contract promises.
    expect(seen).toEqual([`real ${ROUTER_PROBE.method} ${ROUTER_PROBE.path}`]);
    const closed = createServer();
    const closedPort = await listenLoopback(closed);
    closed.close();
    await once(closed, 'close');
    expect(await probeRouter(loopback, HOST, closedPort)).toBeUndefined();
    const silent = createServer(() => {});
    const silentPort = await listenLoopback(silent);
    const before = MESH_SWITCH_TIMING.probeMs;
    MESH_SWITCH_TIMING.probeMs = 200;
    try {
      expect(await probeRouter(loopback, HOST, silentPort)).toBeUndefined();
    } finally {
      MESH_SWITCH_TIMING.probeMs = before;
      silent.closeAllConnections();
      silent.close();
    }
  });
});
