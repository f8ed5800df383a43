// Hosts mode on loopback: listeners on 127.20.0.x reach a fake Dialer with the Service's FQDN, the
// hosts lines go into a temporary hosts file, and close() gives that file back byte for byte.
// Linux only: other systems answer on 127.0.0.1 alone until loopback aliases are added.
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Dialer } from '../../../../../plugins/tunnel/dialer.ts';
import { readSection } from '../../../../../plugins/connect/hosts/hosts-file.ts';
import { createLoopbackAllocator, startHostsMode } from '../../../../../plugins/connect/hosts/hosts-mode.ts';
import type { HostsService } from '../../../../../plugins/connect/hosts/hosts-mode.ts';
import type { ProxyLogger } from '../../../../../plugins/connect/socks/socks-proxy.ts';

const ORIGINAL = Buffer.from('127.0.0.1\tlocalhost\n# comment caf\u00e9\n::1\tlocalhost ip6-localhost', 'utf8');

async function listenOn(server: Server, host: string, port = 0): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return address.port;
}

/** A port free on 127.0.0.1 (and, practically, on the other loopback addresses). */
async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenOn(server, '127.0.0.1');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends `payload`, half-closes, and collects the reply until the other side's FIN. */
async function exchange(host: string, port: number, payload: Buffer): Promise<Buffer> {
  const socket = connect({ host, port, allowHalfOpen: true });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.end(payload);
  await once(socket, 'end');
  socket.destroy();
  return Buffer.concat(chunks);
}

/** How a connection attempt ends: the first error code, or 'end' when the other side hung up. */
async function outcome(host: string, port: number): Promise<string> {
  const socket: Socket = connect({ host, port });
  return new Promise<string>((resolve) => {
    socket.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
    socket.on('end', () => resolve('end'));
    socket.on('connect', () => socket.write('x'));
  }).finally(() => socket.destroy());
}

function sha(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

describe.runIf(process.platform === 'linux')('hosts mode on loopback', () => {
  let dir: string;
  let hostsFile: string;
  let echo: Server;
  let echoPort: number;
  const dials: { host: string; port: number }[] = [];
  const warnings: string[] = [];
  const log: ProxyLogger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg) => warnings.push(msg),
  };
  /** Dials the echo server, except for names of the "broken" namespace. */
  const dial: Dialer = async (host, port) => {
    dials.push({ host, port });
    if (host.includes('.broken.')) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const socket = connect({ host: '127.0.0.1', port: echoPort, allowHalfOpen: true });
    await once(socket, 'connect');
    return socket;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-hosts-mode-'));
    hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, ORIGINAL);
    echo = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    echoPort = await listenOn(echo, '127.0.0.1');
    dials.length = 0;
    warnings.length = 0;
  });

  afterEach(async () => {
    echo.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves each Service on its own loopback address, writes its names, and restores the file', async () => {
    const webPort = await freePort();
    const dbPort = await freePort();
    const services: HostsService[] = [
      { name: 'web', namespace: 'dev', ports: [{ port: webPort, protocol: 'TCP' }, { port: 5353, protocol: 'UDP' }] },
      { name: 'db', namespace: 'other', ports: [{ port: dbPort }] },
    ];
    const mode = await startHostsMode({ services, namespace: 'dev', dial, hostsFile, sessionId: 'test-session', log });
    try {
      expect(mode.entries()).toEqual([
        {
          name: 'web',
          namespace: 'dev',
          ip: '127.20.0.1',
          names: ['web', 'web.dev', 'web.dev.svc', 'web.dev.svc.cluster.local'],
          ports: [webPort],
          skippedPorts: [],
          // No UDP flows were handed in: no UDP socket.
          udpPorts: [],
          skippedUdpPorts: [],
        },
        {
          name: 'db',
          namespace: 'other',
          ip: '127.20.0.2',
          names: ['db.other', 'db.other.svc', 'db.other.svc.cluster.local'],
          ports: [dbPort],
          skippedPorts: [],
          udpPorts: [],
          skippedUdpPorts: [],
        },
      ]);
      const content = await readFile(hostsFile, 'latin1');
      expect(content.startsWith(ORIGINAL.toString('latin1'))).toBe(true);
      expect(readSection(content, 'test-session')).toEqual([
        { ip: '127.20.0.1', names: ['web', 'web.dev', 'web.dev.svc', 'web.dev.svc.cluster.local'] },
        { ip: '127.20.0.2', names: ['db.other', 'db.other.svc', 'db.other.svc.cluster.local'] },
      ]);

      expect((await exchange('127.20.0.1', webPort, Buffer.from('to web'))).toString()).toBe('to web');
      expect(dials.at(-1)).toEqual({ host: 'web.dev.svc.cluster.local', port: webPort });
      expect((await exchange('127.20.0.2', dbPort, Buffer.from('to db'))).toString()).toBe('to db');
      expect(dials.at(-1)).toEqual({ host: 'db.other.svc.cluster.local', port: dbPort });

      const big = randomBytes(4 * 1024 * 1024);
      const echoed = await exchange('127.20.0.1', webPort, big);
      expect(echoed.length).toBe(big.length);
      expect(sha(echoed)).toBe(sha(big));

      // Nothing listens on the other address's port.
      expect(await outcome('127.20.0.1', dbPort)).toBe('ECONNREFUSED');
    } finally {
      await mode.close();
    }
    expect((await readFile(hostsFile)).equals(ORIGINAL)).toBe(true);
    expect(await outcome('127.20.0.1', webPort)).toBe('ECONNREFUSED');
  });

  it('adds and removes Services live', async () => {
    const allocator = createLoopbackAllocator('127.20.50.1');
    const webPort = await freePort();
    const cachePort = await freePort();
    const web: HostsService = { name: 'web', namespace: 'dev', ports: [{ port: webPort }] };
    const cache: HostsService = { name: 'cache', namespace: 'dev', ports: [{ port: cachePort }] };
    const mode = await startHostsMode({ services: [web], namespace: 'dev', dial, hostsFile, sessionId: 'live', allocator, log });
    try {
      expect(readSection(await readFile(hostsFile, 'latin1'), 'live')?.map((e) => e.ip)).toEqual(['127.20.50.1']);

      await mode.update([web, cache]);
      expect(mode.entries().map((e) => [e.name, e.ip])).toEqual([
        ['web', '127.20.50.1'],
        ['cache', '127.20.50.2'],
      ]);
      const section = readSection(await readFile(hostsFile, 'latin1'), 'live');
      expect(section).toContainEqual({ ip: '127.20.50.2', names: ['cache', 'cache.dev', 'cache.dev.svc', 'cache.dev.svc.cluster.local'] });
      expect((await exchange('127.20.50.2', cachePort, Buffer.from('c'))).toString()).toBe('c');
      expect(dials.at(-1)).toEqual({ host: 'cache.dev.svc.cluster.local', port: cachePort });

      // web goes away; cache gets a second port.
      const extraPort = await freePort();
      await mode.update([{ ...cache, ports: [{ port: cachePort }, { port: extraPort }] }]);
      expect(mode.entries()).toMatchObject([{ name: 'cache', ip: '127.20.50.2', ports: [cachePort, extraPort].sort((a, b) => a - b) }]);
      expect(readSection(await readFile(hostsFile, 'latin1'), 'live')?.map((e) => e.ip)).toEqual(['127.20.50.2']);
      expect(await outcome('127.20.50.1', webPort)).toBe('ECONNREFUSED');
      expect((await exchange('127.20.50.2', extraPort, Buffer.from('e'))).toString()).toBe('e');
    } finally {
      await mode.close();
    }
    expect((await readFile(hostsFile)).equals(ORIGINAL)).toBe(true);
  });

  it('skips a port it cannot bind with a warning, and resets connections the Dialer refuses', async () => {
    const allocator = createLoopbackAllocator('127.20.60.1');
    const busyPort = await freePort();
    const okPort = await freePort();
    const squatter = createServer();
    await listenOn(squatter, '127.20.60.1', busyPort);
    const mode = await startHostsMode({
      services: [
        { name: 'api', namespace: 'dev', ports: [{ port: busyPort }, { port: okPort }] },
        { name: 'down', namespace: 'broken', ports: [{ port: okPort }] },
      ],
      namespace: 'dev',
      dial,
      hostsFile,
      sessionId: 'skips',
      allocator,
      log,
    });
    try {
      expect(mode.entries()).toMatchObject([
        { name: 'api', ip: '127.20.60.1', ports: [okPort], skippedPorts: [busyPort] },
        { name: 'down', ip: '127.20.60.2', ports: [okPort], skippedPorts: [] },
      ]);
      expect(warnings).toEqual([
        `cannot listen on 127.20.60.1:${busyPort} for api.dev: the port is in use on that address; skipping this port`,
      ]);
      expect((await exchange('127.20.60.1', okPort, Buffer.from('ok'))).toString()).toBe('ok');
      expect(await outcome('127.20.60.2', okPort)).toBe('ECONNRESET');
      expect(dials.at(-1)).toEqual({ host: 'down.broken.svc.cluster.local', port: okPort });
    } finally {
      await mode.close();
      squatter.close();
    }
    expect((await readFile(hostsFile)).equals(ORIGINAL)).toBe(true);
  });

  it('undoes its listeners when the hosts file cannot be written', async () => {
    const allocator = createLoopbackAllocator('127.20.70.1');
    const port = await freePort();
    const attempt = startHostsMode({
      services: [{ name: 'web', namespace: 'dev', ports: [{ port }] }],
      namespace: 'dev',
      dial,
      hostsFile: join(dir, 'missing', 'hosts'),
      sessionId: 'fails',
      allocator,
      log,
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await outcome('127.20.70.1', port)).toBe('ECONNREFUSED');
  });
});
