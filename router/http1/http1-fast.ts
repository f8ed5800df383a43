// The HTTP/1.1 fast path: requests are read straight off the client's socket, routed, and their
// bytes written to a pooled raw backend connection; the response's bytes go back the same way.
// Heads are rewritten only when hop-by-hop fields must go (a backend's Connection/Keep-Alive
// always do); bodies are forwarded as they arrive, framed by Content-Length or chunked encoding,
// never copied into new buffers. Each request thus costs about one read and one write on each
// side, where node:http's server and client cost several (see bench/router.ts).
//
// Only the common case is taken. A request the strict parser does not vouch for, one that wants
// an upgrade or `Expect: 100-continue`, hands the whole connection to the port's node:http server
// (http-router.ts) between requests, bytes not yet consumed put back first.
import type { Socket } from 'node:net';
import { ROUTER_PROBE } from '../../contract/index.ts';
import type { Logger } from '../../runtime/log.ts';
import { errorReason, unreachableMessage } from '../backend-errors.ts';
import type { Destination, Dial, FailureLog } from '../backend-errors.ts';
import {
  ChunkedScanner,
  ConnectionToken,
  FIELD_STRIDE,
  F_KIND,
  F_LINE,
  F_LINE_END,
  F_VALUE,
  F_VALUE_END,
  Field,
  MAX_HEAD_BYTES,
  connectionTokens,
  equalsLower,
  fieldName,
  fieldValue,
  findHeadEnd,
  hasBareLf,
  keepAliveTimeout,
  listTokens,
  parseLength,
  parseRequestHead,
  parseResponseHead,
  requestTarget,
} from './http1-framing.ts';
import type { Head, RequestHead, ResponseHead } from './http1-framing.ts';
import type { BackendConnection, BackendPool, BackendUser } from './http1-pool.ts';
import { hostPort, matchRoute } from '../routes.ts';
import type { CompiledTable, HeaderBag } from '../routes.ts';

export interface FastHttp1Options {
  /** The port as the route table names it: backends are dialled on the same port. */
  port: number;
  table: () => CompiledTable;
  pool: BackendPool;
  dial: Dial;
  failures: FailureLog;
  log: Logger;
  logRequests: boolean;
  /** Idle client connections are closed after this long. Default 60000. */
  keepAliveTimeoutMs?: number;
  /** This router's pod name, the answer to the laptop's probe (contract ROUTER_PROBE). */
  podName: string;
}

export interface FastHttp1 {
  /**
   * Serves an HTTP/1 connection (its first bytes may be waiting in its read buffer). When it
   * meets a request the fast path does not take, the connection goes to `handover`.
   */
  accept(socket: Socket, handover: (socket: Socket) => void): void;
  /**
   * From now on every response says `Connection: close` and its connection closes after it, so
   * kept-alive callers reconnect (elsewhere, once the endpoints moved); idle connections stay.
   */
  drain(): void;
  /** Closes idle connections now; busy ones close once their response is complete. */
  close(): void;
}

/** What to do with a request, decided from its head alone. */
interface RequestPlan {
  /** Body framing: -1 chunked, else the Content-Length (0: no body). */
  length: number;
  /** The client wants the connection kept open after the response. */
  keepAlive: boolean;
  /** Header values the route is chosen by (only when present). */
  bag: HeaderBag;
  /** The head must be rewritten (hop-by-hop fields to drop, or HTTP/1.0). */
  rewrite: boolean;
  hasHost: boolean;
  /** The laptop's probe (contract ROUTER_PROBE), answered here. */
  probe: boolean;
}

const NO_HEADERS: HeaderBag = Object.freeze({});
const TRAILERS = Buffer.from('trailers', 'latin1');
const CHUNKED = Buffer.from('chunked', 'latin1');

function addTo(bag: Record<string, string | string[]>, name: string, value: string): void {
  const prior = bag[name];
  bag[name] = prior === undefined ? value : typeof prior === 'string' ? [prior, value] : [...prior, value];
}

/** Names listed in Connection fields besides close/keep-alive: more hop-by-hop fields (rare). */
function connectionExtras(head: Head): Set<string> | undefined {
  const { buf, fields } = head;
  let extra: Set<string> | undefined;
  for (let at = 0; at < fields.length; at += FIELD_STRIDE) {
    if (fields[at + F_KIND] !== Field.Connection) continue;
    if ((connectionTokens(buf, fields[at + F_VALUE]!, fields[at + F_VALUE_END]!) & ConnectionToken.Other) === 0) continue;
    for (const token of listTokens(fieldValue(head, at / FIELD_STRIDE))) if (token !== 'close' && token !== 'keep-alive') (extra ??= new Set()).add(token);
  }
  return extra;
}

/**
 * Marks the fields that concern one connection only (RFC 9110 section 7.6.1) as
 * `Field.Dropped`: Connection, Keep-Alive, Proxy-Connection, Upgrade, whatever Connection names,
 * and (in requests) TE other than `trailers`. Returns whether there were any.
 */
function dropHopByHop(head: Head, request: boolean): boolean {
  const { buf, fields } = head;
  let extra: Set<string> | undefined;
  let any = false;
  for (let at = 0; at < fields.length; at += FIELD_STRIDE) {
    let hop: boolean;
    switch (fields[at + F_KIND]) {
      case Field.Connection:
        hop = true;
        if ((connectionTokens(buf, fields[at + F_VALUE]!, fields[at + F_VALUE_END]!) & ConnectionToken.Other) !== 0) extra ??= connectionExtras(head);
        break;
      case Field.KeepAlive:
      case Field.ProxyConnection:
      case Field.Upgrade:
        hop = true;
        break;
      case Field.Te:
        hop = request && !equalsLower(buf, fields[at + F_VALUE]!, fields[at + F_VALUE_END]!, TRAILERS);
        break;
      default:
        hop = false;
    }
    if (hop) fields[at + F_KIND] = Field.Dropped;
    any ||= hop;
  }
  // Fields named by a Connection field (which may come after them).
  if (extra !== undefined) {
    for (let at = 0; at < fields.length; at += FIELD_STRIDE) if (extra.has(fieldName(head, at / FIELD_STRIDE))) fields[at + F_KIND] = Field.Dropped;
  }
  return any;
}

/**
 * One buffer to write: the head without its `Field.Dropped` fields (`dropped` says whether there
 * are any), `line` in place of its first line when given, `extra` field lines added at its end,
 * then `body[bodyStart, bodyEnd)`.
 */
function rebuild(head: Head, line: string | undefined, dropped: boolean, extra: string, body: Buffer, bodyStart: number, bodyEnd: number): Buffer {
  const { buf, fields } = head;
  if (line === undefined && !dropped && extra === '' && body === buf && bodyStart === head.end) {
    return head.start === 0 && bodyEnd === buf.length ? buf : buf.subarray(head.start, bodyEnd);
  }
  // Each field is its line and the CRLF before it; the kept ones, the last one's CRLF aside.
  const keptEnd = head.end - 4;
  let size = (line === undefined ? head.lineEnd - head.start : line.length) + keptEnd - head.lineEnd + 4 + extra.length + bodyEnd - bodyStart;
  if (dropped) {
    for (let at = 0; at < fields.length; at += FIELD_STRIDE) if (fields[at + F_KIND] === Field.Dropped) size -= fields[at + F_LINE_END]! - fields[at + F_LINE]! + 2;
  }
  const out = Buffer.allocUnsafe(size);
  let o = line === undefined ? buf.copy(out, 0, head.start, head.lineEnd) : out.write(line, 0, 'latin1');
  let from = head.lineEnd;
  if (dropped) {
    for (let at = 0; at < fields.length; at += FIELD_STRIDE) {
      if (fields[at + F_KIND] !== Field.Dropped) continue;
      o += buf.copy(out, o, from, fields[at + F_LINE]! - 2);
      from = fields[at + F_LINE_END]!;
    }
  }
  if (keptEnd > from) o += buf.copy(out, o, from, keptEnd);
  o += out.write('\r\n', o, 'latin1');
  if (extra !== '') o += out.write(extra, o, 'latin1');
  o += out.write('\r\n', o, 'latin1');
  if (bodyEnd > bodyStart) body.copy(out, o, bodyStart, bodyEnd);
  return out;
}

/**
 * Decides how to forward a request; undefined when node:http should have it (upgrades,
 * Expect, CONNECT, ambiguous framing, HTTP/1.1 without Host).
 */
function planRequest(head: RequestHead, markHeader: string): RequestPlan | undefined {
  if (head.method === 'CONNECT') return undefined;
  const { buf, fields } = head;
  let length: number | undefined;
  let chunked = false;
  let hasHost = false;
  let close = false;
  let keepAliveToken = false;
  let bag: Record<string, string | string[]> | undefined;
  let dropAny = false;
  let probe = false;
  for (let at = 0; at < fields.length; at += FIELD_STRIDE) {
    const value = fields[at + F_VALUE]!;
    const valueEnd = fields[at + F_VALUE_END]!;
    switch (fields[at + F_KIND]) {
      case Field.Host:
        if (hasHost) return undefined;
        hasHost = true;
        break;
      case Field.ContentLength: {
        const n = parseLength(buf, value, valueEnd);
        if (n === undefined || (length !== undefined && n !== length)) return undefined;
        length = n;
        break;
      }
      case Field.TransferEncoding:
        if (chunked || !equalsLower(buf, value, valueEnd, CHUNKED)) return undefined;
        chunked = true;
        break;
      case Field.Connection: {
        const tokens = connectionTokens(buf, value, valueEnd);
        if ((tokens & ConnectionToken.Close) !== 0) close = true;
        if ((tokens & ConnectionToken.KeepAlive) !== 0) keepAliveToken = true;
        dropAny = true;
        break;
      }
      case Field.Upgrade:
      case Field.Expect:
        return undefined;
      case Field.KeepAlive:
      case Field.ProxyConnection:
        dropAny = true;
        break;
      case Field.Te:
        if (!equalsLower(buf, value, valueEnd, TRAILERS)) dropAny = true;
        break;
      case Field.Baggage:
        addTo((bag ??= {}), 'baggage', buf.toString('latin1', value, valueEnd));
        break;
      case Field.Mark:
        addTo((bag ??= {}), markHeader, buf.toString('latin1', value, valueEnd));
        break;
      case Field.Probe:
        probe = true;
        break;
    }
  }
  if (chunked && length !== undefined) return undefined;
  // A probe with a body (the laptop never sends one) is node:http's, which reads the body away.
  if (probe && (chunked || (length ?? 0) > 0)) return undefined;
  if (head.minor === 1 && !hasHost) return undefined;
  const keepAlive = head.minor === 1 ? !close : keepAliveToken && !close;
  return { length: chunked ? -1 : (length ?? 0), keepAlive, bag: bag ?? NO_HEADERS, rewrite: dropAny || head.minor === 0, hasHost, probe };
}

/** The request head to send the backend (hop-by-hop fields dropped, Host added if missing), then `head.buf[head.end, bodyEnd)`. */
function rewriteRequest(head: RequestHead, plan: RequestPlan, hostHeader: string, bodyEnd: number): Buffer {
  // An HTTP/1.0 request is sent on as such (so the backend frames its answer for HTTP/1.0),
  // asking for the backend connection to stay open.
  const added = head.minor === 0 ? `${plan.hasHost ? '' : `Host: ${hostHeader}\r\n`}Connection: keep-alive\r\n` : '';
  return rebuild(head, undefined, dropHopByHop(head, true), added, head.buf, head.end, bodyEnd);
}

/** How a response's body is delimited. */
type Framing = { kind: 'none' } | { kind: 'length'; remaining: number } | { kind: 'chunked'; scanner: ChunkedScanner } | { kind: 'close' };
const NO_BODY: Framing = Object.freeze({ kind: 'none' });
const TO_CLOSE: Framing = Object.freeze({ kind: 'close' });

interface ResponsePlan {
  framing: Framing;
  /** The backend keeps the connection open after this response. */
  reusable: boolean;
  /** The backend's Keep-Alive timeout hint, in ms. */
  idleHintMs: number | undefined;
  /** Some fields are not passed on (they are marked `Field.Dropped`). */
  dropped: boolean;
}

function planResponse(head: ResponseHead, bodiless: boolean): ResponsePlan | string {
  const { buf, fields } = head;
  let length: number | undefined;
  let chunked: boolean | undefined;
  let close = head.minor === 0;
  let idleHintMs: number | undefined;
  for (let i = 0, at = 0; at < fields.length; i++, at += FIELD_STRIDE) {
    const value = fields[at + F_VALUE]!;
    const valueEnd = fields[at + F_VALUE_END]!;
    switch (fields[at + F_KIND]) {
      case Field.ContentLength: {
        const n = parseLength(buf, value, valueEnd);
        if (n === undefined || (length !== undefined && n !== length)) return 'invalid Content-Length from the backend';
        length = n;
        break;
      }
      case Field.TransferEncoding: {
        const codings = listTokens(fieldValue(head, i));
        // Only the last coding counts: the body is chunked if and only if it is `chunked`.
        chunked = codings[codings.length - 1] === 'chunked';
        break;
      }
      case Field.Connection: {
        const tokens = connectionTokens(buf, value, valueEnd);
        if ((tokens & ConnectionToken.KeepAlive) !== 0 && head.minor === 0) close = false;
        if ((tokens & ConnectionToken.Close) !== 0) close = true;
        break;
      }
      case Field.KeepAlive: {
        const seconds = keepAliveTimeout(buf, value, valueEnd);
        if (seconds !== undefined) idleHintMs = Math.max(0, seconds * 1000 - 1000);
        break;
      }
    }
  }
  if (chunked !== undefined && length !== undefined) return 'both Transfer-Encoding and Content-Length from the backend';
  let framing: Framing;
  if (bodiless || head.status === 204 || head.status === 304) framing = NO_BODY;
  else if (chunked === true) framing = { kind: 'chunked', scanner: new ChunkedScanner() };
  else if (chunked === false || length === undefined) framing = TO_CLOSE;
  else framing = length === 0 ? NO_BODY : { kind: 'length', remaining: length };
  // A body that ends with the connection cannot leave it reusable.
  const reusable = !close && framing.kind !== 'close';
  return { framing, reusable, idleHintMs, dropped: dropHopByHop(head, false) };
}

/** A backend that breaks HTTP/1.1; the message (no code) is what the 502 says. */
const protocolError = (message: string): Error => new Error(message);

/** Why the client's socket is paused: bytes held for the next request, or a backend write buffer full. */
const HOLD = 1;
const BACKEND_FULL = 2;

export function createFastHttp1(options: FastHttp1Options): FastHttp1 {
  const { port, pool, dial, failures, log, logRequests } = options;
  const keepAliveMs = options.keepAliveTimeoutMs ?? 60_000;
  const probeHead = `HTTP/1.1 204 No Content\r\n${ROUTER_PROBE.podHeader}: ${options.podName}\r\n`;
  const probeKeep = Buffer.from(`${probeHead}\r\n`, 'latin1');
  const probeClose = Buffer.from(`${probeHead}connection: close\r\n\r\n`, 'latin1');
  const clients = new Set<ClientConnection>();
  let sweep: NodeJS.Timeout | undefined;
  let closed = false;
  let draining = false;

  /** One request and its response. */
  class Exchange implements BackendUser {
    backend: BackendConnection | undefined;
    /** Request body still to forward: a byte count, or the chunked scanner. */
    requestLeft: number;
    requestScanner: ChunkedScanner | undefined;
    requestDone: boolean;
    /** The bytes sent, kept for the one retry a bodiless request may get. */
    sent: Buffer | undefined;
    retried = false;
    /** Response bytes not yet forwarded, while its head is incomplete. */
    pending: Buffer | undefined;
    searched = 0;
    gotBytes = false;
    framing: Framing | undefined;
    reusable = false;
    idleHintMs: number | undefined;
    closeAfter = false;
    status = 0;
    finished = false;
    readonly started = logRequests ? performance.now() : 0;

    readonly client: ClientConnection;
    readonly head: RequestHead;
    readonly plan: RequestPlan;
    readonly dest: Destination;

    constructor(client: ClientConnection, head: RequestHead, plan: RequestPlan, dest: Destination) {
      this.client = client;
      this.head = head;
      this.plan = plan;
      this.dest = dest;
      this.requestLeft = plan.length > 0 ? plan.length : 0;
      this.requestScanner = plan.length < 0 ? new ChunkedScanner() : undefined;
      this.requestDone = plan.length === 0;
    }

    send(bytes: Buffer, fresh: boolean): void {
      const to = dial(this.dest.host, this.dest.port);
      this.backend = pool.acquire(to.host, to.port, this, fresh);
      if (this.plan.length === 0 && !this.retried) this.sent = bytes;
      this.write(bytes);
    }

    write(bytes: Buffer): void {
      const backend = this.backend;
      if (backend === undefined || bytes.length === 0) return;
      if (!backend.socket.write(bytes)) this.client.pause(BACKEND_FULL);
    }

    /** Forwards request body bytes from `chunk`; returns how many belonged to this request. */
    body(chunk: Buffer, start: number): number {
      let end: number;
      if (this.requestScanner !== undefined) {
        const at = this.requestScanner.scan(chunk, start, chunk.length);
        if (at === -2) {
          this.abort('malformed chunked request body');
          return chunk.length;
        }
        end = at < 0 ? chunk.length : at;
        if (at >= 0) this.requestDone = true;
      } else {
        const take = Math.min(this.requestLeft, chunk.length - start);
        this.requestLeft -= take;
        end = start + take;
        if (this.requestLeft === 0) this.requestDone = true;
      }
      if (end > start && !this.finished) this.write(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
      return end;
    }

    onDrain(): void {
      this.client.unpause(BACKEND_FULL);
    }

    onData(chunk: Buffer): void {
      if (this.finished) return;
      this.gotBytes = true;
      if (this.framing === undefined) {
        const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
        this.pending = undefined;
        this.readHead(buf);
        return;
      }
      this.forwardBody(chunk, 0, undefined);
    }

    /** Reads interim and final response heads from `buf`; what is left waits for more bytes. */
    readHead(buf: Buffer): void {
      let start = 0;
      for (;;) {
        const end = findHeadEnd(buf, start, this.searched);
        if (end < 0) {
          if (buf.length - start > MAX_HEAD_BYTES) return this.fail(protocolError('response head too large'));
          this.pending = start === 0 ? buf : buf.subarray(start);
          this.searched = this.pending.length;
          return;
        }
        this.searched = 0;
        const head = parseResponseHead(buf, start, end);
        if (head === undefined) return this.fail(protocolError('invalid response head'));
        if (head.status < 200) {
          // A 101 would switch protocols, which only upgrades (never taken here) may ask for.
          if (head.status === 101) return this.fail(protocolError('unexpected 101 response'));
          if (this.head.minor === 1) this.client.write(buf.subarray(start, end));
          start = end;
          continue;
        }
        const plan = planResponse(head, this.head.method === 'HEAD');
        if (typeof plan === 'string') return this.fail(protocolError(plan));
        this.status = head.status;
        this.framing = plan.framing;
        this.reusable = plan.reusable;
        this.idleHintMs = plan.idleHintMs;
        // A backend that chunks for an HTTP/1.0 client breaks HTTP; the bytes go on as they are,
        // but the end of the connection at least tells the client where the body ends.
        const chunkedToOld = plan.framing.kind === 'chunked' && this.head.minor === 0;
        // Request body bytes still coming after the response would be read as the next request.
        this.closeAfter = !this.client.keepAfter(this) || !this.requestDone || plan.framing.kind === 'close' || chunkedToOld;
        const connection = this.closeAfter ? 'Connection: close\r\n' : this.head.minor === 0 ? 'Connection: keep-alive\r\n' : '';
        const line = head.minor === 1 ? undefined : `HTTP/1.1${buf.toString('latin1', start + 8, head.lineEnd)}`;
        this.forwardBody(buf, end, head, line, plan.dropped, connection);
        return;
      }
    }

    /**
     * Forwards response body bytes from `buf[start..]`; when `head` is given, after it (rebuilt
     * with `line`, `dropped` and `extra`, see rebuild()) in one write.
     */
    forwardBody(buf: Buffer, start: number, head?: ResponseHead, line?: string, dropped = false, extra = ''): void {
      const framing = this.framing!;
      let end = buf.length;
      let complete = false;
      switch (framing.kind) {
        case 'none':
          end = start;
          complete = true;
          break;
        case 'length': {
          const take = Math.min(framing.remaining, buf.length - start);
          framing.remaining -= take;
          end = start + take;
          complete = framing.remaining === 0;
          break;
        }
        case 'chunked': {
          const at = framing.scanner.scan(buf, start, buf.length);
          if (at === -2) {
            // Not a byte of the response sent yet: the client can still get a 502.
            if (head !== undefined) this.framing = undefined;
            return this.fail(protocolError('malformed chunked response body'));
          }
          if (at >= 0) {
            end = at;
            complete = true;
          }
          break;
        }
        case 'close':
          break;
      }
      // Bytes after the end of the response: the backend connection cannot be trusted any more.
      if (end < buf.length) this.reusable = false;
      let bytes: Buffer;
      if (head === undefined) bytes = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
      else bytes = rebuild(head, line, dropped, extra, buf, start, end);
      if (bytes.length > 0 && !this.client.write(bytes)) this.backend?.socket.pause();
      if (complete) this.complete();
    }

    onClientDrain(): void {
      if (!this.finished) this.backend?.socket.resume();
    }

    onEnd(): void {
      if (this.finished) return;
      if (this.framing?.kind === 'close') {
        this.reusable = false;
        this.complete();
        return;
      }
      this.onError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    }

    onError(err: Error & { code?: string }): void {
      if (this.finished) return;
      const backend = this.backend;
      this.backend = undefined;
      if (backend !== undefined) pool.discard(backend);
      // The backend closed a kept-alive connection as we reused it: one more try on a new one.
      if (this.sent !== undefined && backend?.reused === true && !this.gotBytes && !this.retried && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        this.retried = true;
        const bytes = this.sent;
        this.sent = undefined;
        this.send(bytes, true);
        return;
      }
      this.fail(err);
    }

    /** The backend failed this request: a 502 if the client has seen no response yet, else a cut. */
    fail(err: Error): void {
      if (this.finished) return;
      const reason = errorReason(err);
      failures.report(this.dest, reason, 'http');
      if (this.framing !== undefined) {
        this.finish();
        this.client.destroy();
        return;
      }
      const body = `${unreachableMessage(this.dest, reason)}\n`;
      this.respond(502, 'Bad Gateway', body);
    }

    /** Answers the client ourselves (the backend connection is given up). */
    respond(status: number, text: string, body: string): void {
      this.status = status;
      this.reusable = false;
      this.closeAfter ||= !this.requestDone || !this.client.keepAfter(this);
      const bytes = Buffer.from(body, 'utf8');
      const connection = this.closeAfter ? 'connection: close\r\n' : this.head.minor === 0 ? 'connection: keep-alive\r\n' : '';
      const head = Buffer.from(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${bytes.length}\r\n${connection}\r\n`, 'latin1');
      this.client.write(Buffer.concat([head, bytes]));
      this.complete();
    }

    /** A broken request body: the backend connection is dropped, the client told and closed. */
    abort(reason: string): void {
      this.requestDone = true;
      if (this.framing !== undefined || this.finished) {
        this.finish();
        this.client.destroy();
        return;
      }
      this.closeAfter = true;
      this.respond(400, 'Bad Request', `kt router: ${reason}\n`);
    }

    /** The response is complete: the backend connection goes back to the pool (if it can). */
    complete(): void {
      this.finish();
      if (logRequests) {
        log.debug('request', {
          protocol: 'http/1.1',
          method: this.head.method,
          path: requestTarget(this.head),
          version: this.dest.route?.version ?? null,
          target: hostPort(this.dest.host, this.dest.port),
          status: this.status,
          ms: Math.round((performance.now() - this.started) * 10) / 10,
        });
      }
      this.client.done(this);
    }

    /** Ends this exchange's use of its backend connection. */
    finish(): void {
      if (this.finished) return;
      this.finished = true;
      this.pending = undefined;
      this.sent = undefined;
      const backend = this.backend;
      this.backend = undefined;
      if (backend === undefined) return;
      if (this.reusable && this.requestDone) pool.release(backend, this.idleHintMs);
      else pool.discard(backend);
    }

    /** The client went away: whatever the backend does next goes nowhere. */
    abandon(): void {
      this.reusable = false;
      this.finish();
    }
  }

  class ClientConnection {
    /** Bytes received and not yet consumed (the start of the next request). */
    buf: Buffer | undefined;
    searched = 0;
    exchange: Exchange | undefined;
    paused = 0;
    idleSince = performance.now();
    /** The client sent its FIN: no more requests after the ones buffered. */
    ended = false;
    closing = false;
    gone = false;

    readonly socket: Socket;
    readonly handover: (socket: Socket) => void;

    constructor(socket: Socket, handover: (socket: Socket) => void) {
      this.socket = socket;
      this.handover = handover;
      socket.setNoDelay(true);
      socket.on('data', this.onData);
      socket.on('end', this.onEnd);
      socket.on('error', this.onGone);
      socket.on('close', this.onGone);
      socket.on('drain', this.onDrain);
    }

    readonly onData = (chunk: Buffer): void => {
      if (this.gone) return;
      const exchange = this.exchange;
      if (exchange !== undefined && !exchange.requestDone) {
        const used = exchange.body(chunk, 0);
        if (this.gone || this.exchange !== exchange) return;
        if (used < chunk.length) this.hold(chunk.subarray(used));
        // The response may have been complete before the request was.
        if (exchange.requestDone && exchange.finished) this.done(exchange);
        return;
      }
      this.hold(chunk);
      if (this.exchange === undefined) this.next();
    };

    // As node:http does (without httpAllowHalfOpen): a client that ends its side abandons the
    // requests it has not had an answer to.
    readonly onEnd = (): void => {
      this.ended = true;
      if (this.exchange !== undefined || this.buf !== undefined) this.destroy();
      else this.closeSoon();
    };

    readonly onGone = (): void => {
      if (this.gone) return;
      this.gone = true;
      clients.delete(this);
      this.exchange?.abandon();
      this.exchange = undefined;
      this.buf = undefined;
      this.socket.destroy();
    };

    readonly onDrain = (): void => {
      this.exchange?.onClientDrain();
    };

    hold(chunk: Buffer): void {
      this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
      // Bytes of a request after the current one wait until the current response is out.
      if (this.exchange !== undefined) this.pause(HOLD);
    }

    pause(reason: number): void {
      if (this.paused === 0) this.socket.pause();
      this.paused |= reason;
    }

    unpause(reason: number): void {
      if ((this.paused & reason) === 0) return;
      this.paused &= ~reason;
      if (this.paused === 0 && !this.gone) this.socket.resume();
    }

    write(bytes: Buffer | undefined): boolean {
      if (bytes === undefined || this.gone) return true;
      return this.socket.write(bytes);
    }

    destroy(): void {
      this.socket.destroy();
      this.onGone();
    }

    /** Closes once what was written is flushed. */
    closeSoon(): void {
      this.gone = true;
      clients.delete(this);
      this.buf = undefined;
      this.socket.destroySoon();
    }

    /** Whether the connection stays open after `exchange`'s response. */
    keepAfter(exchange: Exchange): boolean {
      return exchange.plan.keepAlive && !this.closing && !closed && !draining;
    }

    /** Starts the next request held in `buf`, if it is complete; otherwise waits for more. */
    next(): void {
      const buf = this.buf;
      if (buf === undefined || this.gone) return;
      const headEnd = findHeadEnd(buf, 0, this.searched);
      if (headEnd < 0) {
        if (buf.length > MAX_HEAD_BYTES || hasBareLf(buf, Math.max(0, this.searched - 1), buf.length)) this.toNode();
        else if (this.ended) this.destroy();
        else {
          this.searched = buf.length;
          this.unpause(HOLD);
        }
        return;
      }
      this.searched = 0;
      const compiled = options.table();
      const head = parseRequestHead(buf, 0, headEnd, compiled.headerBytes);
      const plan = head === undefined ? undefined : planRequest(head, compiled.header);
      if (head === undefined || plan === undefined) {
        this.toNode();
        return;
      }
      if (plan.probe) {
        this.answerProbe(buf, headEnd, head.minor === 1 && plan.keepAlive);
        return;
      }
      const route = matchRoute(compiled, plan.bag);
      // How much of the body is already here; broken chunked framing in it is node:http's to answer.
      let bodyEnd = headEnd;
      let scanner: ChunkedScanner | undefined;
      if (plan.length > 0) bodyEnd = Math.min(buf.length, headEnd + plan.length);
      else if (plan.length < 0) {
        scanner = new ChunkedScanner();
        const at = scanner.scan(buf, headEnd, buf.length);
        if (at === -2) {
          this.toNode();
          return;
        }
        bodyEnd = at < 0 ? buf.length : at;
      }
      const dest: Destination = { route, host: route?.target ?? compiled.table.defaultTarget, port };
      const exchange = new Exchange(this, head, plan, dest);
      if (scanner !== undefined) {
        exchange.requestScanner = scanner;
        exchange.requestDone = scanner.done;
      } else if (plan.length > 0) {
        exchange.requestLeft = plan.length - (bodyEnd - headEnd);
        exchange.requestDone = exchange.requestLeft === 0;
      }
      this.exchange = exchange;
      this.buf = bodyEnd < buf.length ? buf.subarray(bodyEnd) : undefined;
      if (this.buf !== undefined) this.pause(HOLD);
      else this.unpause(HOLD);
      let bytes: Buffer;
      if (!plan.rewrite) bytes = bodyEnd === buf.length ? buf : buf.subarray(0, bodyEnd);
      else bytes = rewriteRequest(head, plan, hostPort(dest.host, dest.port), bodyEnd);
      exchange.send(bytes, false);
    }

    /** The laptop's probe (bodiless, see planRequest): answered with this pod's name, not forwarded. */
    answerProbe(buf: Buffer, headEnd: number, keepAlive: boolean): void {
      this.buf = headEnd < buf.length ? buf.subarray(headEnd) : undefined;
      const close = !keepAlive || this.closing || closed || draining;
      this.write(close ? probeClose : probeKeep);
      if (close) {
        this.closeSoon();
        return;
      }
      this.idleSince = performance.now();
      if (this.buf !== undefined) this.next();
      else this.unpause(HOLD);
    }

    /** `exchange` is over on both sides (response out, request body read): on to the next request. */
    done(exchange: Exchange): void {
      if (this.exchange !== exchange || this.gone) return;
      if (exchange.closeAfter) {
        this.exchange = undefined;
        this.closeSoon();
        return;
      }
      if (!exchange.requestDone) return;
      this.exchange = undefined;
      this.idleSince = performance.now();
      this.unpause(BACKEND_FULL);
      if (this.closing || (this.ended && this.buf === undefined)) this.closeSoon();
      else if (this.buf !== undefined) this.next();
      else this.unpause(HOLD);
    }

    /** Gives the connection, and the bytes it has not consumed, to node:http. */
    toNode(): void {
      const socket = this.socket;
      this.gone = true;
      clients.delete(this);
      socket.off('data', this.onData);
      socket.off('end', this.onEnd);
      socket.off('error', this.onGone);
      socket.off('close', this.onGone);
      socket.off('drain', this.onDrain);
      if (this.ended) {
        socket.destroy();
        return;
      }
      if (this.buf !== undefined) socket.unshift(this.buf);
      this.buf = undefined;
      socket.resume();
      this.handover(socket);
    }
  }

  return {
    accept(socket, handover) {
      // A connection accepted before the listener closed still gets its request answered (then closes).
      const client = new ClientConnection(socket, handover);
      client.closing = closed;
      clients.add(client);
      if (closed) return;
      sweep ??= setInterval(() => {
        const limit = performance.now() - keepAliveMs;
        for (const client of [...clients]) if (client.exchange === undefined && client.idleSince < limit) client.destroy();
      }, Math.min(1000, keepAliveMs));
      sweep.unref();
    },
    drain() {
      draining = true;
    },
    close() {
      closed = true;
      clearInterval(sweep);
      for (const client of [...clients]) {
        // A request partly received is still answered.
        if (client.exchange === undefined && client.buf === undefined) client.destroy();
        else client.closing = true;
      }
    },
  };
}
