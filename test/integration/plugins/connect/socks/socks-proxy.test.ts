// The laptop proxy on loopback: SOCKS5 (IPv4, IPv6, names sent unresolved), SOCKS4a, HTTP CONNECT,
// plain absolute-form requests with keep-alive, WebSocket-style upgrades, error mapping, 4 MiB
// through each path, and the port-in-use message. A fake Dialer stands in for the tunnel: it maps
// cluster names to local servers and hands back plain Duplex streams, as an SSH channel would be.
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dialer } from '../../../../../plugins/tunnel/dialer.ts';
import { startProxy } from '../../../../../plugins/connect/socks/socks-proxy.ts';
import type { Proxy } from '../../../../../plugins/connect/socks/socks-proxy.ts';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

// ---- Fakes -------------------------------------------------------------------------------------

/** A plain Duplex over a socket: no setNoDelay, setKeepAlive, ... like an ssh2 channel. */
function plainDuplex(socket: Socket): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, (err) => callback(err ?? null));
    },
    final(callback) {
      socket.end(() => callback());
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.on('close', () => {
    if (!duplex.destroyed && !duplex.readableEnded) duplex.destroy();
  });
  return duplex;
}

interface FakeCluster {
  dial: Dialer;
  dials: { host: string; port: number }[];
  /** name:port -> local port */
  routes: Map<string, number>;
}

function fakeCluster(): FakeCluster {
  const dials: { host: string; port: number }[] = [];
  const routes = new Map<string, number>();
  const dial: Dialer = async (host, port) => {
    dials.push({ host, port });
    const local = routes.get(`${host}:${port}`);
    if (local === undefined) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    }
    const socket = connect({ host: HOST, port: local, allowHalfOpen: true });
    await once(socket, 'connect'); // rejects with ECONNREFUSED on a closed port
    return plainDuplex(socket);
  };
  return { dial, dials, routes };
}

async function listening<T extends Server | HttpServer>(server: T): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return address.port;
}

/** A free port nobody listens on (for ECONNREFUSED). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listening(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- Small clients -----------------------------------------------------------------------------

/** Reads from a socket on demand; what is left over stays available. */
function byteReader(socket: Socket): { read(n: number): Promise<Buffer>; readUntil(marker: string): Promise<Buffer>; rest(): Promise<Buffer> } {
  let buffered = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  socket.on('end', () => {
    ended = true;
    wake?.();
  });
  socket.on('error', () => {
    ended = true;
    wake?.();
  });
  const more = async (): Promise<void> => {
    if (ended) throw new Error(`connection ended; had ${JSON.stringify(buffered.toString('latin1'))}`);
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  };
  return {
    async read(n) {
      while (buffered.length < n) await more();
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      return out;
    },
    async readUntil(marker) {
      for (;;) {
        const at = buffered.indexOf(marker);
        if (at >= 0) {
          const out = buffered.subarray(0, at + marker.length);
          buffered = buffered.subarray(at + marker.length);
          return out;
        }
        await more();
      }
    },
    async rest() {
      while (!ended) await more().catch(() => undefined);
      const out = buffered;
      buffered = Buffer.alloc(0);
      return out;
    },
  };
}

type SocksTarget = { ipv4: string } | { ipv6: Buffer } | { domain: string };

/** SOCKS5 no-auth CONNECT; resolves with the reply code and the still-open socket. */
async function socks5(proxyPort: number, target: SocksTarget, port: number, command = 0x01) {
  const socket = connect({ host: HOST, port: proxyPort, allowHalfOpen: true });
  await once(socket, 'connect');
  const reader = byteReader(socket);
  socket.write(Buffer.from([0x05, 0x01, 0x00]));
  expect([...(await reader.read(2))]).toEqual([0x05, 0x00]);
  let address: Buffer;
  if ('ipv4' in target) address = Buffer.from([0x01, ...target.ipv4.split('.').map(Number)]);
  else if ('ipv6' in target) address = Buffer.concat([Buffer.from([0x04]), target.ipv6]);
  else address = Buffer.concat([Buffer.from([0x03, target.domain.length]), Buffer.from(target.domain, 'latin1')]);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  socket.write(Buffer.concat([Buffer.from([0x05, command, 0x00]), address, portBytes]));
  const reply = await reader.read(10);
  expect(reply[0]).toBe(0x05);
  expect([...reply.subarray(2)]).toEqual([0x00, 0x01, 0, 0, 0, 0, 0, 0]);
  return { socket, reply: reply[1], reader };
}

/** Sends `payload` then FIN, and collects everything until the other side's FIN. */
async function roundTrip(socket: Socket, reader: ReturnType<typeof byteReader>, payload: Buffer): Promise<Buffer> {
  socket.end(payload);
  const data = await reader.rest();
  socket.destroy();
  return data;
}

function sha(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

/** A raw HTTP/1.1 CONNECT through the proxy. */
async function httpConnect(proxyPort: number, authority: string) {
  const socket = connect({ host: HOST, port: proxyPort, allowHalfOpen: true });
  await once(socket, 'connect');
  const reader = byteReader(socket);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const head = (await reader.readUntil('\r\n\r\n')).toString('latin1');
  return { socket, reader, head, status: Number(head.split(' ')[1]) };
}

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  reusedSocket: boolean;
}

/** A plain proxy request: absolute-form URL sent to the proxy. */
function proxyRequest(proxyPort: number, url: string, options: { method?: string; body?: Buffer; agent?: Agent } = {}): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const target = new URL(url);
    const req = httpRequest({
      host: HOST,
      port: proxyPort,
      method: options.method ?? 'GET',
      path: url,
      headers: { Host: target.host },
      agent: options.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reusedSocket: req.reusedSocket }),
      );
    });
    req.end(options.body);
  });
}

// ---- Tests -------------------------------------------------------------------------------------

describe('socks-proxy on loopback', () => {
  const cluster = fakeCluster();
  let proxy: Proxy;
  let echo: Server;
  let web: HttpServer;
  const big = randomBytes(4 * MiB);
  const webRequests: { url: string; host: string | undefined; headers: IncomingMessage['headers']; connection: number }[] = [];

  beforeAll(async () => {
    echo = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    const echoPort = await listening(echo);

    let connectionCount = 0;
    web = createHttpServer((req, res) => {
      const socket = req.socket as Socket & { ktId?: number };
      socket.ktId ??= ++connectionCount;
      webRequests.push({ url: req.url ?? '', host: req.headers.host, headers: req.headers, connection: socket.ktId });
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
        res.end(big);
        return;
      }
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, { 'x-sha256': sha(body), 'set-cookie': ['a=1', 'b=2'] });
          res.end(body);
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ url: req.url, host: req.headers.host }));
    });
    web.on('upgrade', (req, socket: Duplex) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n' + `X-Path: ${req.url}\r\n\r\n`,
      );
      socket.pipe(socket);
    });
    const webPort = await listening(web);

    cluster.routes.set(`echo.dev.svc.cluster.local:7`, echoPort);
    cluster.routes.set(`echo.dev:7`, echoPort);
    cluster.routes.set(`10.96.0.7:7`, echoPort);
    cluster.routes.set(`fd00::7:7`, echoPort);
    cluster.routes.set(`web.dev:80`, webPort);
    cluster.routes.set(`api.other:8080`, webPort);
    cluster.routes.set(`refused.dev:80`, await closedPort());
    cluster.routes.set(`10.96.0.9:9`, await closedPort());

    proxy = await startProxy({ port: 0, dial: cluster.dial });
  });

  afterAll(async () => {
    await proxy?.close();
    echo?.close();
    web?.closeAllConnections();
    web?.close();
  });

  it('SOCKS5 CONNECT to an IPv4 address', async () => {
    const { socket, reply, reader } = await socks5(proxy.port, { ipv4: '10.96.0.7' }, 7);
    expect(reply).toBe(0x00);
    expect((await roundTrip(socket, reader, Buffer.from('hello over socks'))).toString()).toBe('hello over socks');
    expect(cluster.dials.at(-1)).toEqual({ host: '10.96.0.7', port: 7 });
  });

  it('SOCKS5 CONNECT to a name sends the name to the Dialer unresolved', async () => {
    const { socket, reply, reader } = await socks5(proxy.port, { domain: 'echo.dev.svc.cluster.local' }, 7);
    expect(reply).toBe(0x00);
    expect((await roundTrip(socket, reader, Buffer.from('by name'))).toString()).toBe('by name');
    expect(cluster.dials.at(-1)).toEqual({ host: 'echo.dev.svc.cluster.local', port: 7 });
  });

  it('SOCKS5 CONNECT to an IPv6 address', async () => {
    const ipv6 = Buffer.from('fd000000000000000000000000000007', 'hex');
    const { socket, reply, reader } = await socks5(proxy.port, { ipv6 }, 7);
    expect(reply).toBe(0x00);
    expect((await roundTrip(socket, reader, Buffer.from('v6'))).toString()).toBe('v6');
    expect(cluster.dials.at(-1)).toEqual({ host: 'fd00::7', port: 7 });
  });

  it('SOCKS5 moves 4 MiB each way intact, with half-close', async () => {
    const { socket, reply, reader } = await socks5(proxy.port, { domain: 'echo.dev' }, 7);
    expect(reply).toBe(0x00);
    const echoed = await roundTrip(socket, reader, big);
    expect(echoed.length).toBe(big.length);
    expect(sha(echoed)).toBe(sha(big));
  });

  it('SOCKS5 maps Dialer failures to reply codes', async () => {
    const refused = await socks5(proxy.port, { domain: 'refused.dev' }, 80);
    expect(refused.reply).toBe(0x05);
    await refused.reader.rest(); // the proxy hangs up
    refused.socket.destroy();

    const refusedIp = await socks5(proxy.port, { ipv4: '10.96.0.9' }, 9);
    expect(refusedIp.reply).toBe(0x05);
    refusedIp.socket.destroy();

    const unknown = await socks5(proxy.port, { domain: 'nope.dev' }, 80);
    expect(unknown.reply).toBe(0x04);
    unknown.socket.destroy();
  });

  it('SOCKS5 answers 0x07 to BIND and UDP ASSOCIATE, and 0xFF when no-auth is not offered', async () => {
    for (const command of [0x02, 0x03]) {
      const { reply, socket } = await socks5(proxy.port, { ipv4: '10.96.0.7' }, 7, command);
      expect(reply).toBe(0x07);
      socket.destroy();
    }
    const socket = connect({ host: HOST, port: proxy.port });
    await once(socket, 'connect');
    const reader = byteReader(socket);
    socket.write(Buffer.from([0x05, 0x01, 0x02])); // username/password only
    expect([...(await reader.read(2))]).toEqual([0x05, 0xff]);
    socket.destroy();
  });

  it('SOCKS4a CONNECT to a name', async () => {
    const socket = connect({ host: HOST, port: proxy.port, allowHalfOpen: true });
    await once(socket, 'connect');
    const reader = byteReader(socket);
    socket.write(Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x07, 0, 0, 0, 1]), Buffer.from('me\0echo.dev\0')]));
    expect([...(await reader.read(8))]).toEqual([0x00, 0x5a, 0, 0, 0, 0, 0, 0]);
    expect((await roundTrip(socket, reader, Buffer.from('socks4a'))).toString()).toBe('socks4a');
    expect(cluster.dials.at(-1)).toEqual({ host: 'echo.dev', port: 7 });
  });

  it('HTTP CONNECT tunnels, with 4 MiB intact', async () => {
    const { socket, reader, head, status } = await httpConnect(proxy.port, 'echo.dev:7');
    expect(status).toBe(200);
    expect(head).toBe('HTTP/1.1 200 Connection Established\r\n\r\n');
    expect(cluster.dials.at(-1)).toEqual({ host: 'echo.dev', port: 7 });
    const echoed = await roundTrip(socket, reader, big);
    expect(echoed.length).toBe(big.length);
    expect(sha(echoed)).toBe(sha(big));
  });

  it('HTTP CONNECT answers 502 with a one-line reason when the Dialer fails', async () => {
    const refused = await httpConnect(proxy.port, 'refused.dev:80');
    expect(refused.status).toBe(502);
    expect(refused.head).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    const body = (await refused.reader.rest()).toString();
    expect(body).toMatch(/^kt proxy: cannot connect to refused\.dev:80: .*ECONNREFUSED.*\n$/);
    expect(body.trimEnd().split('\n')).toHaveLength(1);
    refused.socket.destroy();

    const unknown = await httpConnect(proxy.port, 'nope.dev:443');
    expect(unknown.status).toBe(502);
    expect((await unknown.reader.rest()).toString()).toContain('nope.dev:443');
    unknown.socket.destroy();
  });

  it('forwards plain absolute-form requests over one kept-alive client connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = webRequests.length;
      const first = await proxyRequest(proxy.port, 'http://web.dev/first?x=1', { agent });
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body.toString())).toEqual({ url: '/first?x=1', host: 'web.dev' });
      expect(first.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(first.reusedSocket).toBe(false);

      const second = await proxyRequest(proxy.port, 'http://web.dev/second', { agent });
      expect(second.status).toBe(200);
      expect(JSON.parse(second.body.toString())).toEqual({ url: '/second', host: 'web.dev' });
      expect(second.reusedSocket).toBe(true);

      // Another host on the same client connection.
      const third = await proxyRequest(proxy.port, 'http://api.other:8080/third', { agent });
      expect(JSON.parse(third.body.toString())).toEqual({ url: '/third', host: 'api.other:8080' });
      expect(third.reusedSocket).toBe(true);

      const seen = webRequests.slice(before);
      expect(seen.map((r) => r.url)).toEqual(['/first?x=1', '/second', '/third']);
      for (const r of seen) {
        expect(r.headers['proxy-connection']).toBeUndefined();
      }
      expect(cluster.dials.slice(-3)).toEqual([
        { host: 'web.dev', port: 80 },
        { host: 'web.dev', port: 80 },
        { host: 'api.other', port: 8080 },
      ]);
    } finally {
      agent.destroy();
    }
  });

  it('moves 4 MiB up and 4 MiB down through plain HTTP intact', async () => {
    const down = await proxyRequest(proxy.port, 'http://web.dev/big');
    expect(down.status).toBe(200);
    expect(down.body.length).toBe(big.length);
    expect(sha(down.body)).toBe(sha(big));

    const up = await proxyRequest(proxy.port, 'http://web.dev/upload', { method: 'POST', body: big });
    expect(up.status).toBe(200);
    expect(up.headers['x-sha256']).toBe(sha(big));
    expect(sha(up.body)).toBe(sha(big));
  });

  it('answers plain requests it cannot forward with 502 or 400', async () => {
    const refused = await proxyRequest(proxy.port, 'http://refused.dev/x');
    expect(refused.status).toBe(502);
    expect(refused.body.toString()).toMatch(/^kt proxy: cannot connect to refused\.dev:80: .*\n$/);

    const unknown = await proxyRequest(proxy.port, 'http://nope.dev/x');
    expect(unknown.status).toBe(502);

    const direct = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: HOST, port: proxy.port, path: '/not-a-proxy-request', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(direct).toBe(400);
  });

  it('forwards upgrades (WebSocket-style) as bytes', async () => {
    const socket = connect({ host: HOST, port: proxy.port, allowHalfOpen: true });
    await once(socket, 'connect');
    const reader = byteReader(socket);
    socket.write('GET http://web.dev/ws HTTP/1.1\r\nHost: web.dev\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    const head = (await reader.readUntil('\r\n\r\n')).toString();
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain('X-Path: /ws\r\n');
    expect((await roundTrip(socket, reader, Buffer.from('after upgrade'))).toString()).toBe('after upgrade');
  });

  it('counts connections', async () => {
    const stats = proxy.stats();
    expect(stats.total).toBeGreaterThan(10);
    expect(stats.socks5).toBeGreaterThan(0);
    expect(stats.socks4).toBe(1);
    expect(stats.http).toBeGreaterThan(0);
    expect(stats.dialFailures).toBeGreaterThan(0);
    // Every test closed its connections; give the proxy a moment to see the FINs.
    for (let i = 0; i < 50 && proxy.stats().active > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.stats().active).toBe(0);
  });

  it('reports a port in use as one sentence', async () => {
    const attempt = startProxy({ port: proxy.port, dial: cluster.dial });
    await expect(attempt).rejects.toBeInstanceOf(Error);
    await expect(attempt).rejects.toMatchObject({
      message: `port ${proxy.port} on 127.0.0.1 is already in use; pick another with --proxy-port`,
      code: 'EADDRINUSE',
    });
  });
});

describe('socks-proxy shutdown', () => {
  it('close() cuts open tunnels and frees the port', async () => {
    const cluster = fakeCluster();
    const echo = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    cluster.routes.set('echo.dev:7', await listening(echo));
    const proxy = await startProxy({ port: 0, dial: cluster.dial });
    try {
      const { socket, reply } = await socks5(proxy.port, { domain: 'echo.dev' }, 7);
      expect(reply).toBe(0x00);
      const ended = once(socket, 'end');
      socket.resume();
      const started = Date.now();
      await proxy.close();
      await ended;
      socket.destroy();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(proxy.stats().active).toBe(0);
      // The port can be taken again.
      const again = await startProxy({ port: proxy.port, dial: cluster.dial });
      await again.close();
    } finally {
      await proxy.close();
      echo.close();
    }
  });
});
