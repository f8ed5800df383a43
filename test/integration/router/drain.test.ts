// The router leaving on SIGTERM (RouterHandle.drain) on loopback: it keeps accepting for the
// linger, tells every kept-alive caller to reconnect (HTTP/1.1 `Connection: close`, HTTP/2
// GOAWAY), then stops accepting while requests in flight finish. A small TCP balancer stands in for
// the Service: it sends new connections to the router until "the endpoints moved", then straight to
// the real backend, as kube-proxy does; established connections stay where they were opened.
import { once } from 'node:events';
import { Agent, createServer as createHttpServer, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect, createServer as createTcpServer } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RouteTable } from '../../../contract/index.ts';
import { startRouter } from '../../../router/router.ts';
import type { RouterHandle } from '../../../router/router.ts';
import type { Http1Forwarder } from '../../../router/http-router.ts';
import { HOST, fixedSource, listenLoopback } from './fixtures.ts';

const PORT = { http: 8080, grpc: 9090 } as const;
const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: PORT.http, protocol: 'http' }, { port: PORT.grpc, protocol: 'http' }],
  defaultTarget: 'real.demo.svc.cluster.local',
  routes: [],
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The real pods: `/slow?ms=N` answers after N ms. */
const backend = createHttpServer({ keepAlive: true }, (req, res) => {
  const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? '0');
  setTimeout(() => res.end('real\n'), ms);
});
const backendH2 = createH2Server((req, res) => {
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? '0');
  setTimeout(() => res.end('real-h2\n'), ms);
});
const port = { backend: 0, backendH2: 0 };

beforeAll(async () => {
  port.backend = await listenLoopback(backend);
  port.backendH2 = await listenLoopback(backendH2);
});
afterAll(() => {
  backend.closeAllConnections();
  backend.close();
  backendH2.close();
});

async function routerWith(forwarder: Http1Forwarder): Promise<RouterHandle> {
  const router = await startRouter({
    source: fixedSource(table),
    host: HOST,
    healthPort: 0,
    listenPort: () => 0,
    dial: (_host, p) => ({ host: HOST, port: p === PORT.grpc ? port.backendH2 : port.backend }),
    http1Forwarder: forwarder,
  });
  await router.ready();
  return router;
}

interface Answer { status: number; body: string; headers: IncomingHttpHeaders }

function get(to: number, path: string, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    request({ host: HOST, port: to, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject).end();
  });
}

function h2get(session: ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (body += d));
    stream.on('end', () => resolve(body));
    stream.on('error', reject);
    stream.end();
  });
}

/** Stands in for a Service's ClusterIP: each new connection goes to whatever `target()` names now. */
async function balancer(target: () => number): Promise<{ port: number; connections: Map<number, number>; close: () => void }> {
  const sockets = new Set<Socket>();
  const connections = new Map<number, number>();
  const server = createTcpServer((client) => {
    const to = target();
    connections.set(to, (connections.get(to) ?? 0) + 1);
    const upstream = connect(to, HOST);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  return {
    port: await listenLoopback(server),
    connections,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.each<Http1Forwarder>(['fast', 'native'])('router drain, HTTP/1.1 forwarder %s', (forwarder) => {
  let router: RouterHandle;
  afterEach(async () => {
    await router.close(0);
  });

  it('is not ready at once, serves through the linger with Connection: close, then refuses new connections while a slow request finishes', async () => {
    router = await routerWith(forwarder);
    const listen = router.ports.traffic.get(PORT.http)!;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = await get(listen, '/before', agent);
    expect(before.headers.connection).not.toBe('close');

    const slow = get(listen, '/slow?ms=900', false);
    await sleep(50);
    const t0 = Date.now();
    const drained = router.drain(400, 5000);
    expect(router.notReady()).toBe('shutting down');

    // The kept-alive connection is told to go; a new one during the linger is still served.
    const reused = await get(listen, '/reused', agent);
    expect(reused).toMatchObject({ status: 200, body: 'real\n' });
    expect(reused.headers.connection).toBe('close');
    const fresh = await get(listen, '/fresh', false);
    expect(fresh).toMatchObject({ status: 200, body: 'real\n' });
    expect(fresh.headers.connection).toBe('close');

    await sleep(500);
    await expect(get(listen, '/late', false)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await slow).toMatchObject({ status: 200, body: 'real\n' });
    await drained;
    const took = Date.now() - t0;
    // Done once the slow request was, not at the end of the 5 s grace.
    expect(took).toBeLessThan(2500);
    agent.destroy();
  });

  it('a caller under keep-alive load while the endpoints move and the router drains sees no failure', async () => {
    router = await routerWith(forwarder);
    const listen = router.ports.traffic.get(PORT.http)!;
    let moved = false;
    const svc = await balancer(() => (moved ? port.backend : listen));
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const result = { ok: 0, failed: 0, errors: new Set<string>() };
    const end = Date.now() + 2000;
    const loop = async (): Promise<void> => {
      while (Date.now() < end) {
        try {
          const r = await get(svc.port, '/load', agent);
          if (r.status === 200 && r.body === 'real\n') result.ok++;
          else result.failed++;
        } catch (e) {
          result.failed++;
          result.errors.add((e as Error).message);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, loop));
    await sleep(400);
    // As the last developer out does: the endpoints move first, then the router gets SIGTERM.
    moved = true;
    const drained = router.drain(300, 3000);
    await load;
    await drained;
    agent.destroy();
    svc.close();
    console.log(`router drain under keep-alive load (${forwarder}): ${JSON.stringify({ ok: result.ok, failed: result.failed, connections: Object.fromEntries(svc.connections) })}`);
    expect([...result.errors]).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(100);
    expect(svc.connections.get(listen)).toBeGreaterThanOrEqual(1);
    expect(svc.connections.get(port.backend)).toBeGreaterThanOrEqual(1);
  });
});

describe('router drain, HTTP/2', () => {
  let router: RouterHandle;
  afterEach(async () => {
    await router.close(0);
  });

  it('sends GOAWAY to open sessions, lets their streams finish, and answers a session opened during the linger once', async () => {
    router = await routerWith('fast');
    const listen = router.ports.traffic.get(PORT.grpc)!;
    const old = h2connect(`http://${HOST}:${listen}`);
    old.on('error', () => {});
    expect(await h2get(old, '/warm')).toBe('real-h2\n');
    const inFlight = h2get(old, '/slow?ms=600');
    await sleep(50);
    const goaway = once(old, 'goaway');
    const drained = router.drain(400, 5000);
    await goaway;

    const fresh = h2connect(`http://${HOST}:${listen}`);
    fresh.on('error', () => {});
    const freshGoaway = once(fresh, 'goaway');
    expect(await h2get(fresh, '/fresh')).toBe('real-h2\n');
    await freshGoaway;
    // The stream the old session had open outlives the linger.
    expect(await inFlight).toBe('real-h2\n');
    await drained;
    old.destroy();
    fresh.destroy();
  });
});
