// Remote forwards of one SSH connection (tcpip-forward / cancel-tcpip-forward): a listener in the
// pod per request, each accepted connection sent back to the client as a forwarded-tcpip channel.
import { widenWindow } from '../../runtime/ssh-window.ts';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Connection, ServerChannel } from 'ssh2';
import { hostPort } from './dial.ts';
import { ListenError, listenTcp } from '../../runtime/listen.ts';
import type { Logger } from '../../runtime/log.ts';
import { errorMessage } from '../../runtime/log.ts';
import { debugJoinErrors, joinStreams } from '../../runtime/join.ts';

export interface RemoteForwardsOptions {
  conn: Connection;
  log: Logger;
  /** Listeners allowed at once on this connection. */
  maxForwards: number;
  /** Reserves a channel slot; false when the connection is at its channel limit. */
  acquireChannel(): boolean;
  releaseChannel(): void;
  /** Every socket accepted, so the server can cut them at shutdown. */
  track(socket: Socket): void;
}

interface Forward {
  server: Server;
  /** The address as the client asked for it: forwarded-tcpip channels must name it exactly. */
  bindAddr: string;
  port: number;
}

/** The listen address for an SSH bind address (RFC 4254 §7.1). Undefined: all interfaces. */
export function listenHost(bindAddr: string): string | undefined {
  if (bindAddr === '' || bindAddr === '*') return undefined;
  if (bindAddr === 'localhost') return '127.0.0.1';
  return bindAddr.replace(/^\[(.*)\]$/, '$1');
}

export class RemoteForwards {
  readonly #options: RemoteForwardsOptions;
  /** By the port actually bound. */
  readonly #forwards = new Map<number, Forward>();
  #binding = 0;
  #closed = false;

  constructor(options: RemoteForwardsOptions) {
    this.#options = options;
  }

  /** Ports currently listening. */
  get ports(): number[] {
    return [...this.#forwards.keys()];
  }

  /** Starts listening for `bindAddr:bindPort` (0: any free port); resolves with the port bound. */
  async add(bindAddr: string, bindPort: number): Promise<number> {
    const { maxForwards, log } = this.#options;
    if (this.#closed) throw new Error('the connection is closing');
    if (this.#forwards.size + this.#binding >= maxForwards) {
      throw new Error(`too many remote forwards (at most ${maxForwards} per connection)`);
    }
    if (!Number.isInteger(bindPort) || bindPort < 0 || bindPort > 65535) throw new Error(`bad port ${bindPort}`);
    const forward: Forward = { server: createServer({ allowHalfOpen: true, pauseOnConnect: true }), bindAddr, port: bindPort };
    forward.server.on('connection', (socket: Socket) => this.#accept(forward, socket));
    this.#binding++;
    let port: number;
    try {
      port = await listenTcp(forward.server, 'remote forward', listenHost(bindAddr), bindPort);
    } finally {
      this.#binding--;
    }
    forward.port = port;
    forward.server.on('error', (err: Error) => log.warn('remote forward listener error', { port, error: err.message }));
    if (this.#closed) {
      forward.server.close();
      throw new Error('the connection closed');
    }
    this.#forwards.set(port, forward);
    log.info('remote forward listening', { bind: hostPort(bindAddr || '*', port) });
    return port;
  }

  /** Stops the listener on `port`; connections already forwarded carry on. False if there is none. */
  cancel(port: number): boolean {
    const forward = this.#forwards.get(port);
    if (forward === undefined) return false;
    this.#forwards.delete(port);
    forward.server.close();
    this.#options.log.info('remote forward cancelled', { bind: hostPort(forward.bindAddr || '*', port) });
    return true;
  }

  /** Stops every listener; used when the connection ends. */
  closeAll(): void {
    this.#closed = true;
    for (const port of [...this.#forwards.keys()]) this.cancel(port);
  }

  /** Handles the connection's global requests: tcpip-forward and cancel-tcpip-forward. */
  handleRequest(
    accept: ((chosenPort?: number) => void) | undefined,
    reject: (() => void) | undefined,
    name: string,
    info: { bindAddr?: string; bindPort?: number },
  ): void {
    const { log } = this.#options;
    const bindAddr = info.bindAddr ?? '';
    const bindPort = info.bindPort ?? -1;
    if (name === 'tcpip-forward') {
      this.add(bindAddr, bindPort).then(
        (port) => accept?.(port),
        (err: unknown) => {
          const reason = err instanceof ListenError ? err.message : errorMessage(err);
          log.info('remote forward refused', { bind: hostPort(bindAddr || '*', bindPort), reason });
          reject?.();
        },
      );
    } else if (name === 'cancel-tcpip-forward') {
      if (this.cancel(bindPort)) accept?.();
      else reject?.();
    } else {
      log.info('global request refused', { request: name });
      reject?.();
    }
  }

  #accept(forward: Forward, socket: Socket): void {
    const { conn, log, acquireChannel, releaseChannel, track } = this.#options;
    track(socket);
    socket.on('error', (err: Error) => log.debug('forwarded socket error', { error: err.message }));
    const remoteAddr = socket.remoteAddress ?? '0.0.0.0';
    const remotePort = socket.remotePort ?? 0;
    if (!acquireChannel()) {
      log.warn('forwarded connection refused: too many channels', { port: forward.port, from: hostPort(remoteAddr, remotePort) });
      socket.resetAndDestroy();
      return;
    }
    socket.setNoDelay(true);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      releaseChannel();
    };
    try {
      conn.forwardOut(forward.bindAddr, forward.port, remoteAddr, remotePort, (err: Error | undefined, channel: ServerChannel) => {
        if (err) {
          // The laptop end refused (or the connection went away): reset the caller at once.
          log.info('forwarded connection refused by the client', { port: forward.port, reason: err.message });
          release();
          socket.resetAndDestroy();
          return;
        }
        widenWindow(channel);
        channel.once('close', release);
        void joinStreams(channel, socket, { halfClose: 'ssh-eof', cut: 'linger', onError: debugJoinErrors(log) });
      });
    } catch (err) {
      log.warn('cannot open forwarded channel', { port: forward.port, error: errorMessage(err) });
      release();
      socket.resetAndDestroy();
    }
  }
}
