// The router's own HTTP endpoint on ROUTER_PORT.health: GET /healthz (alive), GET /readyz (a table
// is loaded and every port listens), GET /routes (the table in force, as JSON).
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { RouteTable } from '../contract/index.ts';
import { listenOn } from './listener.ts';

export const HEALTH_PATH = { live: '/healthz', ready: '/readyz', routes: '/routes' } as const;

export interface HealthOptions {
  /** Undefined: all interfaces. */
  host: string | undefined;
  port: number;
  /** undefined when ready, else why not (one sentence). */
  notReady: () => string | undefined;
  table: () => RouteTable | undefined;
}

export interface HealthHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealth(options: HealthOptions): Promise<HealthHandle> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const text = (status: number, body: string): void => reply(status, 'text/plain; charset=utf-8', `${body}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return text(405, 'method not allowed');
    }
    if (path === HEALTH_PATH.live) return text(200, 'ok');
    if (path === HEALTH_PATH.ready) {
      const reason = options.notReady();
      return reason === undefined ? text(200, 'ready') : text(503, `not ready: ${reason}`);
    }
    if (path === HEALTH_PATH.routes) {
      const table = options.table();
      if (table === undefined) return reply(503, 'application/json', `${JSON.stringify({ error: 'no route table loaded yet' })}\n`);
      return reply(200, 'application/json', `${JSON.stringify(table, null, 2)}\n`);
    }
    return text(404, 'not found');
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = await listenOn(server, 'health (HTTP)', options.host, options.port);
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
