// Kubernetes probes over HTTP, for both images: GET /healthz (the process is alive), GET /readyz
// (ready, or 503 with why not), and any read-only JSON documents the image wants to show (the
// router's route table at /routes, say).
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { listenTcp } from './listen.ts';
import { HEALTH_PATH } from '../contract/index.ts';

export { HEALTH_PATH };

export interface HealthServerOptions {
  /** Undefined: all interfaces. */
  host?: string | undefined;
  port: number;
  /** undefined when ready, else why not (one sentence, shown after "not ready: "). */
  notReady: () => string | undefined;
  /** Path -> document; a document of undefined answers 503 with `unavailable` as the error. */
  json?: Record<string, { get: () => unknown; unavailable: string }>;
}

export interface HealthServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServerHandle> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const reply = (status: number, body: string): void => send(status, 'text/plain; charset=utf-8', `${body}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return reply(405, 'method not allowed');
    }
    if (path === HEALTH_PATH.live) return reply(200, 'ok');
    if (path === HEALTH_PATH.ready) {
      const reason = options.notReady();
      return reason === undefined ? reply(200, 'ready') : reply(503, `not ready: ${reason}`);
    }
    const doc = path === undefined ? undefined : options.json?.[path];
    if (doc) {
      const value = doc.get();
      if (value === undefined) return send(503, 'application/json', `${JSON.stringify({ error: doc.unavailable })}\n`);
      return send(200, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
    }
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
