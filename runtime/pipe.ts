// Joins an SSH channel and a TCP socket, each direction ending on its own (half-close): the
// socket's FIN becomes the channel's EOF, the channel's EOF becomes the socket's FIN, and the
// channel is closed once the socket is fully closed.
import type { Socket } from 'node:net';
import type { ServerChannel } from 'ssh2';
import type { Logger } from './log.ts';

/** After the channel closes, the socket gets this long to flush and close before it is cut. */
export const SOCKET_LINGER_MS = 10_000;

/**
 * Pipes `channel` and `socket` both ways. The socket must allow half-open connections
 * (allowHalfOpen: true). Resolves once both the channel and the socket are closed.
 */
export function pipeChannel(channel: ServerChannel, socket: Socket, log: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    let channelClosed = false;
    let socketClosed = socket.destroyed;
    const settle = (): void => {
      if (channelClosed && socketClosed) resolve();
    };

    channel.on('error', (err: Error) => log.debug('channel error', { error: err.message }));
    socket.on('error', (err: Error) => log.debug('socket error', { error: err.message, code: (err as { code?: unknown }).code }));

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
        setTimeout(() => socket.destroy(), SOCKET_LINGER_MS).unref();
      }
      settle();
    });

    if (socketClosed) {
      endChannel();
      return;
    }

    socket.once('close', () => {
      socketClosed = true;
      if (!channelClosed) endChannel();
      settle();
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
  });
}
