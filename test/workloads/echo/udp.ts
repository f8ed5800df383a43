// UDP echo: every datagram goes back to its sender as it came.
import { createSocket } from 'node:dgram';
import type { Logger } from './log.ts';
import { ListenError } from './listen.ts';
import type { Listener } from './listen.ts';

export interface UdpOptions {
  host: string;
  port: number;
  log: Logger;
}

export async function startUdp(options: UdpOptions): Promise<Listener> {
  const { host, log } = options;
  const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
  let echoed = 0;
  socket.on('message', (msg, rinfo) => {
    echoed++;
    socket.send(msg, rinfo.port, rinfo.address, (err) => {
      if (err) log.debug('udp send failed', { error: err.message });
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => reject(new ListenError('UDP', host, options.port, err));
    socket.once('error', onError);
    socket.bind(options.port, host, () => {
      socket.off('error', onError);
      socket.on('error', (err) => log.debug('udp socket error', { error: err.message }));
      resolve(socket.address().port);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        log.debug('udp echo closing', { echoed });
        socket.close(() => resolve());
      });
      return closing;
    },
  };
}
