// Raw TCP echo: every byte received is sent back.
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from './log.ts';
import { DEFAULT_GRACE_MS, listen } from './listen.ts';
import type { Listener } from './listen.ts';

export interface TcpOptions {
  host: string;
  port: number;
  log: Logger;
}

export async function startTcp(options: TcpOptions): Promise<Listener> {
  const { host, log } = options;
  const sockets = new Set<Socket>();
  // allowHalfOpen: when the client half-closes, everything it sent is still echoed before our end.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (err) => log.debug('tcp connection error', { error: err.message }));
    socket.pipe(socket);
  });

  const port = await listen(server, 'TCP', host, options.port);

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.end();
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        timer.unref();
        await closed;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
