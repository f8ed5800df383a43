// One listening socket per route-table port. On an `http` port every connection is sniffed: the
// HTTP/2 prior-knowledge preface goes to the HTTP/2 router, anything else to the HTTP/1 router
// (which also takes WebSocket upgrades).
import type { Server as HttpServer } from 'node:http';
import type { Http2Server, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { FastHttp1 } from './http1/http1-fast.ts';
import { listenTcp as listenOn } from '../runtime/listen.ts';

/** The client connection preface of HTTP/2 (RFC 9113 section 3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type Sniffed = 'h2' | 'http1';

// Binding, and its one-sentence errors, are the shadow's (both images share them).
export { listenTcp as listenOn, ListenError } from '../runtime/listen.ts';

/**
 * Reads a connection's first bytes until they either are the HTTP/2 preface or cannot be, puts
 * them back, and calls `decide` (undefined: the socket closed or stayed silent for `timeoutMs`
 * and was destroyed).
 *
 * How the bytes are put back matters: the HTTP/1 server reads a socket's native handle directly
 * once it has it, so the bytes go back with the stream still flowing (they are delivered on the
 * next tick, before any new network read); node:http2 drains the readable buffer itself when the
 * session starts, so that socket is paused first.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, decide: (kind: Sniffed | undefined) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const done = (kind: Sniffed | undefined): void => {
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.off('error', onError);
    socket.setTimeout(0);
    socket.off('timeout', onTimeout);
    if (kind === undefined) {
      socket.destroy();
    } else {
      if (kind === 'h2') socket.pause();
      socket.unshift(seen);
    }
    decide(kind);
  };
  const onData = (chunk: Buffer): void => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    if (seen.compare(H2_PREFACE, 0, n, 0, n) !== 0) done('http1');
    else if (seen.length >= H2_PREFACE.length) done('h2');
    // else: a prefix of the preface so far; wait for more.
  };
  const onClose = (): void => done(undefined);
  const onError = (): void => done(undefined);
  const onTimeout = (): void => done(undefined);
  socket.on('data', onData);
  socket.on('close', onClose);
  socket.on('error', onError);
  socket.setTimeout(timeoutMs);
  socket.on('timeout', onTimeout);
}

export interface PortListener {
  /** The port the listener is bound to (differs from the table's port when tests bind port 0). */
  readonly boundPort: number;
  /**
   * Keeps accepting, but tells every caller to reconnect: HTTP/1.1 responses carry
   * `Connection: close`, HTTP/2 sessions get GOAWAY once their streams so far are in (see
   * ROUTER_DRAIN in the contract).
   */
  drain(): void;
  /** Stops accepting; open connections get `graceMs` to finish, then are cut. */
  close(graceMs: number): Promise<void>;
}

export interface HttpPortOptions {
  host: string | undefined;
  port: number;
  http1: HttpServer;
  h2: Http2Server;
  /** Serves HTTP/1 connections first, handing them to `http1` when it meets a request it does not take. */
  fast?: FastHttp1;
  /** A connection that sends nothing for this long is closed. Default 60000. */
  sniffTimeoutMs?: number;
}

/**
 * Listens for HTTP/1.1, WebSocket and HTTP/2 cleartext on one port. The HTTP/1 server is the
 * listening socket (so its connection tracking, timeouts and close() work as usual); its own
 * connection handler runs only for connections that turn out to be HTTP/1.
 */
export async function listenHttpPort(options: HttpPortOptions): Promise<PortListener> {
  const { http1, h2, fast } = options;
  const sniffTimeout = options.sniffTimeoutMs ?? 60_000;
  const handlers = http1.listeners('connection');
  const http1Connection = handlers[0];
  if (handlers.length !== 1 || http1Connection === undefined) throw new Error('the HTTP/1 server must have exactly its own connection handler');
  http1.removeAllListeners('connection');
  const toHttp1 = (socket: Socket): void => {
    http1Connection.call(http1, socket);
  };

  const sniffing = new Set<Socket>();
  // Every accepted socket, also those that left the HTTP/1 server's bookkeeping (WebSockets).
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  let draining = false;
  // GOAWAY names the last stream the session took: a session opened while draining first takes
  // the streams its caller sent with the preface, so none of them is refused.
  const goAwayAfterFirstStream = (session: Http2Session): void => {
    session.once('stream', () => setImmediate(() => session.close()));
  };
  h2.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (draining) goAwayAfterFirstStream(session);
  });
  // Runs before the router's own request handler, so its response goes out with the header.
  http1.prependListener('request', (_req, res) => {
    if (draining) res.setHeader('connection', 'close');
  });
  http1.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    sniffing.add(socket);
    sniffPreface(socket, sniffTimeout, (kind) => {
      sniffing.delete(socket);
      if (kind === 'http1') {
        if (fast === undefined) toHttp1(socket);
        else fast.accept(socket, toHttp1);
      } else if (kind === 'h2') h2.emit('connection', socket);
    });
  });

  const boundPort = await listenOn(http1, 'HTTP', options.host, options.port);
  let closing: Promise<void> | undefined;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    fast?.drain();
    for (const session of sessions) session.close();
  };
  return {
    boundPort,
    drain,
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        drain();
        // Stops accepting and closes idle HTTP/1 connections; busy ones finish their request.
        // Connections accepted just before are still sniffed and answered once, then closed.
        // A response that began before draining kept its connection alive: close it once idle.
        const idleSweep = setInterval(() => http1.closeIdleConnections(), 250);
        idleSweep.unref();
        http1.close(() => {
          clearInterval(idleSweep);
          resolve();
        });
        fast?.close();
        for (const session of sessions) session.close();
        // One that has sent nothing yet gets a second to do so.
        for (const socket of sniffing) socket.setTimeout(Math.min(1000, graceMs));
        const timer = setTimeout(() => {
          clearInterval(idleSweep);
          http1.closeAllConnections();
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        timer.unref();
      });
      return closing;
    },
  };
}
