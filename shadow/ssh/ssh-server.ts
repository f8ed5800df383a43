// The shadow's SSH server: the laptop's way into the cluster. Publickey login for SSH_USER with
// the session key only; direct-tcpip (dial into the cluster), tcpip-forward (listen in the pod and
// send connections back), and two exec commands, kt-ping and kt-udp (a UDP flow, shadow/udp).
// Nothing else: no shell, no pty, no sftp.
import { widenWindow } from '../../runtime/ssh-window.ts';
import { batchWritesPerTick } from '../../runtime/ssh-writes.ts';
import { leanAesGcm } from '../../runtime/ssh-gcm.ts';
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientInfo, Connection, ParsedKey, ServerChannel, Session } from 'ssh2';
import { SHADOW_LIMITS, SHADOW_PING, SHADOW_UDP } from '../../contract/index.ts';
import { pingReply } from '../../contract/version.ts';
import { DEFAULT_DIAL_TIMEOUT_MS, dialTcp, hostPort, isDialablePort } from './dial.ts';
import { listenTcp } from '../../runtime/listen.ts';
import type { Logger } from '../../runtime/log.ts';
import { errorMessage } from '../../runtime/log.ts';
import { debugJoinErrors, joinStreams } from '../../runtime/join.ts';
import { RemoteForwards } from './remote-forwards.ts';
import { UdpFlows, parseUdpCommand } from '../udp/udp-flows.ts';
import type { UdpFlowStats } from '../udp/udp-flows.ts';
import { AUTH_METHODS, decide, parseAuthorizedKey, parseHostKey } from './ssh-auth.ts';
import { OPEN_FAILURE, rejectChannel } from './ssh-reject.ts';

const { Server } = ssh2;

/** The one command a session may exec: a health check, answered with pong and the contract version. */
export const PING_COMMAND = SHADOW_PING.command;

// A laptop that vanished without closing (sleep, network drop) is noticed within ~15 s, which
// bounds how long self-healing waits beyond its grace period.
export const KEEPALIVE_INTERVAL_MS = 5_000;
export const KEEPALIVE_COUNT_MAX = 3;
/** A connection that has not logged in by then is dropped. */
export const AUTH_TIMEOUT_MS = 30_000;
/** Failed login attempts allowed on one connection. */
export const MAX_AUTH_FAILURES = 10;
/** On close, connections get this long to go before they are cut. */
export const CLOSE_GRACE_MS = 1000;

/** Turns a name into an address the way the pod would (search list included). */
export type HostLookup = (host: string) => Promise<string>;

export interface SshServerOptions {
  /** Undefined: all interfaces. */
  host?: string;
  port: number;
  /** The private host key (PEM or OpenSSH text). */
  hostKey: Buffer | string;
  /** The OpenSSH public key line of the only client key let in. */
  authorizedKey: string;
  lookup: HostLookup;
  log: Logger;
  maxChannels?: number;
  maxForwards?: number;
  /** UDP flows open at once per connection; default SHADOW_UDP.maxFlows. */
  maxUdpFlows?: number;
  dialTimeoutMs?: number;
  authTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** The contract version the ping reply reports; default CONTRACT_VERSION. */
  contractVersion?: string;
}

export interface SshServerHandle {
  readonly port: number;
  /** Connections open now (logged in or not). */
  connections(): number;
  /** The UDP flows' counters (open now, opened, expired, dropped, ...). */
  udpStats(): UdpFlowStats;
  /** Ends every connection, stops every listener; resolves when all is closed. */
  close(): Promise<void>;
  /**
   * The first half of a graceful stop, when remote forwards are listening: keep accepting on them
   * for lingerMs (callers may still be sent here until the endpoint removal reaches kube-proxy),
   * then stop accepting and give connections already forwarded up to graceMs to finish. The SSH
   * connections stay up meanwhile, so forwarded traffic still reaches the laptop. Then close().
   */
  drain(lingerMs: number, graceMs: number): Promise<void>;
}

interface Shared {
  options: SshServerOptions;
  authorized: ParsedKey;
  log: Logger;
  maxChannels: number;
  maxForwards: number;
  /** Every TCP socket dialed or accepted for a channel, for shutdown. */
  sockets: Set<Socket>;
  connections: Set<Connection>;
  forwards: Set<RemoteForwards>;
  /** Sockets accepted on remote forwards and handed to a laptop. */
  forwarded: Set<Socket>;
  udp: UdpFlows;
}

export async function startSshServer(options: SshServerOptions): Promise<SshServerHandle> {
  parseHostKey(options.hostKey); // fails early with a clear message
  const shared: Shared = {
    options,
    authorized: parseAuthorizedKey(options.authorizedKey),
    log: options.log,
    maxChannels: options.maxChannels ?? SHADOW_LIMITS.maxChannels,
    maxForwards: options.maxForwards ?? SHADOW_LIMITS.maxForwards,
    sockets: new Set(),
    connections: new Set(),
    forwards: new Set(),
    forwarded: new Set(),
    udp: new UdpFlows(options.lookup, options.log.child({ component: 'udp' })),
  };
  const track = (socket: Socket): void => {
    shared.sockets.add(socket);
    socket.once('close', () => shared.sockets.delete(socket));
  };

  // One buffer per SSH packet fewer each way (see ssh-gcm.ts); V8's GC stays as it is here: the
  // pod has a memory limit.
  leanAesGcm();
  const ssh = new Server({
    hostKeys: [options.hostKey],
    ident: 'kt-shadow',
    keepaliveInterval: options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: options.keepaliveCountMax ?? KEEPALIVE_COUNT_MAX,
  });
  ssh.on('connection', (conn: Connection, info: ClientInfo) => handleConnection(conn, info, shared, track));

  // We own the listening socket (and so every raw connection) and hand each to ssh2.
  const rawSockets = new Set<Socket>();
  const tcp: NetServer = createServer({ noDelay: true }, (socket) => {
    rawSockets.add(socket);
    socket.once('close', () => rawSockets.delete(socket));
    socket.on('error', () => {}); // ssh2 reports it on the connection
    batchWritesPerTick(socket);
    ssh.injectSocket(socket);
  });
  const port = await listenTcp(tcp, 'SSH', options.host, options.port);

  let closing: Promise<void> | undefined;
  return {
    port,
    connections: () => rawSockets.size,
    udpStats: () => shared.udp.stats(),
    async drain(lingerMs, graceMs) {
      if (![...shared.forwards].some((f) => f.ports.length > 0)) return;
      shared.log.info('draining: still accepting forwarded connections', { lingerMs });
      await new Promise((r) => setTimeout(r, lingerMs));
      for (const f of shared.forwards) f.closeAll();
      const end = Date.now() + graceMs;
      while (shared.forwarded.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      shared.log.info('drained', { stillOpen: shared.forwarded.size });
    },
    close() {
      closing ??= (async () => {
        const listenerClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
        for (const conn of shared.connections) conn.end();
        const allClosed = Promise.all(
          [...rawSockets].map((socket) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())))),
        );
        const timer = setTimeout(() => {
          for (const socket of rawSockets) socket.destroy();
        }, CLOSE_GRACE_MS);
        await allClosed;
        clearTimeout(timer);
        for (const socket of shared.sockets) socket.destroy();
        shared.udp.closeAll();
        await listenerClosed;
      })();
      return closing;
    },
  };
}

function handleConnection(conn: Connection, info: ClientInfo, shared: Shared, track: (socket: Socket) => void): void {
  const { options, maxChannels } = shared;
  const log = shared.log.child({ peer: hostPort(info.ip, info.port) });
  shared.connections.add(conn);
  let closed = false;
  let channels = 0;
  let udpFlows = 0;
  let authFailures = 0;

  const acquireChannel = (): boolean => {
    if (channels >= maxChannels) return false;
    channels++;
    return true;
  };
  const releaser = (): (() => void) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      channels--;
    };
  };
  const forwards = new RemoteForwards({
    conn,
    log,
    maxForwards: shared.maxForwards,
    acquireChannel,
    releaseChannel: () => channels--,
    track: (socket) => {
      track(socket);
      shared.forwarded.add(socket);
      socket.once('close', () => shared.forwarded.delete(socket));
    },
  });
  shared.forwards.add(forwards);

  const authTimer = setTimeout(() => {
    if (conn.authenticated) return;
    log.info('ssh login timed out');
    conn.end();
  }, options.authTimeoutMs ?? AUTH_TIMEOUT_MS);
  authTimer.unref();

  conn.on('authentication', (ctx) => {
    if (decide(shared.authorized, ctx) === 'accept') {
      ctx.accept();
      return;
    }
    // 'none' is how clients ask which methods exist: not a failure worth counting.
    if (ctx.method !== 'none') {
      authFailures++;
      log.info('ssh login refused', { user: ctx.username, method: ctx.method });
    }
    ctx.reject(AUTH_METHODS);
    if (authFailures >= MAX_AUTH_FAILURES) conn.end();
  });

  conn.on('ready', () => {
    clearTimeout(authTimer);
    log.info('ssh client logged in');
  });

  conn.on('session', (accept, reject) => {
    if (!acquireChannel()) {
      rejectChannel(conn, reject, OPEN_FAILURE.resourceShortage, `too many channels (at most ${maxChannels})`);
      return;
    }
    const release = releaser();
    const session: Session = accept();
    session.once('close', release);
    session.on('exec', (acceptExec, rejectExec, execInfo) => {
      const udp = parseUdpCommand(execInfo.command);
      if (udp !== undefined) {
        const channel: ServerChannel = acceptExec();
        const refuse = (reason: string): void => {
          channel.on('error', () => {});
          // The reason first, then the status: exit() goes out at once, a write after this tick.
          channel.stderr.write(`${reason}\n`, () => {
            channel.exit(1);
            channel.end();
          });
        };
        const maxUdpFlows = options.maxUdpFlows ?? SHADOW_UDP.maxFlows;
        if (typeof udp === 'string') refuse(udp);
        else if (udpFlows >= maxUdpFlows) refuse(`too many UDP flows (at most ${maxUdpFlows})`);
        else {
          udpFlows++;
          session.once('close', () => udpFlows--);
          shared.udp.serve(channel, udp);
        }
        return;
      }
      if (execInfo.command.trim() !== PING_COMMAND) {
        log.info('exec refused', { command: execInfo.command.slice(0, 100) });
        rejectExec();
        return;
      }
      const channel: ServerChannel = acceptExec();
      channel.on('error', () => {});
      channel.write(pingReply(options.contractVersion));
      channel.exit(0);
      channel.end();
    });
  });

  conn.on('tcpip', (accept, reject, request) => {
    const target = hostPort(request.destIP, request.destPort);
    if (!acquireChannel()) {
      log.warn('direct-tcpip refused: too many channels', { target });
      rejectChannel(conn, reject, OPEN_FAILURE.resourceShortage, `too many channels (at most ${maxChannels})`);
      return;
    }
    const release = releaser();
    const dial = async (): Promise<Socket> => {
      if (!isDialablePort(request.destPort)) throw new Error(`bad port ${request.destPort}`);
      const address = await options.lookup(request.destIP);
      return dialTcp(address, request.destPort, options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
    };
    dial()
      .then(
        (socket) => {
          track(socket);
          if (closed) {
            release();
            socket.destroy();
            return;
          }
          const channel = accept();
          widenWindow(channel);
          channel.once('close', release);
          log.debug('direct-tcpip open', { target, address: hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0) });
          void joinStreams(channel, socket, { halfClose: 'ssh-eof', cut: 'linger', onError: debugJoinErrors(log) });
        },
        (err: unknown) => {
          release();
          const reason = errorMessage(err);
          log.info('direct-tcpip failed', { target, reason });
          if (!closed) rejectChannel(conn, reject, OPEN_FAILURE.connectFailed, reason);
        },
      )
      .catch((err: unknown) => log.error('direct-tcpip handling failed', { target, error: errorMessage(err) }));
  });

  conn.on('request', (accept, reject, name, request) => forwards.handleRequest(accept, reject, name, request));

  conn.on('error', (err: Error) => log.debug('ssh connection error', { error: err.message }));

  conn.on('close', () => {
    closed = true;
    clearTimeout(authTimer);
    forwards.closeAll();
    shared.forwards.delete(forwards);
    shared.connections.delete(conn);
    log.info('ssh client disconnected');
  });
}
