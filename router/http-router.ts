// HTTP/1.1 (keep-alive, routed request by request) and WebSocket upgrades (routed on the upgrade
// request's headers), forwarded over keep-alive connections to the backends. WebSockets go through
// http-proxy-3; plain requests through forward.ts (http-proxy-3's web() is kept as the
// `http-proxy-3` forwarder, for comparison in bench/router.ts). With the default `fast` forwarder
// most HTTP/1.1 requests never get here: http1-fast.ts serves them and hands this server only the
// connections whose requests it does not take.
import { Agent, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { ROUTER_PROBE } from '../contract/index.ts';
import type { ProxyServer } from 'http-proxy-3';
import type { Logger } from '../runtime/log.ts';
import { errorReason, unreachableMessage } from './backend-errors.ts';
import { forwardHttp1 } from './forward.ts';
import { createBackendPool } from './http1/http1-pool.ts';
import type { BackendPool } from './http1/http1-pool.ts';
import type { Destination, Dial, FailureLog } from './backend-errors.ts';
import { hostPort, matchRoute } from './routes.ts';
import type { CompiledTable } from './routes.ts';

/** Backend addresses as dialled. */
export type Address = { host: string; port: number };

/** What every HTTP/1 port shares: the proxy and the keep-alive pool to the backends. */
export interface Http1Backends {
  readonly proxy: ProxyServer;
  readonly agent: Agent;
  readonly connectTimeoutMs: number;
  /** Raw kept-alive backend connections for the fast path (http1-fast.ts). */
  readonly raw: BackendPool;
  /** Client sockets whose WebSocket upgrade the backend accepted. */
  readonly upgraded: WeakSet<Duplex>;
  /** Destroys idle pooled connections to addresses not in `keep`. */
  prune(keep: readonly Address[]): void;
  close(): void;
}

export interface Http1BackendOptions {
  /** A new backend connection that is not up within this time fails the request. Default 10000. */
  connectTimeoutMs?: number;
}

export function createHttp1Backends(options: Http1BackendOptions = {}): Http1Backends {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const agent = new Agent({
    keepAlive: true,
    keepAliveMsecs: 15_000,
    maxSockets: Infinity,
    maxFreeSockets: 1024,
    // An idle pooled connection is dropped after this long, or sooner if the backend's
    // Keep-Alive header says so; a bodiless request that still meets a connection the backend
    // closed under us is sent again (forward.ts).
    timeout: 15_000,
    scheduling: 'lifo',
  });
  const proxy = createProxyServer({
    agent,
    xfwd: false,
    changeOrigin: false,
    connectTimeout: connectTimeoutMs,
  });
  // Errors are passed to each call's callback; this keeps a stray one from throwing.
  proxy.on('error', () => {});
  const raw = createBackendPool({ connectTimeoutMs, idleMs: 15_000 });
  const upgraded = new WeakSet<Duplex>();
  proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
    proxyReq.once('upgrade', () => upgraded.add(socket));
  });
  return {
    proxy,
    agent,
    raw,
    connectTimeoutMs,
    upgraded,
    prune(keep) {
      raw.prune(keep);
      const names = new Set(keep.map((a) => agent.getName({ host: a.host, port: a.port })));
      for (const [name, sockets] of Object.entries(agent.freeSockets)) {
        if (!names.has(name)) for (const socket of sockets ?? []) socket.destroy();
      }
    },
    close() {
      agent.destroy();
      proxy.close();
      raw.close();
    },
  };
}

/**
 * How plain HTTP/1 requests are forwarded: the fast path on raw sockets (http1-fast.ts, default;
 * what it does not take goes through forward.ts), forward.ts on node:http, or http-proxy-3's web().
 */
export type Http1Forwarder = 'fast' | 'native' | 'http-proxy-3';

export interface HttpRouterOptions {
  /** The port as the route table names it: backends are dialled on the same port. */
  port: number;
  table: () => CompiledTable;
  backends: Http1Backends;
  dial: Dial;
  failures: FailureLog;
  log: Logger;
  logRequests: boolean;
  /** Default 'fast' (which is 'native' for the requests this server gets). */
  forwarder?: Http1Forwarder;
  /** This router's pod name, the answer to the laptop's probe (contract ROUTER_PROBE). */
  podName: string;
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** A 502 written straight to a socket (a WebSocket upgrade that could not reach its backend). */
function rawBadGateway(socket: Duplex, message: string): void {
  if (socket.destroyed || !socket.writable) return;
  const body = Buffer.from(`${message}\n`, 'utf8');
  socket.end(
    `HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.toString('latin1')}`,
    'latin1',
  );
}

/**
 * An HTTP/1 server for one port (not listening: the port's sniffing listener hands it
 * connections). Routing is decided per request, so one kept-alive client connection can reach
 * different backends request by request.
 */
export function createHttpRouter(options: HttpRouterOptions): Server {
  const { port, backends, dial, failures, log, logRequests } = options;
  const { proxy, upgraded, agent, connectTimeoutMs } = backends;
  const viaHttpProxy = options.forwarder === 'http-proxy-3';

  const destination = (req: IncomingMessage): Destination => {
    const compiled = options.table();
    const route = matchRoute(compiled, req.headers);
    return { route, host: route?.target ?? compiled.table.defaultTarget, port };
  };

  const server = createServer(
    {
      keepAlive: true,
      // Bodiless requests arrive already ended: nothing to pipe to the backend.
      optimizeEmptyRequests: true,
      // Only WebSocket upgrades are upgrades; anything else (h2c via Upgrade) is an ordinary request.
      shouldUpgradeCallback: isWebSocketUpgrade,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers[ROUTER_PROBE.header] !== undefined) {
        // The laptop's probe, when the fast path did not take its connection: answered, not forwarded.
        req.resume();
        res.writeHead(204, { [ROUTER_PROBE.podHeader]: options.podName });
        res.end();
        return;
      }
      const started = logRequests ? performance.now() : 0;
      const dest = destination(req);
      const to = dial(dest.host, dest.port);
      if (logRequests) {
        res.on('finish', () =>
          log.debug('request', {
            protocol: 'http/1.1',
            method: req.method,
            path: req.url,
            version: dest.route?.version ?? null,
            target: hostPort(dest.host, dest.port),
            status: res.statusCode,
            ms: Math.round((performance.now() - started) * 10) / 10,
          }),
        );
      }
      const onError = (err: Error): void => {
        const reason = errorReason(err);
        failures.report(dest, reason, 'http');
        if (res.headersSent || res.destroyed) {
          res.destroy();
          return;
        }
        const body = Buffer.from(`${unreachableMessage(dest, reason)}\n`, 'utf8');
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
        res.end(body);
      };
      if (viaHttpProxy) proxy.web(req, res, { target: { host: to.host, port: to.port, protocol: 'http:' } }, onError);
      else forwardHttp1(req, res, { host: to.host, port: to.port, hostHeader: hostPort(dest.host, dest.port) }, { agent, connectTimeoutMs, onError });
    },
  );
  // Proxied requests can stream for a long time; idle keep-alive connections are kept a minute.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 60_000;

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const dest = destination(req);
    const to = dial(dest.host, dest.port);
    socket.on('error', (err) => log.debug('websocket client error', { port, error: err.message }));
    if (logRequests) {
      log.debug('request', { protocol: 'websocket', path: req.url, version: dest.route?.version ?? null, target: hostPort(dest.host, dest.port) });
    }
    proxy.ws(req, socket, head, { target: { host: to.host, port: to.port, protocol: 'http:' }, agent: false }, (err) => {
      const reason = errorReason(err);
      if (upgraded.has(socket)) {
        // An open WebSocket that ended badly: the backend was reached, nothing to answer.
        log.debug('websocket closed with an error', { port, target: hostPort(dest.host, dest.port), reason });
        return;
      }
      failures.report(dest, reason, 'websocket');
      rawBadGateway(socket, unreachableMessage(dest, reason));
    });
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    log.debug('http client error', { port, error: err.message });
    if (socket.writable && !socket.destroyed && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    } else socket.destroy();
  });
  return server;
}
