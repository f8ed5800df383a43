// Kubernetes probes over HTTP: GET /healthz (the process is alive) and GET /readyz (the SSH and
// DNS listeners are bound and the shadow is not shutting down).
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { listenTcp } from './listen.ts';

export const HEALTH_PATH = { live: '/healthz', ready: '/readyz' } as const;

export interface HealthServerOptions {
  /** Undefined: all interfaces. */
  host?: string;
  port: number;
  isReady: () => boolean;
}

export interface HealthServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServerHandle> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${body}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return reply(405, 'method not allowed');
    }
    if (path === HEALTH_PATH.live) return reply(200, 'ok');
    if (path === HEALTH_PATH.ready) return options.isReady() ? reply(200, 'ready') : reply(503, 'not ready');
    return reply(404, 'not found');
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const port = await listenTcp(server, 'health (HTTP)', options.host, options.port);

  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
