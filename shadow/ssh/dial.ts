// Opens a TCP connection inside the cluster, bounded by a timeout, ready for piping.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { hostPort } from '../../runtime/host-port.ts';

export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
const KEEPALIVE_DELAY_MS = 30_000;

export { hostPort };

/** Whether `port` can be dialed. */
export function isDialablePort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * Connects to address:port (an IP literal) with TCP_NODELAY, keepalive and half-open allowed.
 * Rejects with the socket's error (ECONNREFUSED, …) or a timeout error.
 */
export function dialTcp(address: string, port: number, timeoutMs: number = DEFAULT_DIAL_TIMEOUT_MS): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({
      host: address,
      port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: KEEPALIVE_DELAY_MS,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      const err = new Error(`connect ETIMEDOUT ${hostPort(address, port)} (no answer in ${timeoutMs} ms)`) as Error & { code: string };
      err.code = 'ETIMEDOUT';
      reject(err);
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Whoever pipes the socket logs its errors; until then an error must not crash the process
      // ('close' follows every error, which is what the pipe acts on).
      socket.on('error', () => {});
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
