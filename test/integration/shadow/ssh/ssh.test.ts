// The shadow's SSH server and health probes, in-process on loopback with freshly generated keys,
// driven by kt's own Tunnel: its pod lifecycle is a fake that only counts, and its port-forward a
// plain connection to the shadow's SSH port. What kt's client never does (another user, a
// password, cancelling a remote forward, a shell) is driven by a raw ssh2 Client.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Packet } from 'dns2';
import ssh2 from 'ssh2';
import type { ConnectConfig, TcpConnectionDetails } from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, SSH_USER } from '../../../../contract/index.ts';
import { OWN_CONTRACT, parsePingReply } from '../../../../contract/version.ts';
import { silentLogger } from '../../../../plugins/cli/log.ts';
import { Tunnel, type ShadowPodLifecycle } from '../../../../plugins/tunnel/tunnel.ts';
import type { ShadowHandle } from '../../../../shadow/main.ts';
import { httpGet, keyPair, listenDns, startLoopbackShadow, writeSessionDir } from '../fixtures.ts';

const { Client, utils } = ssh2;
type SshClient = InstanceType<typeof Client>;

// ---------------------------------------------------------------------------------------------
// Fixtures: keys, a session directory, a fake upstream DNS server that knows one name.


const hostKeys = keyPair();
const clientKeys = keyPair();
const strangerKeys = keyPair();

function publicBlob(publicLine: string): Buffer {
  const key = utils.parseKey(publicLine);
  if (key instanceof Error) throw key;
  return key.getPublicSSH();
}
const hostBlob = publicBlob(hostKeys.public);

/** A dns2 server on 127.0.0.1 (UDP and TCP on one port) answering local.demo.svc.cluster.local A 127.0.0.1. */
async function startFakeUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const handle = (req: Packet, send: (response: Packet) => Promise<Buffer>): void => {
    const response = Packet.createResponseFromRequest(req);
    const question = req.questions[0];
    if (question?.name.toLowerCase() === 'local.demo.svc.cluster.local' && question.type === Packet.TYPE.A) {
      response.answers.push(
        new Packet.Resource({ name: question.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address: '127.0.0.1' }),
      );
    } else if (question?.name.toLowerCase() !== 'local.demo.svc.cluster.local') {
      response.header.rcode = Packet.RCODE.NXDOMAIN;
    }
    void send(response).catch(() => {});
  };
  return listenDns(handle);
}

// ---------------------------------------------------------------------------------------------
// Helpers

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });

const clients: SshClient[] = [];

function sshConnect(port: number, overrides: Partial<ConnectConfig> = {}): Promise<SshClient> {
  const client = new Client();
  clients.push(client);
  return new Promise<SshClient>((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port,
      username: SSH_USER,
      privateKey: clientKeys.private,
      hostVerifier: (key: Buffer) => key.equals(hostBlob),
      readyTimeout: 10_000,
      ...overrides,
    });
  });
}

/** What the tunnel asked of its pod. */
interface FakePod extends ShadowPodLifecycle { created: number; ensured: number }

function fakePod(): FakePod {
  const pod: FakePod = {
    created: 0,
    ensured: 0,
    create: () => { pod.created++; return Promise.resolve({ running: Promise.resolve() }); },
    ensure: () => { pod.ensured++; return Promise.resolve(); },
  };
  return pod;
}

const tunnels: Tunnel[] = [];

interface TunnelUnderTest { tunnel: Tunnel; pod: FakePod; streams: Socket[] }

/** A Tunnel to the shadow's SSH port on loopback, in place of the pod's port-forward; not started. */
function tunnelTo(port: number, keys: { clientPrivate?: string; hostPublicBlob?: Buffer } = {}): TunnelUnderTest {
  const pod = fakePod();
  const streams: Socket[] = [];
  const openStream = (): Promise<Duplex> => new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { streams.push(socket); resolve(socket); });
    socket.once('error', reject);
  });
  const tunnel = new Tunnel({
    pod,
    openStream,
    keys: { clientPrivate: keys.clientPrivate ?? clientKeys.private, hostPublicBlob: keys.hostPublicBlob ?? hostBlob },
    log: silentLogger,
    dialWaitMs: 5000,
  });
  tunnels.push(tunnel);
  return { tunnel, pod, streams };
}

async function startTunnel(port: number): Promise<TunnelUnderTest> {
  const t = tunnelTo(port);
  await t.tunnel.start();
  return t;
}

function forwardIn(client: SshClient, bindAddr: string, bindPort: number): Promise<number> {
  return new Promise<number>((resolve, reject) => client.forwardIn(bindAddr, bindPort, (err, port) => (err ? reject(err) : resolve(port))));
}

function unforwardIn(client: SshClient, bindAddr: string, bindPort: number): Promise<void> {
  return new Promise<void>((resolve, reject) => client.unforwardIn(bindAddr, bindPort, (err) => (err ? reject(err) : resolve())));
}

function readAll(stream: Duplex): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A loopback TCP server; `onSocket` handles each connection. */
async function tcpServer(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const { server, port } = await tcpServer(() => {});
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Connects to 127.0.0.1:port; resolves with how the connection went. */
function tryConnect(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
  });
}


// ---------------------------------------------------------------------------------------------

let upstream: Awaited<ReturnType<typeof startFakeUpstream>>;
let dir: string;
let shadow: ShadowHandle;
let echo: { server: Server; port: number };
const servers: Server[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'kt-shadow-ssh-'));
  writeSessionDir(dir, hostKeys.private, clientKeys.public, upstream.port);
  shadow = await startLoopbackShadow(dir);
  // An echo server: every byte back, and its end after the client's end.
  echo = await tcpServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  servers.push(echo.server);
});

afterEach(() => {
  for (const client of clients.splice(0)) client.end();
  for (const tunnel of tunnels.splice(0)) tunnel.close();
});

afterAll(async () => {
  await shadow?.close();
  await upstream?.close();
  for (const server of servers) server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shadow SSH login', () => {
  it('accepts the session key for the kt user, pinned host key', async () => {
    const { tunnel, pod } = await startTunnel(shadow.ports.ssh);
    expect(tunnel.state).toBe('up');
    expect(pod).toMatchObject({ created: 1, ensured: 0 });
  });

  it('rejects another key', async () => {
    const { tunnel } = tunnelTo(shadow.ports.ssh, { clientPrivate: strangerKeys.private });
    await expect(tunnel.start()).rejects.toMatchObject({
      level: 'client-authentication',
    });
  });

  it('rejects another user with the right key', async () => {
    await expect(sshConnect(shadow.ports.ssh, { username: 'root' })).rejects.toMatchObject({ level: 'client-authentication' });
  });

  it('rejects a password', async () => {
    await expect(
      sshConnect(shadow.ports.ssh, { privateKey: undefined, password: 'kt', tryKeyboard: true }),
    ).rejects.toMatchObject({ level: 'client-authentication' });
  });

  it('presents the host key from the Secret (a client pinning another key gives up)', async () => {
    const otherBlob = publicBlob(strangerKeys.public);
    const { tunnel } = tunnelTo(shadow.ports.ssh, { hostPublicBlob: otherBlob });
    await expect(tunnel.start()).rejects.toThrow(
      /host/i,
    );
  });
});

describe('shadow SSH exec', () => {
  it('answers kt-ping with pong and the contract version, and exit 0', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    const { output, code } = await new Promise<{ output: string; code: number | null }>((resolve, reject) => {
      client.exec('kt-ping', (err, channel) => {
        if (err) return reject(err);
        let output = '';
        let code: number | null = null;
        channel.on('data', (chunk: Buffer) => (output += chunk.toString()));
        channel.on('exit', (exitCode: number | null) => (code = exitCode));
        channel.on('close', () => resolve({ output, code }));
      });
    });
    expect(output).toBe(`pong ${CONTRACT_VERSION}\n`);
    expect(parsePingReply(output)).toEqual(OWN_CONTRACT);
    expect(code).toBe(0);
  });

  it('answers the tunnel\'s ping', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    expect(await tunnel.ping()).toMatchObject({ contract: OWN_CONTRACT });
  });

  it('refuses other commands and shells', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    await expect(
      new Promise((resolve, reject) => client.exec('id', (err, channel) => (err ? reject(err) : resolve(channel)))),
    ).rejects.toThrow();
    await expect(new Promise((resolve, reject) => client.shell((err, channel) => (err ? reject(err) : resolve(channel))))).rejects.toThrow();
  });
});

describe('shadow SSH direct-tcpip (forwardOut)', () => {
  it('moves 8 MiB through to a TCP echo server and back, intact', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    const channel = await tunnel.dial('127.0.0.1', echo.port);
    const payload = randomBytes(8 * 1024 * 1024);
    const received = readAll(channel);
    channel.end(payload);
    const back = await withTimeout(received, 30_000, '8 MiB echo');
    expect(back.length).toBe(payload.length);
    expect(sha256(back)).toBe(sha256(payload));
  });

  it('keeps the client-to-server direction open after the server half-closes', async () => {
    let serverGot: Promise<Buffer> | undefined;
    const { server, port } = await tcpServer((socket) => {
      socket.on('error', () => {});
      serverGot = readAll(socket);
      socket.end('hello, and goodbye\n'); // our FIN first, then keep reading
    });
    servers.push(server);
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    const channel = await tunnel.dial('127.0.0.1', port);
    const fromServer = await withTimeout(readAll(channel), 5000, 'server greeting');
    expect(fromServer.toString()).toBe('hello, and goodbye\n');
    channel.end('written after the server FIN');
    expect(serverGot).toBeDefined();
    const got = await withTimeout(serverGot!, 5000, 'server read');
    expect(got.toString()).toBe('written after the server FIN');
  });

  it('dials a name through the pod search list', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    for (const name of ['local', 'local.demo', 'local.demo.svc.cluster.local']) {
      const channel = await tunnel.dial(name, echo.port);
      const back = readAll(channel);
      channel.end(`via ${name}`);
      expect((await withTimeout(back, 5000, name)).toString()).toBe(`via ${name}`);
    }
  });

  it('fails promptly, with a reason, for a closed port', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    const port = await closedPort();
    const started = Date.now();
    const err: unknown = await tunnel.dial('127.0.0.1', port).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).cause).toMatchObject({ reason: 2 }); // CONNECT_FAILED
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('fails, with a reason, for a name that does not resolve', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    await expect(tunnel.dial('no-such-service', 80)).rejects.toThrow(/cannot resolve no-such-service: NXDOMAIN/);
  });
});

describe('shadow SSH tcpip-forward (forwardIn)', () => {
  it('listens on a port of its choosing and sends connections back to the client', async () => {
    // The local program: shouts back what it reads.
    const shout = await tcpServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => socket.write(Buffer.from(chunk.toString().toUpperCase())));
      socket.on('end', () => socket.end());
    });
    servers.push(shout.server);
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    let resolveDetails: (info: TcpConnectionDetails) => void = () => {};
    const details = new Promise<TcpConnectionDetails>((resolve) => { resolveDetails = resolve; });
    const port = await tunnel.forwardIn('127.0.0.1', 0, (info) => {
      resolveDetails(info);
      return new Promise<Duplex>((resolve, reject) => {
        const local = connect({ host: '127.0.0.1', port: shout.port, allowHalfOpen: true });
        local.once('connect', () => resolve(local));
        local.once('error', reject);
      });
    });
    expect(port).toBeGreaterThan(0);

    const socket = connect({ host: '127.0.0.1', port });
    const reply = readAll(socket);
    socket.end('shout this');
    expect((await withTimeout(reply, 5000, 'forwarded reply')).toString()).toBe('SHOUT THIS');
    const info = await details;
    expect(info).toMatchObject({ destIP: '127.0.0.1', destPort: port, srcIP: '127.0.0.1' });
  });

  it('closes the caller promptly when the client refuses the forwarded channel', async () => {
    const { tunnel } = await startTunnel(shadow.ports.ssh);
    const port = await tunnel.forwardIn('127.0.0.1', 0, () => Promise.reject(new Error('nothing listens locally')));
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const started = Date.now();
    await withTimeout(new Promise<void>((resolve) => socket.once('close', () => resolve())), 2000, 'caller closed');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops listening on unforwardIn', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    const port = await forwardIn(client, '127.0.0.1', 0);
    expect(await tryConnect(port)).toBe('connected');
    await unforwardIn(client, '127.0.0.1', port);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  });

  it('refuses to cancel a forward that does not exist', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    await expect(unforwardIn(client, '127.0.0.1', await closedPort())).rejects.toThrow();
  });

  it('stops listening when the connection ends', async () => {
    const { tunnel, streams } = await startTunnel(shadow.ports.ssh);
    const port = await tunnel.forwardIn('127.0.0.1', 0, () => Promise.reject(new Error('unused')));
    expect(await tryConnect(port)).toBe('connected');
    const closed = new Promise<void>((resolve) => streams[0]!.once('close', () => resolve()));
    tunnel.close();
    await closed;
    // The server notices the end a moment later.
    const deadline = Date.now() + 2000;
    let result = await tryConnect(port);
    while (result === 'connected' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = await tryConnect(port);
    }
    expect(result).toBe('ECONNREFUSED');
  });
});

describe('shadow SSH limits', () => {
  let limited: ShadowHandle;
  beforeAll(async () => {
    limited = await startLoopbackShadow(dir, { ssh: { maxChannels: 2, maxForwards: 2 } });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('refuses channels beyond the limit, and allows them again once some close', async () => {
    const { tunnel } = await startTunnel(limited.ports.ssh);
    const first = await tunnel.dial('127.0.0.1', echo.port);
    const second = await tunnel.dial('127.0.0.1', echo.port);
    await expect(tunnel.dial('127.0.0.1', echo.port)).rejects.toMatchObject({ cause: { reason: 4 } }); // RESOURCE_SHORTAGE
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    first.resume(); // a channel closes once its readable side has ended
    first.end();
    await withTimeout(firstClosed, 5000, 'first channel closed');
    const third = await tunnel.dial('127.0.0.1', echo.port);
    for (const channel of [second, third]) channel.resume().end();
  });

  it('refuses forwards beyond the limit', async () => {
    const client = await sshConnect(limited.ports.ssh);
    const a = await forwardIn(client, '127.0.0.1', 0);
    await forwardIn(client, '127.0.0.1', 0);
    await expect(forwardIn(client, '127.0.0.1', 0)).rejects.toThrow();
    await unforwardIn(client, '127.0.0.1', a);
    await expect(forwardIn(client, '127.0.0.1', 0)).resolves.toBeGreaterThan(0);
  });
});

describe('shadow health', () => {
  it('answers /healthz and /readyz', async () => {
    expect(shadow.isReady()).toBe(true);
    expect(await httpGet(shadow.ports.health, '/healthz')).toBe(200);
    expect(await httpGet(shadow.ports.health, '/readyz')).toBe(200);
    expect(await httpGet(shadow.ports.health, '/nope')).toBe(404);
  });

  it('stops being ready, then stops listening, on close', async () => {
    const other = await startLoopbackShadow(dir);
    expect(await httpGet(other.ports.health, '/readyz')).toBe(200);
    const { tunnel } = await startTunnel(other.ports.ssh);
    const clientClosed = new Promise<void>((resolve) => tunnel.on('state', (state) => { if (state === 'reconnecting') resolve(); }));
    await withTimeout(other.close(), 5000, 'close');
    expect(other.isReady()).toBe(false);
    await withTimeout(clientClosed, 5000, 'client disconnected');
    tunnel.close();
    expect(await tryConnect(other.ports.health)).toBe('ECONNREFUSED');
    expect(await tryConnect(other.ports.ssh)).toBe('ECONNREFUSED');
  });
});

describe('the tunnel over the shadow', () => {
  it('reconnects when its stream is cut: asks the pod lifecycle first, then dials and remote forwards work again', async () => {
    const { tunnel, pod, streams } = await startTunnel(shadow.ports.ssh);
    const port = await tunnel.forwardIn('127.0.0.1', 0, () => new Promise<Duplex>((resolve, reject) => {
      const local = connect({ host: '127.0.0.1', port: echo.port, allowHalfOpen: true });
      local.once('connect', () => resolve(local));
      local.once('error', reject);
    }));
    const up = new Promise<void>((resolve) => tunnel.on('state', (state) => { if (state === 'up') resolve(); }));
    streams[0]!.destroy();
    await withTimeout(up, 15_000, 'reconnected');
    expect(pod).toMatchObject({ created: 1 });
    expect(pod.ensured).toBeGreaterThanOrEqual(1);
    expect(tunnel.health().reconnects).toBe(1);

    const channel = await tunnel.dial('127.0.0.1', echo.port);
    const back = readAll(channel);
    channel.end('after the cut');
    expect((await withTimeout(back, 5000, 'dial after reconnect')).toString()).toBe('after the cut');

    const socket = connect({ host: '127.0.0.1', port });
    const reply = readAll(socket);
    socket.end('forwarded after the cut');
    expect((await withTimeout(reply, 5000, 'remote forward after reconnect')).toString()).toBe('forwarded after the cut');
  });

  it('a reconnect whose remote forward the shadow refuses closes that connection before it retries', async () => {
    const { tunnel, pod, streams } = await startTunnel(shadow.ports.ssh);
    const port = await tunnel.forwardIn('127.0.0.1', 0, () => Promise.reject(new Error('unused')));
    // Once the old connection let go of the port, something else takes it: the shadow cannot listen again.
    const squatter = createServer();
    pod.ensure = async () => {
      pod.ensured++;
      if (squatter.listening) return;
      for (let i = 0; i < 100 && !squatter.listening; i++) {
        await new Promise<void>((resolve) => { squatter.once('error', () => resolve()); squatter.listen(port, '127.0.0.1', () => resolve()); });
        if (!squatter.listening) await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      streams[0]!.destroy();
      await withTimeout(new Promise<void>((resolve) => { const t = setInterval(() => { if (pod.ensured >= 3) { clearInterval(t); resolve(); } }, 10); }), 10_000, 'three reconnect attempts');
      // Each failed attempt's stream is closed; only the attempt under way may still be open.
      expect(streams.length).toBeGreaterThanOrEqual(3);
      expect(streams.slice(0, -1).every((s) => s.destroyed)).toBe(true);
    } finally {
      tunnel.close();
      squatter.close();
    }
  });

  it('closed while a reconnect is connecting: stays closed, drops that connection and never asks the pod again', async () => {
    const { tunnel, pod, streams } = await startTunnel(shadow.ports.ssh);
    // The session ends (tunnel closed, then the pod deleted) while the reconnect opens its stream.
    const ensure = pod.ensure;
    let connecting: Promise<void> | undefined;
    pod.ensure = async () => {
      await ensure();
      connecting = new Promise((resolve) => setTimeout(() => { tunnel.close(); resolve(); }, 0));
    };
    streams[0]!.destroy();
    await withTimeout(new Promise<void>((resolve) => { const t = setInterval(() => { if (connecting) { clearInterval(t); resolve(); } }, 5); }), 5000, 'reconnect started');
    await connecting;
    await new Promise((r) => setTimeout(r, 500));
    expect(tunnel.health().state).toBe('closed');
    expect(streams).toHaveLength(2);
    expect(streams[1]!.destroyed).toBe(true);
    const ensured = pod.ensured;
    await new Promise((r) => setTimeout(r, 1500));
    expect(pod.ensured).toBe(ensured);
  });
});

describe('the tunnel login', () => {
  it('logs in with one signed request (hostbased), and still logs in to a server that takes publickey only', async () => {
    // A shadow image from before hostbased: publickey only, with its query first.
    const seen: string[] = [];
    const authorized = utils.parseKey(clientKeys.public);
    if (authorized instanceof Error) throw authorized;
    const server = new ssh2.Server({ hostKeys: [hostKeys.private] }, (conn) => {
      conn.on('error', () => {});
      conn.on('authentication', (ctx) => {
        seen.push(`${ctx.method}${'signature' in ctx && ctx.signature ? ' signed' : ''}`);
        if (ctx.method !== 'publickey' || !ctx.key.data.equals(authorized.getPublicSSH())) { ctx.reject(['publickey']); return; }
        if (!ctx.signature || authorized.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true) ctx.accept(); else ctx.reject(['publickey']);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { tunnel } = tunnelTo((server.address() as { port: number }).port);
      await tunnel.start();
      expect(tunnel.health().state).toBe('up');
      expect(seen).toEqual(['hostbased signed', 'publickey', 'publickey signed']);
      tunnel.close();
    } finally {
      server.close();
    }
  });
});
