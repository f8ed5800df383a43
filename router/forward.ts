// The HTTP/1.1 request path on plain node:http: one backend request per client request over the
// shared keep-alive agent, headers copied once (raw, in their original case) minus the hop-by-hop
// ones, the body and response streamed with backpressure, trailers passed on. It does what
// http-proxy-3's web() did for the router with less work per request (see bench/router.ts).
import { request } from 'node:http';
import type { Agent, ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { hopByHopFields } from '../runtime/http-headers.ts';

/** Hop-by-hop headers, never forwarded; `expect` was answered by our server. */
const HOP_BY_HOP = hopByHopFields({ also: ['trailer', 'expect'] });

/** Extra hop-by-hop names a Connection header lists (rare); undefined when it lists none. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  let extra: Set<string> | undefined;
  for (const token of (typeof value === 'string' ? value : value.join(',')).split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (extra ??= new Set()).add(name);
  }
  return extra;
}

/** Raw headers (original case, order and repeats) minus hop-by-hop ones. */
function forwardable(message: IncomingMessage): string[] {
  const raw = message.rawHeaders;
  const extra = connectionTokens(message.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || extra?.has(lower)) {
      // `TE: trailers` is the one TE value a backend may need to see.
      if (lower === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') out.push(name, raw[i + 1]!);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** The request's forwardable headers, plus Host when the client sent none (HTTP/1.0). */
function requestHeaders(req: IncomingMessage, hostHeader: string): string[] {
  const out = forwardable(req);
  if (req.headers.host === undefined) out.push('Host', hostHeader);
  return out;
}

export interface ForwardTarget {
  host: string;
  port: number;
  /** The Host header to send when the client sent none (HTTP/1.0). */
  hostHeader: string;
}

export interface ForwardOptions {
  agent: Agent;
  connectTimeoutMs: number;
  /** Called at most once, when the backend could not be used before the response started (or mid-response). */
  onError: (err: Error, responseStarted: boolean) => void;
}

const connectTimeoutError = (): Error => Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });

/**
 * Forwards `req` to the target and streams the answer into `res`. A request without a body that
 * fails with ECONNRESET on a reused keep-alive connection (the backend closed it as we sent) is
 * sent once more, on another connection.
 */
export function forwardHttp1(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, options: ForwardOptions): void {
  const headers = requestHeaders(req, target.hostHeader);
  // With optimizeEmptyRequests the server hands over bodiless requests already ended.
  const bodiless = req.readableEnded;
  let failed = false;
  /** The client left before the answer was complete; what the backend does next is no failure. */
  let abandoned = false;
  let upstream: ClientRequest | undefined;

  const fail = (err: Error, started: boolean): void => {
    if (failed || abandoned) return;
    failed = true;
    options.onError(err, started);
  };

  const send = (retry: boolean): void => {
    const out = request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      agent: options.agent,
      setHost: false,
    });
    upstream = out;
    let timer: NodeJS.Timeout | undefined;
    out.on('socket', (socket: Socket) => {
      if (!socket.connecting) return;
      timer = setTimeout(() => out.destroy(connectTimeoutError()), options.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
    });
    out.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      if (res.headersSent || res.destroyed) {
        fail(err, true);
        return;
      }
      if (retry && bodiless && out.reusedSocket && err.code === 'ECONNRESET') {
        send(false);
        return;
      }
      fail(err, false);
    });
    out.on('response', (backend: IncomingMessage) => {
      clearTimeout(timer);
      if (res.destroyed) {
        backend.destroy();
        return;
      }
      res.writeHead(backend.statusCode ?? 502, backend.statusMessage, forwardable(backend));
      backend.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          backend.pause();
          res.once('drain', () => backend.resume());
        }
      });
      backend.on('end', () => {
        if (backend.rawTrailers.length > 0) res.addTrailers(backend.trailers);
        res.end();
      });
      backend.on('error', (err) => fail(err, true));
      backend.on('aborted', () => fail(new Error('the backend closed the connection mid-response'), true));
    });
    if (bodiless) out.end();
    else req.pipe(out);
  };

  // The client went away before the answer was complete: stop the backend request too.
  const abandon = (): void => {
    abandoned = true;
    upstream?.destroy();
  };
  res.on('close', () => {
    if (!res.writableFinished) abandon();
  });
  req.on('error', abandon);
  send(true);
}
