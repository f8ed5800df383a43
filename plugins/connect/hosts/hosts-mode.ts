// The "hosts" connect mode: no TUN device and no routes. Each Service gets a loopback address
// (127.20.0.1, 127.20.0.2, ...), a TCP listener on that address for each of its TCP ports which
// dials the Service through the tunnel, and hosts-file lines mapping its cluster names to that
// address. Linux routes all of 127.0.0.0/8 to lo, so the addresses need no set-up there; macOS
// only answers on 127.0.0.1 until an alias is added (`ifconfig lo0 alias 127.20.0.1 up`, root),
// which is what the optional addAlias/removeAlias hooks are for. A UDP port of a Service gets a UDP
// socket on the same address, relayed through the tunnel's UDP flows (udp-relay.ts): replies leave
// that socket, so they come from the address and port the program sent to.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dialer } from '../../tunnel/dialer.ts';
import { restoreHosts, writeHostsSection } from './hosts-file.ts';
import type { HostsEntry, WriteFileOptions } from './hosts-file.ts';
import { joinStreams } from '../../../runtime/join.ts';
import { silentProxyLogger } from '../socks/socks-proxy.ts';
import type { ProxyLogger } from '../socks/socks-proxy.ts';
import { DEFAULT_CLUSTER_DOMAIN } from '../../../contract/index.ts';
import { startUdpRelay, type UdpRelay } from '../udp-relay.ts';
import type { UdpTunnel, openUdpFlow } from '../../tunnel/udp.ts';

export { DEFAULT_CLUSTER_DOMAIN };
export const FIRST_LOOPBACK_ADDRESS = '127.20.0.1';

export interface ServicePort {
  port: number;
  /** TCP when absent; TCP and UDP get a listener, SCTP none. */
  protocol?: string;
  name?: string;
}

export interface HostsService {
  name: string;
  namespace: string;
  ports: ServicePort[];
}

/** Hands out loopback addresses, one per key; the same key gets the same address back. */
export interface LoopbackAllocator {
  allocate(key: string): string;
  release(key: string): void;
}

function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`invalid IPv4 address ${JSON.stringify(ip)}`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Addresses in 127.0.0.0/8 from `first` upwards, skipping .0 and .255 in the last octet. A released
 * address is not handed out again while fresh ones remain, so that a client holding a stale
 * address does not reach a different Service.
 */
export function createLoopbackAllocator(first: string = FIRST_LOOPBACK_ADDRESS): LoopbackAllocator {
  const start = ipv4ToNumber(first);
  const last = ipv4ToNumber('127.255.255.254');
  if (start >>> 24 !== 127) throw new Error(`${first} is not a loopback address`);
  let next = start;
  const byKey = new Map<string, string>();
  const released: string[] = [];
  return {
    allocate(key) {
      const existing = byKey.get(key);
      if (existing) return existing;
      while ((next & 255) === 0 || (next & 255) === 255) next++;
      let ip: string | undefined;
      if (next <= last) ip = numberToIpv4(next++);
      else ip = released.shift();
      if (ip === undefined) throw new Error('no loopback addresses left');
      byKey.set(key, ip);
      return ip;
    },
    release(key) {
      const ip = byKey.get(key);
      if (ip === undefined) return;
      byKey.delete(key);
      released.push(ip);
    },
  };
}

/** The names a Service answers to from the session namespace. */
export function serviceHostNames(service: { name: string; namespace: string }, sessionNamespace: string, clusterDomain: string): string[] {
  const { name, namespace } = service;
  const names = [`${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.${clusterDomain}`];
  // The bare name only for the session's own namespace, and never one that would shadow the machine.
  if (namespace === sessionNamespace && !RESERVED_BARE_NAMES.has(name.toLowerCase())) names.unshift(name);
  return names;
}

const RESERVED_BARE_NAMES = new Set(['localhost', 'localhost.localdomain', 'broadcasthost', 'ip6-localhost', 'ip6-loopback']);

export function serviceFqdn(service: { name: string; namespace: string }, clusterDomain: string): string {
  return `${service.name}.${service.namespace}.svc.${clusterDomain}`;
}

export interface HostsModeEntry {
  name: string;
  namespace: string;
  ip: string;
  /** Names written to the hosts file for this Service. */
  names: string[];
  /** TCP ports listening on `ip`. */
  ports: number[];
  /** TCP ports that could not be bound (in use, privileged, ...). */
  skippedPorts: number[];
  /** UDP ports relayed on `ip`. */
  udpPorts: number[];
  /** UDP ports that could not be bound. */
  skippedUdpPorts: number[];
}

export interface HostsModeOptions {
  services: readonly HostsService[];
  /** The session's namespace: its Services also get their bare name. */
  namespace: string;
  clusterDomain?: string;
  dial: Dialer;
  /** Carries UDP ports' datagrams; without it UDP ports get no socket. */
  udp?: { tunnel: UdpTunnel; idleMs?: number; open?: typeof openUdpFlow };
  /** The hosts file to edit (the machine's, or a temporary file in tests). */
  hostsFile: string;
  /** Marks kt's section in the hosts file. */
  sessionId: string;
  allocator?: LoopbackAllocator;
  /** Makes `ip` usable before listening on it (macOS: ifconfig lo0 alias). Not needed on Linux. */
  addAlias?: (ip: string) => Promise<void> | void;
  removeAlias?: (ip: string) => Promise<void> | void;
  log?: ProxyLogger;
  /** For tests: passed to the hosts-file writer. */
  hostsWriteOptions?: WriteFileOptions;
}

export interface HostsMode {
  /** Current entries, one per Service. */
  entries(): HostsModeEntry[];
  /** Brings listeners and hosts lines in line with `services` (added, removed, changed ports). */
  update(services: readonly HostsService[]): Promise<void>;
  /** Stops the listeners, cuts their connections and restores the hosts file. */
  close(): Promise<void>;
}

interface Running {
  service: HostsService;
  ip: string;
  names: string[];
  listeners: Map<number, { server: Server; sockets: Set<Socket> }>;
  skipped: Set<number>;
  udp: Map<number, UdpRelay>;
  skippedUdp: Set<number>;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function keyOf(service: { name: string; namespace: string }): string {
  return `${service.namespace}/${service.name}`;
}

function tcpPorts(service: HostsService, protocol = 'TCP'): number[] {
  const ports = service.ports
    .filter((p) => (p.protocol ?? 'TCP').toUpperCase() === protocol)
    .map((p) => p.port)
    .filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
  return [...new Set(ports)].sort((a, b) => a - b);
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Starts hosts mode: listeners first, then the hosts file. Rejects (having undone everything) when the hosts file cannot be written. */
export async function startHostsMode(options: HostsModeOptions): Promise<HostsMode> {
  const log = options.log ?? silentProxyLogger;
  const clusterDomain = options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const allocator = options.allocator ?? createLoopbackAllocator();
  const running = new Map<string, Running>();
  const aliased = new Set<string>();
  let closing = false;

  const listen = (run: Running, port: number): Promise<void> => {
    const fqdn = serviceFqdn(run.service, clusterDomain);
    const sockets = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', (err: Error) =>
        log.debug(`hosts mode: client connection for ${fqdn}:${port} failed: ${err.message}`, { service: fqdn, port, error: err.message }),
      );
      options.dial(fqdn, port).then(
        (upstream: Duplex) => {
          if (socket.destroyed || closing) {
            upstream.destroy();
            socket.destroy();
            return;
          }
          // As the proxy beside it: ends pass on, trouble on either side takes both down.
          void joinStreams(socket, upstream, {
            halfClose: 'end',
            cut: 'destroy',
            onClose: 'unless-done',
            onError: (err) => log.debug(`hosts mode: connection to ${fqdn}:${port} failed: ${err.message}`, { service: fqdn, port, error: err.message }),
          });
        },
        (err: unknown) => {
          const error = err instanceof Error ? err.message : String(err);
          log.debug(`hosts mode: cannot connect to ${fqdn}:${port}: ${error}`, { service: fqdn, port, error });
          // A reset tells the client at once that the connection failed.
          socket.resetAndDestroy();
        },
      );
    });
    return new Promise<void>((resolve) => {
      server.once('error', (err: Error) => {
        const code = errorCode(err);
        const why =
          code === 'EADDRINUSE'
            ? 'the port is in use on that address'
            : code === 'EACCES'
              ? 'ports below 1024 need root'
              : code === 'EADDRNOTAVAIL'
                ? 'the address is not configured (on macOS it needs a loopback alias)'
                : err.message;
        log.warn(`cannot listen on ${run.ip}:${port} for ${run.service.name}.${run.service.namespace}: ${why}; skipping this port`, {
          service: keyOf(run.service),
          ip: run.ip,
          port,
          code,
        });
        run.skipped.add(port);
        resolve();
      });
      server.listen(port, run.ip, () => {
        server.removeAllListeners('error');
        server.on('error', (err: Error) =>
          log.warn(`hosts mode: listener ${run.ip}:${port} failed: ${err.message}`, { ip: run.ip, port, error: err.message }),
        );
        run.listeners.set(port, { server, sockets });
        resolve();
      });
    });
  };

  const listenUdp = (run: Running, port: number): Promise<void> => {
    const fqdn = serviceFqdn(run.service, clusterDomain);
    const udp = options.udp;
    if (udp === undefined) return Promise.resolve();
    const socket = createSocket({ type: 'udp4' });
    return new Promise<void>((resolve) => {
      socket.once('error', (err: Error) => {
        const code = errorCode(err);
        const why = code === 'EADDRINUSE' ? 'the port is in use on that address' : code === 'EACCES' ? 'ports below 1024 need root' : err.message;
        log.warn(`cannot listen on UDP ${run.ip}:${port} for ${run.service.name}.${run.service.namespace}: ${why}; skipping this port`, { service: keyOf(run.service), ip: run.ip, port, code });
        run.skippedUdp.add(port);
        socket.close();
        resolve();
      });
      socket.bind(port, run.ip, () => {
        socket.removeAllListeners('error');
        run.udp.set(port, startUdpRelay({
          socket, tunnel: udp.tunnel, label: `hosts mode UDP ${fqdn}:${port}`,
          ...(udp.idleMs === undefined ? {} : { idleMs: udp.idleMs }),
          ...(udp.open === undefined ? {} : { open: udp.open }),
          destination: { host: fqdn, port },
          log: { debug: (m) => log.debug(m, { service: fqdn, port }), warn: (m) => log.warn(m, { service: fqdn, port }) },
        }));
        resolve();
      });
    });
  };

  const startService = async (service: HostsService): Promise<void> => {
    const ip = allocator.allocate(keyOf(service));
    if (options.addAlias && !aliased.has(ip)) {
      await options.addAlias(ip);
      aliased.add(ip);
    }
    const run: Running = {
      service,
      ip,
      names: serviceHostNames(service, options.namespace, clusterDomain),
      listeners: new Map(),
      skipped: new Set(),
      udp: new Map(),
      skippedUdp: new Set(),
    };
    running.set(keyOf(service), run);
    await Promise.all([...tcpPorts(service).map((port) => listen(run, port)), ...tcpPorts(service, 'UDP').map((port) => listenUdp(run, port))]);
  };

  const stopUdpPort = async (run: Running, port: number): Promise<void> => {
    const relay = run.udp.get(port);
    run.udp.delete(port);
    run.skippedUdp.delete(port);
    await relay?.close();
  };

  const stopPort = async (run: Running, port: number): Promise<void> => {
    const listener = run.listeners.get(port);
    run.listeners.delete(port);
    run.skipped.delete(port);
    if (!listener) return;
    const closed = closeServer(listener.server);
    // The Service or port is gone (or the session ends): its connections go too.
    for (const socket of listener.sockets) socket.destroy();
    await closed;
  };

  const stopService = async (run: Running): Promise<void> => {
    running.delete(keyOf(run.service));
    await Promise.all([
      ...[...run.listeners.keys(), ...run.skipped].map((port) => stopPort(run, port)),
      ...[...run.udp.keys(), ...run.skippedUdp].map((port) => stopUdpPort(run, port)),
    ]);
    allocator.release(keyOf(run.service));
    if (options.removeAlias && aliased.delete(run.ip)) await options.removeAlias(run.ip);
  };

  const hostsEntries = (): HostsEntry[] =>
    [...running.values()]
      .sort((a, b) => (keyOf(a.service) < keyOf(b.service) ? -1 : 1))
      .map((run) => ({ ip: run.ip, names: run.names }));

  const writeHosts = (): Promise<boolean> =>
    writeHostsSection(options.hostsFile, options.sessionId, hostsEntries(), options.hostsWriteOptions);

  const apply = async (services: readonly HostsService[]): Promise<void> => {
    const wanted = new Map(services.map((s) => [keyOf(s), s]));
    for (const [key, run] of [...running]) {
      if (!wanted.has(key)) await stopService(run);
    }
    for (const [key, service] of wanted) {
      const run = running.get(key);
      if (!run) {
        await startService(service);
        continue;
      }
      run.service = service;
      const ports = new Set(tcpPorts(service));
      for (const port of [...run.listeners.keys(), ...run.skipped]) {
        if (!ports.has(port)) await stopPort(run, port);
      }
      await Promise.all([...ports].filter((p) => !run.listeners.has(p) && !run.skipped.has(p)).map((p) => listen(run, p)));
      const udp = new Set(tcpPorts(service, 'UDP'));
      for (const port of [...run.udp.keys(), ...run.skippedUdp]) {
        if (!udp.has(port)) await stopUdpPort(run, port);
      }
      await Promise.all([...udp].filter((p) => !run.udp.has(p) && !run.skippedUdp.has(p)).map((p) => listenUdp(run, p)));
    }
    await writeHosts();
  };

  const stopAll = async (): Promise<void> => {
    closing = true;
    await Promise.all([...running.values()].map((run) => stopService(run)));
  };

  // update() and close() run one after another.
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(task: () => Promise<T>): Promise<T> => {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  };

  try {
    await apply(options.services);
  } catch (err) {
    await stopAll();
    await restoreHosts(options.hostsFile, options.sessionId, options.hostsWriteOptions).catch(() => undefined);
    const code = errorCode(err);
    if (code === 'EACCES' || code === 'EPERM') {
      throw new Error(`cannot write ${options.hostsFile}: permission denied; hosts mode needs to edit the hosts file (run as root)`, {
        cause: err,
      });
    }
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    entries: () =>
      [...running.values()].map((run) => ({
        name: run.service.name,
        namespace: run.service.namespace,
        ip: run.ip,
        names: [...run.names],
        ports: [...run.listeners.keys()].sort((a, b) => a - b),
        skippedPorts: [...run.skipped].sort((a, b) => a - b),
        udpPorts: [...run.udp.keys()].sort((a, b) => a - b),
        skippedUdpPorts: [...run.skippedUdp].sort((a, b) => a - b),
      })),
    update: (services) =>
      enqueue(async () => {
        if (closing) throw new Error('hosts mode is closed');
        await apply(services);
      }),
    close() {
      closed ??= enqueue(async () => {
        await stopAll();
        await restoreHosts(options.hostsFile, options.sessionId, options.hostsWriteOptions);
      });
      return closed;
    },
  };
}
