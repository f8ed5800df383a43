// HTTP/2 cleartext (prior knowledge) and so gRPC: every incoming stream is routed on its own
// headers and forwarded as a stream over one HTTP/2 client session per backend host:port, with
// the response's trailers (grpc-status) passed on intact.
import { connect, constants, createServer } from 'node:http2';
import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  Http2Server,
  Http2Session,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
  ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { ROUTER_PROBE } from '../contract/index.ts';
import type { Logger } from '../runtime/log.ts';
import { encodeGrpcMessage, errorReason, unreachableMessage } from './backend-errors.ts';
import type { Destination, Dial, FailureLog } from './backend-errors.ts';
import { hopByHopFields } from '../runtime/http-headers.ts';
import { hostPort, matchRoute } from './routes.ts';
import type { CompiledTable } from './routes.ts';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
} = constants;

/** Connection-specific headers HTTP/2 forbids; never copied from one hop to the next. TE is sorted out in copyHeaders. */
const HOP_BY_HOP = hopByHopFields({ also: ['http2-settings', 'host'], except: ['te'] });

/** gRPC status UNAVAILABLE. */
export const GRPC_UNAVAILABLE = 14;

export interface H2Pool {
  /** The session to host:port, connecting when there is none or the last one closed. */
  session(host: string, port: number): ClientHttp2Session;
  /** Closes (gracefully: open streams finish) sessions to addresses not in `keep`. */
  prune(keep: readonly { host: string; port: number }[]): void;
  close(): void;
}

export function createH2Pool(log: Logger): H2Pool {
  const sessions = new Map<string, ClientHttp2Session>();
  const drop = (key: string, session: ClientHttp2Session): void => {
    if (sessions.get(key) === session) sessions.delete(key);
  };
  return {
    session(host, port) {
      const key = hostPort(host, port);
      const existing = sessions.get(key);
      if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
      const session = connect(`http://${key}`, { createConnection: () => netConnect({ host, port, noDelay: true }) });
      sessions.set(key, session);
      // A failed or finished session leaves the pool; the next request connects again.
      session.on('error', (err) => {
        drop(key, session);
        log.debug('h2 backend session error', { target: key, error: err.message });
      });
      session.on('goaway', () => drop(key, session));
      session.on('close', () => drop(key, session));
      return session;
    },
    prune(keep) {
      const keys = new Set(keep.map((a) => hostPort(a.host, a.port)));
      for (const [key, session] of sessions) {
        if (!keys.has(key)) {
          sessions.delete(key);
          session.close();
        }
      }
    },
    close() {
      for (const session of sessions.values()) session.destroy();
      sessions.clear();
    },
  };
}

export interface H2RouterOptions {
  /** The port as the route table names it: backends are dialled on the same port. */
  port: number;
  table: () => CompiledTable;
  pool: H2Pool;
  dial: Dial;
  failures: FailureLog;
  log: Logger;
  logRequests: boolean;
  /** This router's pod name, the answer to the laptop's probe (contract ROUTER_PROBE). */
  podName: string;
}

function copyHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const key in headers) {
    if (HOP_BY_HOP.has(key)) continue;
    if (key === 'te' && headers[key] !== 'trailers') continue;
    out[key] = headers[key];
  }
  return out;
}

function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers[HTTP2_HEADER_CONTENT_TYPE];
  return typeof type === 'string' && type.startsWith('application/grpc');
}

/** The answer when the backend cannot be reached: grpc-status 14 for gRPC, else 502 with the text. */
function answerUnavailable(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  try {
    if (isGrpc(headers)) {
      // Trailers-only response.
      stream.respond(
        {
          [HTTP2_HEADER_STATUS]: 200,
          [HTTP2_HEADER_CONTENT_TYPE]: headers[HTTP2_HEADER_CONTENT_TYPE] ?? 'application/grpc',
          'grpc-status': String(GRPC_UNAVAILABLE),
          'grpc-message': encodeGrpcMessage(message),
        },
        { endStream: true },
      );
    } else {
      const body = Buffer.from(`${message}\n`, 'utf8');
      stream.respond({
        [HTTP2_HEADER_STATUS]: 502,
        [HTTP2_HEADER_CONTENT_TYPE]: 'text/plain; charset=utf-8',
        'content-length': body.length,
      });
      stream.end(body);
    }
  } catch {
    stream.close(NGHTTP2_INTERNAL_ERROR);
  }
}

/** An HTTP/2 server (not listening: the port's sniffing listener hands it connections). */
export function createH2Router(options: H2RouterOptions): Http2Server {
  const { port, pool, dial, failures, log } = options;
  const server = createServer({ settings: { enablePush: false } });
  server.on('sessionError', (err) => log.debug('h2 client session error', { port, error: err.message }));
  server.on('session', (session: Http2Session) => {
    session.on('error', () => {});
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (headers[ROUTER_PROBE.header] !== undefined) {
      // The laptop's probe: answered here, not forwarded; a body, if any, is read away.
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ [HTTP2_HEADER_STATUS]: 204, [ROUTER_PROBE.podHeader]: options.podName }, { endStream: true });
      return;
    }
    const started = options.logRequests ? performance.now() : 0;
    const compiled = options.table();
    const route = matchRoute(compiled, headers);
    const dest: Destination = { route, host: route?.target ?? compiled.table.defaultTarget, port };
    stream.on('error', (err) => log.debug('h2 client stream error', { port, error: err.message }));

    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      const reason = errorReason(err);
      failures.report(dest, reason, isGrpc(headers) ? 'grpc' : 'h2');
      answerUnavailable(stream, headers, unreachableMessage(dest, reason));
    };

    const to = dial(dest.host, dest.port);
    let upstream: ClientHttp2Stream;
    try {
      upstream = pool.session(to.host, to.port).request(copyHeaders(headers), { endStream: stream.endAfterHeaders });
    } catch (err) {
      fail(err);
      return;
    }
    if (!stream.endAfterHeaders) stream.pipe(upstream);

    let trailers: OutgoingHttpHeaders | undefined;
    let responded = false;
    upstream.on('response', (responseHeaders) => {
      if (stream.destroyed || stream.closed) return;
      responded = true;
      const out = copyHeaders(responseHeaders);
      try {
        if (upstream.endAfterHeaders) {
          // Trailers-only (e.g. a gRPC error status): headers with END_STREAM, as the backend sent it.
          stream.respond(out, { endStream: true });
          return;
        }
        stream.respond(out, { waitForTrailers: true });
      } catch (err) {
        log.debug('h2 respond failed', { port, error: err instanceof Error ? err.message : String(err) });
        upstream.close(NGHTTP2_CANCEL);
        stream.close(NGHTTP2_INTERNAL_ERROR);
        return;
      }
      upstream.pipe(stream);
    });
    upstream.on('trailers', (received) => {
      trailers = copyHeaders(received);
    });
    stream.on('wantTrailers', () => {
      // An empty trailers HEADERS frame still ends the stream cleanly (no RST_STREAM).
      try {
        stream.sendTrailers(trailers ?? {});
      } catch {
        stream.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
    upstream.on('error', (err) => {
      if (!responded) fail(err);
      else if (!stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
    });
    upstream.on('close', () => {
      const code = upstream.rstCode;
      if (code === undefined || code === NGHTTP2_NO_ERROR || stream.closed || failed) return;
      if (!responded) fail(new Error(code === NGHTTP2_REFUSED_STREAM ? 'stream refused by the backend' : `stream reset by the backend (code ${code})`));
      else stream.close(code);
    });
    stream.on('close', () => {
      // Whatever the backend does from here on is nobody's failure: there is no one to answer.
      failed = true;
      // The client went away (or reset the stream): stop the backend's side as well.
      if (!upstream.closed) upstream.close(stream.rstCode === NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : (stream.rstCode ?? NGHTTP2_CANCEL));
      if (options.logRequests) {
        log.debug('request', {
          protocol: isGrpc(headers) ? 'grpc' : 'h2',
          method: headers[':method'],
          path: headers[':path'],
          version: route?.version ?? null,
          target: hostPort(dest.host, dest.port),
          status: stream.sentHeaders[HTTP2_HEADER_STATUS] ?? null,
          grpcStatus: stream.sentTrailers?.['grpc-status'] ?? stream.sentHeaders['grpc-status'] ?? null,
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
      }
    });
  });
  return server;
}
