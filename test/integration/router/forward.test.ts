// The HTTP/1.1 forwarding path (router/forward.ts) against purpose-built loopback backends:
// hop-by-hop headers, repeated headers, streaming with trailers, HTTP/1.0 without Host, a kept-alive
// backend connection closed under the router (retried), clients that leave early, and the same
// behaviour through http-proxy-3's path where it applies.
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteTable } from '../../../contract/index.ts';
import { startRouter } from '../../../router/router.ts';
import type { RouterHandle } from '../../../router/router.ts';
import { createLogger } from '../../../runtime/log.ts';
import { HOST, fixedSource, flakyBackend, listenLoopback, streamWithTrailer } from './fixtures.ts';
import type { FlakyBackend } from './fixtures.ts';

const PORT = 8080;

const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: PORT, protocol: 'http' }],
  defaultTarget: 'plain.demo',
  routes: [{ version: 'flaky', target: 'flaky.demo', session: 'sf', user: 'frank' }],
};


let plain: Server;
let flaky: FlakyBackend;
const routers: RouterHandle[] = [];
const logs: Record<string, unknown>[] = [];
const seen: IncomingMessage[] = [];


interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  trailers: Record<string, string | undefined>;
}

function get(port: number, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: text, trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  plain = createServer((req, res) => {
    seen.push(req);
    if (req.url === '/cookies') {
      res.writeHead(200, [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['X-Case', 'Kept'], ['Connection', 'x-private'], ['X-Private', 'drop me']]);
      res.end('ok');
      return;
    }
    if (req.url === '/stream') {
      streamWithTrailer(res, 10);
      return;
    }
    if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 300);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(JSON.stringify({ headers: req.headers, length: Buffer.concat(chunks).length })));
  });
  flaky = flakyBackend('connection: keep-alive\r\n');
  const ports = { 'plain.demo': await listenLoopback(plain), 'flaky.demo': await listenLoopback(flaky.server) } as Record<string, number>;
  const log = createLogger({ write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  for (const forwarder of ['native', 'http-proxy-3'] as const) {
    const router = await startRouter({
      source: fixedSource(table),
      log,
      host: HOST,
      healthPort: 0,
      listenPort: () => 0,
      dial: (host) => ({ host: HOST, port: ports[host] ?? 1 }),
      http1Forwarder: forwarder,
    });
    await router.ready();
    routers.push(router);
  }
});

afterAll(async () => {
  await Promise.all(routers.map((r) => r.close(200)));
  plain?.closeAllConnections();
  plain?.close();
  flaky?.server.close();
});

const native = (): number => routers[0]!.ports.traffic.get(PORT)!;

describe('the HTTP/1.1 forwarding path', () => {
  it('drops hop-by-hop request headers and keeps the rest', async () => {
    const reply = await get(native(), '/h', {
      connection: 'keep-alive, x-hop',
      'x-hop': 'drop',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'x-keep': 'yes',
      'kt-version': 'nobody',
    });
    const headers = (JSON.parse(reply.body) as { headers: Record<string, string> }).headers;
    expect(headers['x-keep']).toBe('yes');
    expect(headers['kt-version']).toBe('nobody');
    expect(headers.te).toBe('trailers');
    expect(headers['x-hop']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
    expect(headers.host).toBe(`${HOST}:${native()}`);
  });

  it('keeps repeated response headers and their case, drops hop-by-hop ones', async () => {
    const reply = await get(native(), '/cookies');
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(reply.rawHeaders).toContain('X-Case');
    expect(reply.headers['x-private']).toBeUndefined();
  });

  it('streams chunked responses and passes trailers', async () => {
    const reply = await get(native(), '/stream');
    expect(reply.body).toBe([0, 1, 2, 3, 4].map((n) => `part ${n}\n`).join(''));
    expect(reply.trailers['x-checksum']).toBe('abc123');
  });

  it('forwards request bodies', async () => {
    const reply = await get(native(), '/body', { 'content-type': 'text/plain' }, 'x'.repeat(1_000_000));
    expect((JSON.parse(reply.body) as { length: number }).length).toBe(1_000_000);
  });

  it('adds a Host header for an HTTP/1.0 client that sent none', async () => {
    const socket = connect(native(), HOST);
    socket.write('GET /old HTTP/1.0\r\n\r\n');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    await once(socket, 'end');
    socket.destroy();
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect((JSON.parse(body) as { headers: Record<string, string> }).headers.host).toBe(`plain.demo:${PORT}`);
  });

  it('sends a bodiless request again when its kept-alive backend connection was closed under it', async () => {
    const before = flaky.connections;
    const cutBefore = flaky.cut;
    for (let i = 0; i < 4; i++) {
      const reply = await get(native(), '/again', { 'kt-version': 'flaky' });
      expect([reply.status, reply.body]).toEqual([200, 'fresh']);
    }
    // Requests 2 to 4 each met a cut connection and were sent again on a new one.
    expect(flaky.connections - before).toBe(4);
    expect(flaky.cut - cutBefore).toBe(3);
    expect(logs.filter((l) => l.msg === 'backend unreachable')).toEqual([]);
  });

  it('does not count a client that leaves early as a backend failure', async () => {
    for (const router of routers) {
      const req = request({ host: HOST, port: router.ports.traffic.get(PORT)!, path: '/slow' });
      req.on('error', () => {});
      req.end();
      await new Promise((resolve) => setTimeout(resolve, 50));
      req.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(logs.filter((l) => l.msg === 'backend unreachable')).toEqual([]);
  });
});

describe('the http-proxy-3 path', () => {
  it('routes and streams the same way', async () => {
    const port = routers[1]!.ports.traffic.get(PORT)!;
    const reply = await get(port, '/stream');
    expect(reply.body).toContain('part 4');
    expect((await get(port, '/cookies')).headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });
});
