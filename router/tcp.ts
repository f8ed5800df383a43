// `tcp` ports: every connection is piped, byte for byte, to the default target on the same port.
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { joinStreams } from '../runtime/join.ts';
import type { Logger } from '../runtime/log.ts';
import { errorReason } from './backend-errors.ts';
import type { Dial, FailureLog } from './backend-errors.ts';
import { listenOn } from './listener.ts';
import type { PortListener } from './listener.ts';
import type { CompiledTable } from './routes.ts';

export interface TcpPortOptions {
  host: string | undefined;
  /** The port to bind (0 in tests). */
  listenPort: number;
  /** The port as the route table names it: the default target is dialled on it. */
  port: number;
  table: () => CompiledTable;
  dial: Dial;
  failures: FailureLog;
  log: Logger;
  logRequests: boolean;
  /** A backend connection that is not up within this time is given up. Default 10000. */
  connectTimeoutMs?: number;
}

export async function listenTcpPort(options: TcpPortOptions): Promise<PortListener> {
  const { port, dial, failures, log } = options;
  const connectTimeout = options.connectTimeoutMs ?? 10_000;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  // allowHalfOpen: a client that half-closes still gets everything the backend sends after.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    track(client);
    const host = options.table().table.defaultTarget;
    const to = dial(host, port);
    if (options.logRequests) log.debug('tcp connection', { port, target: `${host}:${port}`, from: client.remoteAddress });
    const backend = connect({ host: to.host, port: to.port, allowHalfOpen: true, noDelay: true, timeout: connectTimeout });
    track(backend);
    // Until the backend answers, a failed attempt ends the client and a client that goes ends the attempt.
    const failed = (err: Error): void => {
      failures.report({ route: undefined, host, port }, errorReason(err), 'tcp');
      client.destroy();
    };
    const clientErrorEarly = (err: Error): void => log.debug('tcp client error', { port, error: err.message });
    const clientGone = (): void => { backend.destroy(); };
    backend.on('error', failed);
    client.on('error', clientErrorEarly);
    client.once('close', clientGone);
    backend.once('connect', () => {
      backend.off('error', failed);
      client.off('error', clientErrorEarly);
      client.off('close', clientGone);
      backend.setTimeout(0);
      // Ends pass on (a client that half-closes still gets everything the backend sends after);
      // an error or a cut on either side takes both down.
      void joinStreams(client, backend, {
        halfClose: 'end',
        cut: 'destroy',
        onClose: 'unless-done',
        onError: (err, side) => log.debug(side === 'a' ? 'tcp client error' : 'tcp backend error', { port, error: err.message }),
      });
    });
    backend.once('timeout', () => backend.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
  });

  const boundPort = await listenOn(server, 'TCP', options.host, options.listenPort);
  let closing: Promise<void> | undefined;
  return {
    boundPort,
    // Raw TCP has no way to ask a caller to reconnect: its connections last until close's grace.
    drain() {},
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        timer.unref();
      });
      return closing;
    },
  };
}
