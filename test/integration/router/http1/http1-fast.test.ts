// The HTTP/1.1 fast path (router/http1/http1-fast.ts, the router's default) on loopback, against node:http
// backends and a scripted raw TCP backend: routing per request on one connection, pipelining,
// chunked bodies and trailers, backpressure both ways, bodiless responses, 1xx, Connection: close
// from either side, HTTP/1.0, failures and the retry, and the handover to node:http (WebSocket,
// Expect: 100-continue, malformed requests) on a connection the fast path served first.
import { once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteTable } from '../../../../contract/index.ts';
import { startRouter } from '../../../../router/router.ts';
import type { RouterHandle } from '../../../../router/router.ts';
import { createLogger } from '../../../../runtime/log.ts';
import { HOST, fixedSource, flakyBackend, listenLoopback, streamWithTrailer } from '../fixtures.ts';
import type { FlakyBackend } from '../fixtures.ts';

const PORT = 8080;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: PORT, protocol: 'http' }],
  defaultTarget: 'plain.demo',
  routes: [
    { version: 'A', target: 'a.demo', session: 'sa', user: 'alice' },
    { version: 'raw', target: 'raw.demo', session: 'sr', user: 'rita' },
    { version: 'flaky', target: 'flaky.demo', session: 'sf', user: 'frank' },
    { version: 'down', target: 'down.demo', session: 'sd', user: 'dora' },
  ],
};


let plain: Server;
let devA: Server;
let raw: TcpServer;
let flaky: FlakyBackend;
let closedPort: number;
let router: RouterHandle;
let rawConnections = 0;
/** The raw backend connection (by number) each /backend-close request arrived on. */
const backendCloseServedOn: number[] = [];
let sawBackpressure = false;
let slowClosed = false;
const logs: Record<string, unknown>[] = [];
/** Remote ports of the backend connections that requests arrived on, by path. */
const backendPorts = new Map<string, number>();


/** A node:http backend answering with what it received, plus a few special paths. */
function backend(pod: string): Server {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    backendPorts.set(req.url ?? '', req.socket.remotePort ?? 0);
    res.setHeader('x-pod', pod);
    const path = req.url ?? '/';
    if (path === '/stream') {
      streamWithTrailer(res, 5);
      return;
    }
    if (path === '/big') {
      // 32 MiB in 64 KiB pieces, waiting for drain like a well-behaved server.
      const piece = Buffer.alloc(64 * 1024, 0x61);
      let left = 512;
      res.writeHead(200, { 'content-length': piece.length * left });
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(piece)) {
            sawBackpressure = true;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (path === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part\n');
      res.on('close', () => (slowClosed = true));
      return;
    }
    if (path.startsWith('/status/')) {
      const status = Number(path.slice(8));
      res.writeHead(status, { etag: '"x"' });
      res.end();
      return;
    }
    if (path === '/sink-slowly') req.pause();
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (c: Buffer) => {
      length += c.length;
      if (length < 4096) chunks.push(c);
    });
    req.on('end', () => {
      const body = JSON.stringify({ pod, method: req.method, url: path, httpVersion: req.httpVersion, headers: req.headers, length, trailers: req.trailers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    if (path === '/sink-slowly') setTimeout(() => req.resume(), 300);
  });
  server.keepAliveTimeout = 30_000;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-pod: ${pod}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  return server;
}

/** Scripted answers by path, for what node:http backends do not send. Bodiless requests only. */
const SCRIPTS: Record<string, { reply: string; close?: boolean }> = {
  '/interim': { reply: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone' },
  '/backend-close': { reply: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok', close: true },
  '/until-close': { reply: 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nthe body ends with the connection', close: true },
  '/chunked': { reply: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nkeep-alive: timeout=30\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: t1\r\n\r\n' },
  '/both': { reply: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' },
};

function scripted(socket: Socket): void {
  const id = ++rawConnections;
  let seen = '';
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    seen += chunk.toString('latin1');
    for (let end = seen.indexOf('\r\n\r\n'); end >= 0; end = seen.indexOf('\r\n\r\n')) {
      const path = seen.slice(seen.indexOf(' ') + 1, seen.indexOf(' ', seen.indexOf(' ') + 1));
      seen = seen.slice(end + 4);
      if (path === '/backend-close') backendCloseServedOn.push(id);
      const script = SCRIPTS[path] ?? { reply: 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n' };
      socket.write(script.reply);
      if (script.close) {
        socket.end();
        return;
      }
    }
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  trailers: string;
}

/**
 * Reads HTTP/1.1 responses off `text` (independently of the router's parser): Content-Length,
 * chunked (trailers kept as text) or until the end of `text`. 1xx responses are listed too.
 */
function parseResponses(text: string, bodiless: readonly boolean[] = []): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  let final = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) throw new Error(`incomplete head: ${JSON.stringify(text.slice(at))}`);
    const lines = text.slice(at, end).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
    at = end + 4;
    let body = '';
    let trailers = '';
    if (status >= 200) {
      if (bodiless[final++] || status === 204 || status === 304) {
        // no body
      } else if (headers['transfer-encoding'] === 'chunked') {
        for (;;) {
          const lineEnd = text.indexOf('\r\n', at);
          const size = parseInt(text.slice(at, lineEnd), 16);
          at = lineEnd + 2;
          if (size === 0) {
            const trailerEnd = text.indexOf('\r\n\r\n', at - 2);
            trailers = text.slice(at, trailerEnd + 2);
            at = trailerEnd + 4;
            break;
          }
          body += text.slice(at, at + size);
          at += size + 2;
        }
      } else if (headers['content-length'] !== undefined) {
        body = text.slice(at, at + Number(headers['content-length']));
        at += body.length;
      } else {
        body = text.slice(at);
        at = text.length;
      }
    }
    out.push({ status, headers, body, trailers });
  }
  return out;
}

/** A raw client connection: write bytes, collect everything the router sends. */
class RawClient {
  readonly socket: Socket;
  text = '';
  closed = false;

  constructor() {
    this.socket = connect(router.ports.traffic.get(PORT)!, HOST);
    this.socket.setNoDelay(true);
    this.socket.on('data', (c: Buffer) => (this.text += c.toString('latin1')));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => {});
  }

  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** Waits until `check` holds on what arrived, or the connection closed. */
  async until(check: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.text) && !this.closed) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.text)}`);
      await sleep(5);
    }
    return this.text;
  }

  /** Waits for `n` complete final responses (bodies framed by Content-Length) and returns them. */
  async responses(n: number, bodiless: readonly boolean[] = []): Promise<RawResponse[]> {
    let parsed: RawResponse[] = [];
    await this.until(() => {
      try {
        parsed = parseResponses(this.text, bodiless).filter((r) => r.status >= 200);
        const last = parsed[parsed.length - 1];
        return parsed.length >= n && (last === undefined || last.headers['content-length'] === undefined || last.body.length === Number(last.headers['content-length']));
      } catch {
        return false;
      }
    });
    return parsed;
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  trailers: Record<string, string | undefined>;
  reused: boolean;
}

function call(path: string, init: { method?: string; headers?: OutgoingHttpHeaders; body?: string | (string | Buffer)[]; agent?: Agent; trailers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port: router.ports.traffic.get(PORT)!, path, method: init.method ?? 'GET', headers: init.headers, agent: init.agent }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, trailers: res.trailers, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(init.body)) for (const piece of init.body) req.write(piece);
    else if (init.body !== undefined) req.write(init.body);
    if (init.trailers) req.addTrailers(init.trailers);
    req.end();
  });
}

const echoOf = (reply: { body: string }): { pod: string; url: string; httpVersion: string; headers: Record<string, string>; length: number; trailers: Record<string, string> } =>
  JSON.parse(reply.body) as { pod: string; url: string; httpVersion: string; headers: Record<string, string>; length: number; trailers: Record<string, string> };

beforeAll(async () => {
  plain = backend('default');
  devA = backend('a');
  raw = createTcpServer(scripted);
  flaky = flakyBackend();
  const closed = createTcpServer();
  closedPort = await listenLoopback(closed);
  closed.close();
  const ports: Record<string, number> = {
    'plain.demo': await listenLoopback(plain),
    'a.demo': await listenLoopback(devA),
    'raw.demo': await listenLoopback(raw),
    'flaky.demo': await listenLoopback(flaky.server),
    'down.demo': closedPort,
  };
  router = await startRouter({
    source: fixedSource(table),
    log: createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) }),
    logRequests: true,
    host: HOST,
    healthPort: 0,
    listenPort: () => 0,
    failureLogIntervalMs: 0,
    dial: (host) => ({ host: HOST, port: ports[host] ?? 1 }),
  });
  await router.ready();
});

afterAll(async () => {
  await router?.close(200);
  for (const server of [plain, devA]) {
    server?.closeAllConnections();
    server?.close();
  }
  raw?.close();
  flaky?.server.close();
});

describe('routing on the fast path', () => {
  it('routes by header and baggage request by request on one kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const cases: [OutgoingHttpHeaders, string][] = [
        [{ 'kt-version': 'A' }, 'a'],
        [{}, 'default'],
        [{ baggage: 'user=x, kt-version=A;p=1' }, 'a'],
        [{ 'kt-version': 'nobody' }, 'default'],
        [{ 'KT-Version': 'A' }, 'a'],
        [{ baggage: ['k=v', 'kt-version=A'] }, 'a'],
      ];
      for (const [i, [headers, pod]] of cases.entries()) {
        const reply = await call(`/r/${i}`, { headers, agent });
        expect([reply.status, echoOf(reply).pod, reply.reused], `request ${i}`).toEqual([200, pod, i > 0]);
      }
    } finally {
      agent.destroy();
    }
  });

  it('answers pipelined requests in order, each routed on its own', async () => {
    const client = new RawClient();
    client.send(
      'GET /p1 HTTP/1.1\r\nHost: x\r\nkt-version: A\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /p3 HTTP/1.1\r\nHost: x\r\nkt-version: A\r\nContent-Length: 5\r\n\r\nhelloHEAD /p4 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /p5 HTTP/1.1\r\nHost: x\r\nbaggage: kt-version=A\r\nConnection: close\r\n\r\n',
    );
    await client.until(() => client.closed);
    const replies = parseResponses(client.text, [false, false, false, true, false]);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const bodies = replies.filter((r) => r.body !== '').map((r) => JSON.parse(r.body) as { pod: string; url: string; length: number });
    expect(bodies.map((b) => [b.url, b.pod])).toEqual([
      ['/p1', 'a'],
      ['/p2', 'default'],
      ['/p3', 'a'],
      ['/p5', 'a'],
    ]);
    expect(bodies[2]!.length).toBe(5);
    expect(replies[4]!.headers.connection).toBe('close');
  });

  it('logs each request with its route and status', async () => {
    await call('/logged', { headers: { 'kt-version': 'A' } });
    expect(logs.find((l) => l.msg === 'request' && l.path === '/logged')).toMatchObject({
      protocol: 'http/1.1',
      method: 'GET',
      version: 'A',
      target: `a.demo:${PORT}`,
      status: 200,
    });
  });
});

describe('headers', () => {
  it('drops hop-by-hop request headers, keeps TE: trailers and the rest', async () => {
    const reply = await call('/h', { headers: { connection: 'keep-alive, x-hop', 'x-hop': 'drop', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', te: 'trailers', 'x-keep': 'yes' } });
    const { headers } = echoOf(reply);
    expect(headers['x-keep']).toBe('yes');
    expect(headers.te).toBe('trailers');
    for (const name of ['x-hop', 'keep-alive', 'proxy-connection', 'connection']) expect(headers[name], name).toBeUndefined();
    expect(headers.host).toBe(`${HOST}:${router.ports.traffic.get(PORT)}`);
  });

  it('drops the backend hop-by-hop response headers', async () => {
    const reply = await call('/h2');
    expect(reply.headers['keep-alive']).toBeUndefined();
    expect(reply.headers['x-pod']).toBe('default');
    const chunked = await call('/chunked', { headers: { 'kt-version': 'raw' } });
    expect(chunked.headers['x-hop']).toBeUndefined();
    expect(chunked.headers['keep-alive']).toBeUndefined();
  });
});

describe('bodies', () => {
  it('streams chunked responses with their trailers and chunk extensions verbatim', async () => {
    const reply = await call('/stream');
    expect(reply.body).toBe([0, 1, 2, 3, 4].map((n) => `part ${n}\n`).join(''));
    expect(reply.trailers['x-checksum']).toBe('abc123');
    const client = new RawClient();
    client.send('GET /chunked HTTP/1.1\r\nHost: x\r\nkt-version: raw\r\n\r\n');
    await client.until((t) => t.endsWith('\r\n0\r\nx-trailer: t1\r\n\r\n'));
    expect(client.text).toContain('\r\n\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: t1\r\n\r\n');
    client.close();
  });

  it('forwards chunked request bodies with trailers', async () => {
    const reply = await call('/up', { method: 'POST', headers: { 'transfer-encoding': 'chunked', trailer: 'x-sum' }, body: ['abc', 'defg', 'h'.repeat(10_000)], trailers: { 'x-sum': '42' } });
    const echoed = echoOf(reply);
    expect(echoed.length).toBe(10_007);
    expect(echoed.trailers['x-sum']).toBe('42');
  });

  it('moves large bodies both ways with backpressure', async () => {
    const up = Array.from({ length: 320 }, () => Buffer.alloc(64 * 1024, 0x62));
    const reply = await call('/sink-slowly', { method: 'POST', headers: { 'content-length': String(320 * 64 * 1024) }, body: up });
    expect(echoOf(reply).length).toBe(320 * 64 * 1024);

    sawBackpressure = false;
    const length = await new Promise<number>((resolve, reject) => {
      const req = request({ host: HOST, port: router.ports.traffic.get(PORT)!, path: '/big' }, (res) => {
        let n = 0;
        res.pause();
        setTimeout(() => res.resume(), 500);
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(length).toBe(32 * 1024 * 1024);
    // The paused client held the backend back: the router did not read it all into memory.
    expect(sawBackpressure).toBe(true);
  });

  it('gives HEAD, 204 and 304 responses no body and keeps the connection', async () => {
    const client = new RawClient();
    client.send('HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    const replies = await client.responses(4, [true, false, false, false]);
    expect(replies.map((r) => r.status)).toEqual([200, 204, 304, 200]);
    expect(Number(replies[0]!.headers['content-length'])).toBeGreaterThan(0);
    expect(replies[0]!.body).toBe('');
    expect((JSON.parse(replies[3]!.body) as { url: string }).url).toBe('/after');
    expect(client.closed).toBe(false);
    client.close();
  });
});

describe('interim responses and connection handling', () => {
  it('passes 1xx interim responses on', async () => {
    const informational: number[] = [];
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: HOST, port: router.ports.traffic.get(PORT)!, path: '/interim', headers: { 'kt-version': 'raw' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('information', (info: { statusCode: number }) => informational.push(info.statusCode));
      req.on('error', reject);
      req.end();
    });
    expect(informational).toEqual([100, 103]);
    expect(body).toBe('done');
  });

  it('does not reuse a backend connection the backend closes, and keeps the client connection', async () => {
    backendCloseServedOn.length = 0;
    const client = new RawClient();
    client.send('GET /backend-close HTTP/1.1\r\nHost: x\r\nkt-version: raw\r\n\r\n');
    await client.responses(1);
    client.send('GET /backend-close HTTP/1.1\r\nHost: x\r\nkt-version: raw\r\n\r\n');
    const replies = await client.responses(2);
    expect(replies.map((r) => [r.status, r.body])).toEqual([
      [200, 'ok'],
      [200, 'ok'],
    ]);
    expect(backendCloseServedOn).toHaveLength(2);
    expect(backendCloseServedOn[0]).not.toBe(backendCloseServedOn[1]);
    expect(client.closed).toBe(false);
    client.close();
  });

  it('closes the client connection after a body delimited by the backend closing', async () => {
    const client = new RawClient();
    client.send('GET /until-close HTTP/1.1\r\nHost: x\r\nkt-version: raw\r\n\r\n');
    await client.until(() => client.closed);
    const [reply] = parseResponses(client.text);
    expect(reply).toMatchObject({ status: 200, body: 'the body ends with the connection' });
    expect(reply!.headers.connection).toBe('close');
  });

  it('fails a response with both Content-Length and Transfer-Encoding with a 502', async () => {
    const reply = await call('/both', { headers: { 'kt-version': 'raw' } });
    expect(reply.status).toBe(502);
    expect(reply.body).toBe(`kt router: version "raw" (session sr by rita) unreachable at raw.demo:${PORT}: both Transfer-Encoding and Content-Length from the backend\n`);
  });

  it('drops fields a later Connection field names, and keeps field lines byte for byte', async () => {
    const client = new RawClient();
    client.send('GET /named HTTP/1.1\r\nX-Early: drop\r\nHost: x\r\nX-Case:  Kept\tValue \r\nConnection: X-Early, keep-alive\r\nKT-Version: A\r\n\r\n');
    const [reply] = await client.responses(1);
    const echoed = echoOf(reply!);
    expect(echoed.pod).toBe('a');
    expect(echoed.headers['x-early']).toBeUndefined();
    expect(echoed.headers.connection).toBeUndefined();
    expect(echoed.headers['x-case']).toBe('Kept\tValue');
    expect(echoed.url).toBe('/named');
    client.socket.destroy();
  });

  it('closes the client connection on Connection: close and keeps the backend one', async () => {
    const first = new RawClient();
    first.send('GET /cc1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await first.until(() => first.closed);
    const [reply] = parseResponses(first.text);
    expect(reply!.headers.connection).toBe('close');
    expect(echoOf(reply!).headers.connection).toBeUndefined();
    await call('/cc2');
    // The second request reused the backend connection of the first.
    expect(backendPorts.get('/cc2')).toBe(backendPorts.get('/cc1'));
  });

  it('serves HTTP/1.0 clients: Host added, closed unless kept alive', async () => {
    const once10 = new RawClient();
    once10.send('GET /old HTTP/1.0\r\n\r\n');
    await once10.until(() => once10.closed);
    const [reply] = parseResponses(once10.text);
    const echoed = echoOf(reply!);
    expect(echoed.headers.host).toBe(`plain.demo:${PORT}`);
    expect(echoed.httpVersion).toBe('1.0');

    const kept = new RawClient();
    kept.send('GET /old1 HTTP/1.0\r\nConnection: keep-alive\r\nkt-version: A\r\n\r\n');
    const [r1] = await kept.responses(1);
    expect(r1!.headers.connection).toBe('keep-alive');
    kept.send('GET /old2 HTTP/1.0\r\nHost: h\r\n\r\n');
    await kept.until(() => kept.closed);
    const replies = parseResponses(kept.text);
    expect(replies.map((r) => [echoOf(r).url, echoOf(r).pod])).toEqual([
      ['/old1', 'a'],
      ['/old2', 'default'],
    ]);
    expect(echoOf(replies[1]!).headers.host).toBe('h');
  });

  it('destroys the backend connection when the client leaves mid-response', async () => {
    slowClosed = false;
    const client = new RawClient();
    client.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await client.until((t) => t.includes('first part'));
    client.close();
    await sleep(200);
    expect(slowClosed).toBe(true);
  });
});

describe('failures', () => {
  it('answers 502 naming the version and the reason, and keeps the connection', async () => {
    const client = new RawClient();
    client.send('GET /x HTTP/1.1\r\nHost: x\r\nkt-version: down\r\n\r\n');
    const [reply] = await client.responses(1);
    expect(reply!.status).toBe(502);
    expect(reply!.body).toBe(`kt router: version "down" (session sd by dora) unreachable at down.demo:${PORT}: ECONNREFUSED\n`);
    client.send('GET /y HTTP/1.1\r\nHost: x\r\n\r\n');
    const replies = await client.responses(2);
    expect(replies[1]!.status).toBe(200);
    client.close();
    expect(logs.find((l) => l.msg === 'backend unreachable' && l.version === 'down')).toMatchObject({ reason: 'ECONNREFUSED', protocol: 'http' });
  });

  it('sends a bodiless request again when its kept-alive backend connection was closed under it', async () => {
    const before = flaky.connections;
    const cutBefore = flaky.cut;
    const failuresBefore = logs.filter((l) => l.msg === 'backend unreachable').length;
    for (let i = 0; i < 4; i++) {
      const reply = await call('/again', { headers: { 'kt-version': 'flaky' } });
      expect([reply.status, reply.body]).toEqual([200, 'fresh']);
    }
    expect(flaky.connections - before).toBe(4);
    expect(flaky.cut - cutBefore).toBe(3);
    expect(logs.filter((l) => l.msg === 'backend unreachable').length).toBe(failuresBefore);
  });
});

describe('broken request bodies', () => {
  it('answers 400 and closes when chunked framing breaks mid-body', async () => {
    const client = new RawClient();
    client.send('POST /broken HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
    await sleep(50);
    client.send('zz\r\n');
    await client.until(() => client.closed);
    const [reply] = parseResponses(client.text);
    expect(reply).toMatchObject({ status: 400, body: 'kt router: malformed chunked request body\n' });
    expect(reply!.headers.connection).toBe('close');
  });
});

describe('the handover to node:http', () => {
  it('takes a WebSocket upgrade after fast-path requests on the same connection', async () => {
    const client = new RawClient();
    client.send('GET /before HTTP/1.1\r\nHost: x\r\nkt-version: A\r\n\r\n');
    await client.responses(1);
    client.send('GET /ws HTTP/1.1\r\nHost: x\r\nkt-version: A\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await client.until((t) => t.includes('101 Switching Protocols') && t.endsWith('\r\n\r\n'));
    expect(client.text).toContain('x-pod: a');
    const mark = client.text.length;
    client.send('echo me');
    await client.until((t) => t.slice(mark) === 'echo me');
    client.close();
  });

  it('takes Expect: 100-continue after a fast-path request on the same connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(echoOf(await call('/first', { agent })).pod).toBe('default');
      const reply = await new Promise<{ body: string; continued: boolean; reused: boolean }>((resolve, reject) => {
        let continued = false;
        const req = request({ host: HOST, port: router.ports.traffic.get(PORT)!, path: '/expect', method: 'POST', agent, headers: { expect: '100-continue', 'content-length': '5', 'kt-version': 'A' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ body: text, continued, reused: req.reusedSocket }));
        });
        req.on('continue', () => {
          continued = true;
          req.end('hello');
        });
        req.on('error', reject);
      });
      expect(reply.continued).toBe(true);
      expect(reply.reused).toBe(true);
      expect(echoOf(reply)).toMatchObject({ pod: 'a', length: 5 });
      // node:http keeps serving the connection after the handover.
      const after = await call('/after-expect', { agent, headers: { 'kt-version': 'A' } });
      expect([echoOf(after).pod, after.reused]).toEqual(['a', true]);
    } finally {
      agent.destroy();
    }
  });

  it('leaves malformed and ambiguous requests to node:http', async () => {
    for (const text of [
      'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      'GET / HTTP/1.1\nHost: x\n\n',
    ]) {
      const client = new RawClient();
      client.send('GET /ok HTTP/1.1\r\nHost: x\r\n\r\n');
      await client.responses(1);
      client.send(text);
      await client.until(() => client.closed);
      expect(client.text, JSON.stringify(text)).toMatch(/HTTP\/1\.1 400 Bad Request/);
    }
    // A transfer coding other than plain chunked is node:http's to judge (it accepts this one),
    // and node:http keeps serving the connection.
    const client = new RawClient();
    client.send('POST /coded HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\nGET /then HTTP/1.1\r\nHost: x\r\n\r\n');
    const replies = await client.responses(2);
    expect(replies.map((r) => echoOf(r).url)).toEqual(['/coded', '/then']);
    expect(replies[0]!.headers['keep-alive']).toBe('timeout=60'); // node:http's own header
    client.close();
  });
});

describe('closing', () => {
  it('closes idle fast-path connections at once when the port closes', async () => {
    const other = await startRouter({
      source: fixedSource({ ...table, routes: [] }),
      host: HOST,
      healthPort: 0,
      listenPort: () => 0,
      dial: () => ({ host: HOST, port: (plain.address() as AddressInfo).port }),
    });
    await other.ready();
    const socket = connect(other.ports.traffic.get(PORT)!, HOST);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!text.includes('"url":"/idle"')) await sleep(5);
    const started = Date.now();
    const closed = once(socket, 'close');
    await other.close(5000);
    await closed;
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
