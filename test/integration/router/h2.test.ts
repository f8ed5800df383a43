// HTTP/2 cleartext through the router against plain node:http2 backends on loopback: routing per
// stream on one client connection, bodies both ways, non-gRPC trailers, a backend that restarts on
// the same port (the router's session to it reconnects), cancelled streams, and the 502 text
// answer when a backend is down.
import { once } from 'node:events';
import { connect, createServer } from 'node:http2';
import type { ClientHttp2Session, Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteTable } from '../../../contract/index.ts';
import { startRouter } from '../../../router/router.ts';
import type { RouterHandle } from '../../../router/router.ts';
import { silentLogger } from '../../../runtime/log.ts';
import { HOST, fixedSource } from './fixtures.ts';

const PORT = 8443;
const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: PORT, protocol: 'http' }],
  defaultTarget: 'main.demo',
  routes: [
    { version: 'dev', target: 'dev.demo', session: 'sd', user: 'dana' },
    { version: 'down', target: 'down.demo', session: 'sx', user: 'xena' },
  ],
};

const ports: Record<string, number> = {};
const servers: Record<string, Http2Server> = {};
let cancelled = 0;
let router: RouterHandle;
let client: ClientHttp2Session;

function backend(name: string): Http2Server {
  const server = createServer();
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    const path = headers[':path'];
    if (path === '/hang') {
      stream.on('close', () => {
        if (stream.rstCode !== 0) cancelled++;
      });
      stream.respond({ ':status': 200 });
      stream.write('started');
      return;
    }
    let length = 0;
    stream.on('data', (c: Buffer) => (length += c.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'x-backend': name, 'content-type': 'text/plain' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-length': String(length) }));
      stream.end(`${name} ${path}`);
    });
  });
  return server;
}

async function start(name: string, port = 0): Promise<void> {
  const server = backend(name);
  server.listen(port, HOST);
  await once(server, 'listening');
  servers[name] = server;
  ports[name] = (server.address() as AddressInfo).port;
}

async function stop(name: string): Promise<void> {
  const server = servers[name]!;
  const closed = once(server, 'close');
  server.close();
  // Sessions the router holds open keep the server alive: end them.
  server.emit('kt-test-close');
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 200))]);
}

function call(path: string, headers: Record<string, string> = {}, body?: string): Promise<{ headers: IncomingHttpHeaders; body: string; trailers?: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
    let response: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (response = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ headers: response, body: text, trailers }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

beforeAll(async () => {
  await start('main');
  await start('dev');
  // Track the backends' sessions so stop() can end them.
  for (const server of Object.values(servers)) {
    const sessions = new Set<import('node:http2').ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    server.on('kt-test-close', () => {
      for (const s of sessions) s.destroy();
    });
  }
  router = await startRouter({
    source: fixedSource(table),
    log: silentLogger,
    host: HOST,
    healthPort: 0,
    listenPort: () => 0,
    dial: (host) => ({ host: HOST, port: ports[host.replace('.demo', '')] ?? 1 }),
  });
  await router.ready();
  client = connect(`http://${HOST}:${router.ports.traffic.get(PORT)}`);
});

afterAll(async () => {
  client?.close();
  await router?.close(200);
  for (const server of Object.values(servers)) server.close();
});

describe('HTTP/2 through the router', () => {
  it('routes each stream of one connection on its own headers', async () => {
    const results = await Promise.all([
      call('/1'),
      call('/2', { 'kt-version': 'dev' }),
      call('/3', { baggage: 'a=b,kt-version=dev' }),
      call('/4', { 'kt-version': 'other' }),
    ]);
    expect(results.map((r) => r.body)).toEqual(['main /1', 'dev /2', 'dev /3', 'main /4']);
    expect(results[1]?.headers['x-backend']).toBe('dev');
  });

  it('passes request bodies and response trailers', async () => {
    const reply = await call('/upload', { 'kt-version': 'dev' }, 'y'.repeat(300_000));
    expect(reply.body).toBe('dev /upload');
    expect(reply.trailers?.['x-length']).toBe('300000');
  });

  it('reconnects to a backend that restarted', async () => {
    expect((await call('/before', { 'kt-version': 'dev' })).body).toBe('dev /before');
    const port = ports.dev!;
    await stop('dev');
    await start('dev', port);
    expect((await call('/after', { 'kt-version': 'dev' })).body).toBe('dev /after');
  });

  it('cancels the backend stream when the client cancels', async () => {
    const before = cancelled;
    const stream = client.request({ ':path': '/hang' });
    stream.on('error', () => {});
    await once(stream, 'data');
    stream.close();
    const deadline = Date.now() + 2000;
    while (cancelled === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(cancelled).toBe(before + 1);
  });

  it('answers 502 with the sentence when the backend is down', async () => {
    const reply = await call('/x', { 'kt-version': 'down' });
    expect(reply.headers[':status']).toBe(502);
    expect(reply.body).toBe(`kt router: version "down" (session sx by xena) unreachable at down.demo:${PORT}: ECONNREFUSED\n`);
  });
});
