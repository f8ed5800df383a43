// The shadow's SSH server and health probes, in-process on loopback with freshly generated keys,
// driven by an ssh2 Client that pins the host key.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Packet } from 'dns2';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, TcpConnectionDetails } from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, SSH_USER } from '../../../../contract/index.ts';
import { OWN_CONTRACT, parsePingReply } from '../../../../contract/version.ts';
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

function forwardOut(client: SshClient, host: string, port: number): Promise<ClientChannel> {
  return new Promise<ClientChannel>((resolve, reject) =>
    client.forwardOut('127.0.0.1', 0, host, port, (err, channel) => (err ? reject(err) : resolve(channel))),
  );
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
});

afterAll(async () => {
  await shadow?.close();
  await upstream?.close();
  for (const server of servers) server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shadow SSH login', () => {
  it('accepts the session key for the kt user, pinned host key', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    expect(client).toBeDefined();
  });

  it('rejects another key', async () => {
    await expect(sshConnect(shadow.ports.ssh, { privateKey: strangerKeys.private })).rejects.toMatchObject({
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
    await expect(sshConnect(shadow.ports.ssh, { hostVerifier: (key: Buffer) => key.equals(otherBlob) })).rejects.toThrow(
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
    const client = await sshConnect(shadow.ports.ssh);
    const channel = await forwardOut(client, '127.0.0.1', echo.port);
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
    const client = await sshConnect(shadow.ports.ssh);
    const channel = await forwardOut(client, '127.0.0.1', port);
    const fromServer = await withTimeout(readAll(channel), 5000, 'server greeting');
    expect(fromServer.toString()).toBe('hello, and goodbye\n');
    channel.end('written after the server FIN');
    expect(serverGot).toBeDefined();
    const got = await withTimeout(serverGot!, 5000, 'server read');
    expect(got.toString()).toBe('written after the server FIN');
  });

  it('dials a name through the pod search list', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    for (const name of ['local', 'local.demo', 'local.demo.svc.cluster.local']) {
      const channel = await forwardOut(client, name, echo.port);
      const back = readAll(channel);
      channel.end(`via ${name}`);
      expect((await withTimeout(back, 5000, name)).toString()).toBe(`via ${name}`);
    }
  });

  it('fails promptly, with a reason, for a closed port', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    const port = await closedPort();
    const started = Date.now();
    const err: unknown = await forwardOut(client, '127.0.0.1', port).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ reason: 2 }); // CONNECT_FAILED
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('fails, with a reason, for a name that does not resolve', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    await expect(forwardOut(client, 'no-such-service', 80)).rejects.toThrow(/cannot resolve no-such-service: NXDOMAIN/);
  });
});

describe('shadow SSH tcpip-forward (forwardIn)', () => {
  it('listens on a port of its choosing and sends connections back to the client', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    const details = new Promise<TcpConnectionDetails>((resolve) =>
      client.on('tcp connection', (info, accept) => {
        const stream = accept();
        stream.on('data', (chunk: Buffer) => stream.write(Buffer.from(chunk.toString().toUpperCase())));
        stream.on('end', () => stream.end());
        resolve(info);
      }),
    );
    const port = await forwardIn(client, '127.0.0.1', 0);
    expect(port).toBeGreaterThan(0);

    const socket = connect({ host: '127.0.0.1', port });
    const reply = readAll(socket);
    socket.end('shout this');
    expect((await withTimeout(reply, 5000, 'forwarded reply')).toString()).toBe('SHOUT THIS');
    const info = await details;
    expect(info).toMatchObject({ destIP: '127.0.0.1', destPort: port, srcIP: '127.0.0.1' });
  });

  it('closes the caller promptly when the client refuses the forwarded channel', async () => {
    const client = await sshConnect(shadow.ports.ssh);
    client.on('tcp connection', (_info, _accept, reject) => reject());
    const port = await forwardIn(client, '127.0.0.1', 0);
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
    const client = await sshConnect(shadow.ports.ssh);
    const port = await forwardIn(client, '127.0.0.1', 0);
    expect(await tryConnect(port)).toBe('connected');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.end();
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
    const client = await sshConnect(limited.ports.ssh);
    const first = await forwardOut(client, '127.0.0.1', echo.port);
    const second = await forwardOut(client, '127.0.0.1', echo.port);
    await expect(forwardOut(client, '127.0.0.1', echo.port)).rejects.toMatchObject({ reason: 4 }); // RESOURCE_SHORTAGE
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    first.resume(); // a channel closes once its readable side has ended
    first.end();
    await withTimeout(firstClosed, 5000, 'first channel closed');
    const third = await forwardOut(client, '127.0.0.1', echo.port);
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
    const client = await sshConnect(other.ports.ssh);
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await withTimeout(other.close(), 5000, 'close');
    expect(other.isReady()).toBe(false);
    await withTimeout(clientClosed, 5000, 'client disconnected');
    expect(await tryConnect(other.ports.health)).toBe('ECONNREFUSED');
    expect(await tryConnect(other.ports.ssh)).toBe('ECONNREFUSED');
  });
});
