// Kept-alive raw TCP connections to the backends, for the HTTP/1.1 fast path (http1-fast.ts).
// One pool per router, shared by its ports. A connection is lent to one exchange at a time and
// comes back only once that exchange's response ended cleanly with the backend keeping it open.
import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** What the borrower of a backend connection hears from it. */
export interface BackendUser {
  onData(chunk: Buffer): void;
  /** The backend closed its side (cleanly). */
  onEnd(): void;
  /** The connection failed, timed out connecting, or closed without an end. */
  onError(err: Error): void;
  onDrain(): void;
}

export interface BackendConnection {
  readonly socket: Socket;
  /** True when it served an earlier exchange (the backend may have closed it meanwhile). */
  readonly reused: boolean;
}

export interface BackendPool {
  /** An idle connection to host:port (most recently used first), else a new one. */
  acquire(host: string, port: number, user: BackendUser, fresh?: boolean): BackendConnection;
  /**
   * Takes a connection back once its response is complete. `idleMs` caps how long it may stay
   * idle (the backend's Keep-Alive timeout hint, less a margin).
   */
  release(conn: BackendConnection, idleMs?: number): void;
  /** Drops a connection that cannot be reused. */
  discard(conn: BackendConnection): void;
  /** Closes idle connections to addresses not in `keep`. */
  prune(keep: readonly { host: string; port: number }[]): void;
  close(): void;
}

export interface BackendPoolOptions {
  connectTimeoutMs: number;
  /** Idle connections are closed after this long. Default 15000. */
  idleMs?: number;
  /** At most this many idle connections per address. Default 1024. */
  maxIdlePerAddress?: number;
}

const connectTimeoutError = (): Error => Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
const hangUp = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

class Connection implements BackendConnection {
  user: BackendUser | undefined;
  reused = false;
  idleUntil = 0;
  ended = false;
  connectTimer: NodeJS.Timeout | undefined;

  readonly socket: Socket;
  readonly host: string;
  readonly port: number;

  constructor(socket: Socket, host: string, port: number) {
    this.socket = socket;
    this.host = host;
    this.port = port;
  }
}

export function createBackendPool(options: BackendPoolOptions): BackendPool {
  const idleMs = options.idleMs ?? 15_000;
  const maxIdle = options.maxIdlePerAddress ?? 1024;
  // Idle connections by host, then port (no key string to build per request).
  const idle = new Map<string, Map<number, Connection[]>>();
  const all = new Set<Connection>();
  let closed = false;
  const readBuffer = Buffer.allocUnsafe(64 * 1024);

  const listOf = (host: string, port: number): Connection[] | undefined => idle.get(host)?.get(port);
  const unlist = (conn: Connection): void => {
    const list = listOf(conn.host, conn.port);
    if (list === undefined) return;
    const at = list.lastIndexOf(conn);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) forget(conn.host, conn.port);
  };
  const forget = (host: string, port: number): void => {
    const ports = idle.get(host);
    ports?.delete(port);
    if (ports?.size === 0) idle.delete(host);
  };

  const drop = (conn: Connection): void => {
    clearTimeout(conn.connectTimer);
    conn.user = undefined;
    unlist(conn);
    all.delete(conn);
    conn.socket.destroy();
  };

  // Idle connections are expired by a sweep rather than a timer each, so that lending and taking
  // back a connection costs no timer work.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const ports of [...idle.values()]) for (const list of [...ports.values()]) for (const conn of [...list]) if (conn.idleUntil <= now) drop(conn);
  }, Math.min(1000, idleMs));
  sweep.unref();

  const open = (host: string, port: number, user: BackendUser): Connection => {
    // Reads land in one buffer shared by the pool's sockets and are copied out at their size:
    // cheaper than a stream 'data' event, which costs a 64 KiB allocation per read and the
    // stream machinery on top.
    const socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          if (conn.user !== undefined) conn.user.onData(Buffer.from(buf.subarray(0, n)));
          else drop(conn); // an idle connection has nothing to say
          return true;
        },
      },
    });
    const conn = new Connection(socket, host, port);
    conn.user = user;
    all.add(conn);
    conn.connectTimer = setTimeout(() => socket.destroy(connectTimeoutError()), options.connectTimeoutMs);
    socket.once('connect', () => clearTimeout(conn.connectTimer));
    socket.on('drain', () => conn.user?.onDrain());
    socket.on('end', () => {
      conn.ended = true;
      const owner = conn.user;
      if (owner === undefined) drop(conn);
      else owner.onEnd();
    });
    socket.on('error', (err: Error) => {
      const owner = conn.user;
      drop(conn);
      owner?.onError(err);
    });
    socket.on('close', () => {
      const owner = conn.user;
      drop(conn);
      owner?.onError(hangUp());
    });
    return conn;
  };

  return {
    acquire(host, port, user, fresh = false) {
      const list = fresh ? undefined : listOf(host, port);
      const conn = list?.pop();
      if (list !== undefined && list.length === 0) forget(host, port);
      if (conn !== undefined) {
        conn.user = user;
        conn.reused = true;
        return conn;
      }
      return open(host, port, user);
    },
    release(handle, hintMs) {
      const conn = handle as Connection;
      conn.user = undefined;
      // Flowing again, so that a backend closing the idle connection is noticed.
      conn.socket.resume();
      const list = listOf(conn.host, conn.port);
      if (closed || conn.ended || conn.socket.destroyed || (list?.length ?? 0) >= maxIdle) {
        drop(conn);
        return;
      }
      conn.idleUntil = performance.now() + Math.min(idleMs, hintMs ?? idleMs);
      if (list !== undefined) list.push(conn);
      else {
        let ports = idle.get(conn.host);
        if (ports === undefined) idle.set(conn.host, (ports = new Map()));
        ports.set(conn.port, [conn]);
      }
    },
    discard(handle) {
      drop(handle as Connection);
    },
    prune(keep) {
      const kept = (conn: Connection): boolean => keep.some((a) => a.host === conn.host && a.port === conn.port);
      for (const ports of [...idle.values()]) for (const list of [...ports.values()]) for (const conn of [...list]) if (!kept(conn)) drop(conn);
    },
    close() {
      closed = true;
      clearInterval(sweep);
      for (const conn of [...all]) drop(conn);
    },
  };
}
