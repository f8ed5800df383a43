// HTTP/1.1 echo (keep-alive) and WebSocket echo on one port.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import type { Logger } from './log.ts';
import { DEFAULT_GRACE_MS, listen } from './listen.ts';
import type { Listener } from './listen.ts';
import { POD_HEADER } from './types.ts';
import type { HttpEcho, WsHello } from './types.ts';

export interface HttpOptions {
  host: string;
  port: number;
  pod: string;
  log: Logger;
}

export async function startHttp(options: HttpOptions): Promise<Listener> {
  const { host, pod, log } = options;
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer({ keepAlive: true }, (req, res) => handleRequest(req, res, pod, log));

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    wss.handleUpgrade(req, socket, head, (ws) => {
      log.info('http request', { method: req.method, path: req.url, status: 101, websocket: true });
      handleWebSocket(ws, req, pod, log);
    });
  });
  wss.on('error', (err) => log.warn('websocket server error', { error: err.message }));

  const port = await listen(server, 'HTTP', host, options.port);

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= (async () => {
        // Stops accepting and closes idle keep-alive connections at once; busy ones get the grace.
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        const wsClosed = new Promise<void>((resolve) => wss.close(() => resolve()));
        server.closeIdleConnections();
        for (const ws of wss.clients) ws.close(1001, 'server shutting down');
        const timer = setTimeout(() => {
          server.closeAllConnections();
          for (const ws of wss.clients) ws.terminate();
        }, graceMs);
        timer.unref();
        await Promise.all([httpClosed, wsClosed]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}

function handleRequest(req: IncomingMessage, res: ServerResponse, pod: string, log: Logger): void {
  const path = req.url ?? '/';
  res.on('finish', () => log.info('http request', { method: req.method, path, status: res.statusCode }));
  res.setHeader(POD_HEADER, pod);

  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', () => res.destroy());
  req.on('end', () => {
    if (isHealthCheck(req.method, path)) {
      send(res, 'text/plain; charset=utf-8', 'ok');
      return;
    }
    const reply: HttpEcho = {
      pod,
      method: req.method ?? '',
      path,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    send(res, 'application/json', JSON.stringify(reply));
  });
}

function send(res: ServerResponse, contentType: string, text: string): void {
  const body = Buffer.from(text, 'utf8');
  res.writeHead(200, { 'content-type': contentType, 'content-length': body.length });
  res.end(body);
}

function isHealthCheck(method: string | undefined, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && (path === '/healthz' || path.startsWith('/healthz?'));
}

function handleWebSocket(ws: WebSocket, req: IncomingMessage, pod: string, log: Logger): void {
  ws.on('error', (err) => log.warn('websocket error', { path: req.url, error: err.message }));
  const hello: WsHello = { pod, path: req.url ?? '/', headers: req.headers };
  ws.send(JSON.stringify(hello));
  ws.on('message', (data: RawData, isBinary: boolean) => {
    ws.send(Array.isArray(data) ? Buffer.concat(data) : data, { binary: isBinary });
  });
}
