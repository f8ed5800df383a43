// The dashboard's HTTP server: the page, its live updates (server-sent events), the model as JSON
// and the clean action. Every request passes security.ts first.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { checkRequest } from './security.ts';
import { contentSecurityPolicy, renderMain, renderPage } from './page.ts';
import type { Dashboard } from './model.ts';

export interface CleanResult {
  status: number;
  body: { done: string[]; warnings: string[] } | { error: string };
}

export interface ServerOptions {
  address: string;
  port: number;
  token: string;
  /** The Host values accepted; undefined: any (bound to every interface, the token decides). */
  hosts: Set<string> | undefined;
  scope: string;
  current(): { model: Dashboard; generation: number };
  clean(namespace: string, session: string, dryRun: boolean): Promise<CleanResult>;
}

export interface DashboardServer {
  server: Server;
  port: number;
  /** Pushes the current model to every open page. */
  publish(): void;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

const json = (res: ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);

async function readJson(req: IncomingMessage, limit = 4096): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

function update(o: ServerOptions): string {
  const { model, generation } = o.current();
  return `event: update\ndata: ${JSON.stringify({ generation, clusterTime: model.metadata.clusterTime, html: renderMain(model) })}\n\n`;
}

export function startServer(o: ServerOptions): Promise<DashboardServer> {
  const streams = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const verdict = checkRequest(req, o.token, o.hosts ?? new Set([(req.headers.host ?? '').toLowerCase()]));
    if (!verdict.ok) { send(res, verdict.status, 'text/plain; charset=utf-8', `${verdict.reason}\n`); return; }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' && path === '/api/clean') { void handleClean(req, res); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n'); return; }
    if (path === '/') {
      const nonce = randomBytes(16).toString('base64');
      const { model, generation } = o.current();
      send(res, 200, 'text/html; charset=utf-8', renderPage(model, { nonce, scope: o.scope, generation }), { 'content-security-policy': contentSecurityPolicy(nonce) });
    } else if (path === '/events') {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      // HEAD asks only whether the stream is there; it must not become a subscriber.
      if (req.method === 'HEAD') { res.end(); return; }
      res.write(`retry: 1000\n\n${update(o)}`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
    } else if (path === '/api/state') {
      json(res, 200, o.current().model);
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  });

  async function handleClean(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: unknown;
    try { body = await readJson(req); } catch (e) { json(res, 400, { error: (e as Error).message }); return; }
    const b = body as { namespace?: unknown; session?: unknown; dryRun?: unknown } | null;
    if (!b || typeof b.namespace !== 'string' || typeof b.session !== 'string' || !/^[0-9a-f]{6,20}$/.test(b.session) || typeof b.dryRun !== 'boolean') {
      json(res, 400, { error: 'expected {"namespace": string, "session": id, "dryRun": boolean}' });
      return;
    }
    try {
      const r = await o.clean(b.namespace, b.session, b.dryRun);
      json(res, r.status, r.body);
    } catch (e) {
      json(res, 500, { error: (e as Error).message });
    }
  }

  // Proxies close idle streams; a comment now and then keeps them open.
  const keepAlive = setInterval(() => { for (const s of streams) s.write(': keep-alive\n\n'); }, 15_000);
  keepAlive.unref();

  return new Promise((resolve, reject) => {
    const failed = (e: Error): void => { clearInterval(keepAlive); reject(e); };
    server.once('error', failed);
    server.listen(o.port, o.address, () => {
      server.off('error', failed);
      const addr = server.address();
      resolve({
        server,
        port: typeof addr === 'object' && addr ? addr.port : o.port,
        publish: () => { const u = update(o); for (const s of streams) s.write(u); },
        close: () => new Promise((r) => {
          clearInterval(keepAlive);
          for (const s of streams) s.end();
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}
