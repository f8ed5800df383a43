// Joining two streams both ways: the one place that decides how an end (FIN, SSH EOF), an error or
// a cut on one side reaches the other. Every caller names its policy, because the sides differ:
// a program behind a TCP socket must see a reset when the cluster side breaks (transparent mode),
// an SSH server channel has no half-close of its own in ssh2 (the shadow), and a proxy just passes
// ends on and tears down both sides on trouble (SOCKS, hosts mode, the tunnel, the router).
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ServerChannel } from 'ssh2';
import type { Logger } from './log.ts';

/** After the SSH channel closes, the socket gets this long to flush and close before it is cut. */
export const SOCKET_LINGER_MS = 10_000;

export type JoinOptions =
  | {
    /**
     * 'end': each side's end ends the other's writable side (a FIN goes on as a FIN) and the other
     * direction stays open until it ends too.
     */
    halfClose: 'end';
    /**
     * What a side that errors, or closes before the other is done both ways, does to the other.
     * 'destroy': the other is destroyed too.
     * 'reset-a': the same, except that when `b` fails, `a` (a TCP socket whose peer is a program)
     * is reset, so the program sees a broken connection rather than a clean end.
     */
    cut: 'destroy' | 'reset-a';
    /**
     * What a side's close does to the other.
     * 'unless-done': the other is cut unless it has ended both ways (a side that closed has ended
     * both ways, so whatever is left half-done on the other is cut).
     * 'if-aborted': the other is cut only when the closed side never saw its end (it was cut
     * itself); after a clean end the other finishes writing on its own, so an SSH channel that the
     * shadow closed right after its data does not cut what is still on its way to the program.
     */
    onClose: 'unless-done' | 'if-aborted';
    onError?: (err: Error, side: 'a' | 'b') => void;
  }
  | {
    /**
     * 'ssh-eof': `a` is an ssh2 server channel, `b` a socket that allows half-open connections.
     * b's end goes out as an EOF on the channel after b's data (ending an ssh2 server channel
     * would close it both ways), the channel's EOF ends b's writable side.
     */
    halfClose: 'ssh-eof';
    /**
     * 'linger': nothing is cut on an error (a close follows every error): a side that closes ends
     * the other gracefully; after the channel closes the socket keeps what was sent to it, drops
     * what it still reads, and is cut after lingerMs.
     */
    cut: 'linger';
    lingerMs?: number;
    onError?: (err: Error, side: 'a' | 'b') => void;
  };

/** Joins `a` and `b` both ways under `options`; resolves once both have closed. */
export function joinStreams(a: Duplex, b: Duplex, options: JoinOptions): Promise<void> {
  const closed = Promise.all([closedOf(a), closedOf(b)]).then(() => undefined);
  if (options.halfClose === 'ssh-eof') joinSshChannel(a as ServerChannel, b, options.lingerMs ?? SOCKET_LINGER_MS, options.onError);
  else joinEnds(a, b, options.cut, options.onClose, options.onError);
  return closed;
}

function closedOf(stream: Duplex): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function joinEnds(a: Duplex, b: Duplex, cut: 'destroy' | 'reset-a', onClose: 'unless-done' | 'if-aborted', onError?: (err: Error, side: 'a' | 'b') => void): void {
  const take = (victim: Duplex, failed: Duplex): void => {
    if (victim.destroyed) return;
    if (cut === 'reset-a' && victim === a && failed === b && victim instanceof Socket) victim.resetAndDestroy();
    else victim.destroy();
  };
  a.on('error', (err: Error) => {
    onError?.(err, 'a');
    take(b, a);
    a.destroy();
  });
  b.on('error', (err: Error) => {
    onError?.(err, 'b');
    take(a, b);
    b.destroy();
  });
  const closeOther = (other: Duplex, closed: Duplex) => (): void => {
    const cutOther = onClose === 'unless-done' ? !other.writableEnded || !other.readableEnded : !closed.readableEnded;
    if (cutOther) take(other, closed);
  };
  a.once('close', closeOther(b, a));
  b.once('close', closeOther(a, b));
  a.pipe(b);
  b.pipe(a);
}

function joinSshChannel(channel: ServerChannel, socket: Duplex, lingerMs: number, onError?: (err: Error, side: 'a' | 'b') => void): void {
  let channelClosed = false;
  let socketClosed = socket.destroyed;
  channel.on('error', (err: Error) => onError?.(err, 'a'));
  socket.on('error', (err: Error) => onError?.(err, 'b'));

  const endChannel = (): void => {
    // Queued writes go first; then EOF and CLOSE (ssh2 sends both when a server channel ends).
    if (!channel.writableEnded) channel.end();
  };

  channel.once('close', () => {
    channelClosed = true;
    if (!socketClosed) {
      // The client is done: what it sent still reaches the socket, anything more from the
      // socket is dropped, and a socket that will not close is cut after a while.
      socket.unpipe(channel);
      socket.resume();
      socket.end();
      setTimeout(() => socket.destroy(), lingerMs).unref();
    }
  });

  if (socketClosed) {
    endChannel();
    return;
  }

  socket.once('close', () => {
    socketClosed = true;
    if (!channelClosed) endChannel();
  });

  // client → socket; the channel's EOF ends the socket's writable side.
  channel.pipe(socket);
  // socket → client; the socket's FIN is only an EOF on the channel, which stays open for the
  // other direction. By 'end' every chunk has been written to the channel; an empty write queues
  // behind them, so the EOF goes out after the data.
  socket.pipe(channel, { end: false });
  socket.once('end', () => {
    if (channel.writableEnded) return;
    channel.write(Buffer.alloc(0), () => channel.eof());
  });
}

/** onError for the shadow's channel-to-socket joins: errors are worth a debug line, no more. */
export function debugJoinErrors(log: Logger): (err: Error, side: 'a' | 'b') => void {
  return (err, side) => {
    if (side === 'a') log.debug('channel error', { error: err.message });
    else log.debug('socket error', { error: err.message, code: (err as { code?: unknown }).code });
  };
}
