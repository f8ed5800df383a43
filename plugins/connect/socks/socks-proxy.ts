// The laptop-side proxy: one loopback port that speaks SOCKS5 (and SOCKS4/4a) and HTTP proxy
// (CONNECT tunnels and plain absolute-form requests). Every destination is opened through the
// Dialer, so names are resolved inside the cluster ("remote DNS", what socks5h:// clients and the
// JVM's socksProxyHost expect) and addresses are reached from inside the cluster. SOCKS5 UDP
// ASSOCIATE is served too when UDP flows are given (udp-associate.ts).
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostPort } from '../../../runtime/host-port.ts';
import { hopByHopFields } from '../../../runtime/http-headers.ts';
import { joinStreams, type JoinOptions } from '../../../runtime/join.ts';
import { cannotListen } from '../../../runtime/listen.ts';
import type { Dialer } from '../../tunnel/dialer.ts';
import { emptyUdpProxyStats, startUdpAssociation, type UdpAssociateOptions, type UdpProxyStats } from './udp-associate.ts';

export type LogFields = Record<string, unknown>;

/**
 * The logging this module needs. Messages are complete sentences on their own; `fields` repeats
 * the details for structured loggers, and a logger that takes only the message fits as well.
 */
export interface ProxyLogger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
}

const noop = (): void => undefined;
export const silentProxyLogger: ProxyLogger = { debug: noop, info: noop, warn: noop };

export const DEFAULT_PROXY_HOST = '127.0.0.1';
/** A client that has not finished its SOCKS handshake (or sent its first byte) by then is cut. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

export interface ProxyOptions {
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  dial: Dialer;
  /** SOCKS5 UDP ASSOCIATE through these UDP flows; without it the command is not supported. */
  udp?: UdpAssociateOptions;
  log?: ProxyLogger;
  handshakeTimeoutMs?: number;
}

export interface ProxyStats {
  /** Client connections open now. */
  active: number;
  /** Client connections accepted since start. */
  total: number;
  /** Accepted connections by the protocol they spoke. */
  socks5: number;
  socks4: number;
  http: number;
  /** Destinations the Dialer could not open. */
  dialFailures: number;
  /** SOCKS5 UDP ASSOCIATE: associations, flows, datagrams. */
  udp: UdpProxyStats;
}

export interface Proxy {
  readonly host: string;
  readonly port: number;
  /** Stops listening and cuts every open connection. Resolves once the listener is closed. */
  close(): Promise<void>;
  stats(): ProxyStats;
}

/** The environment a user sets so that tools use the proxy. */
export function proxyEnv(port: number): Record<string, string> {
  const http = `http://127.0.0.1:${port}`;
  const socks = `socks5h://127.0.0.1:${port}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: http,
    http_proxy: http,
    HTTPS_PROXY: http,
    https_proxy: http,
    ALL_PROXY: socks,
    all_proxy: socks,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}

/** JVM flags for the proxy; the JVM sends host names through SOCKS unresolved. */
export function jvmFlags(port: number): string {
  return `-DsocksProxyHost=127.0.0.1 -DsocksProxyPort=${port}`;
}

export { hostPort };

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim() || 'unknown error';
}

export type DialFailureKind = 'refused' | 'unreachable' | 'network' | 'other';

const UNREACHABLE_CODES = new Set([
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EAI_NODATA',
  'ENODATA',
  'ETIMEDOUT',
]);

/**
 * What kind of failure a Dialer rejection is. Uses the error code when there is one, else the
 * message (an SSH channel open failure only carries text such as "Connection refused").
 */
export function classifyDialError(err: unknown): DialFailureKind {
  const code = errorCode(err);
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENETUNREACH' || code === 'ENETDOWN') return 'network';
  if (code !== undefined && UNREACHABLE_CODES.has(code)) return 'unreachable';
  const text = errorText(err);
  if (/\brefused\b/i.test(text)) return 'refused';
  if (/network is unreachable/i.test(text)) return 'network';
  if (/not found|no such host|unreachable|unknown host|could not resolve|getaddrinfo|timed? ?out/i.test(text)) {
    return 'unreachable';
  }
  return 'other';
}

/** RFC 1928 reply codes. */
export const SOCKS5_REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export function socks5ReplyCode(err: unknown): number {
  switch (classifyDialError(err)) {
    case 'refused':
      return SOCKS5_REPLY.connectionRefused;
    case 'unreachable':
      return SOCKS5_REPLY.hostUnreachable;
    case 'network':
      return SOCKS5_REPLY.networkUnreachable;
    default:
      return SOCKS5_REPLY.generalFailure;
  }
}

function socks5Reply(code: number): Buffer {
  // VER REP RSV ATYP=IPv4 BND.ADDR=0.0.0.0 BND.PORT=0
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

function socks4Reply(ok: boolean): Buffer {
  return Buffer.from([0x00, ok ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0]);
}

/** Text form of a 16-byte IPv6 address, zero run compressed (RFC 5952). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * Reads exact byte counts from a socket during a handshake, pausing it while nobody waits so a
 * client that sends early cannot make us buffer without bound. `release` puts back what was
 * read ahead and leaves the socket paused, ready to be piped.
 */
function handshakeReader(socket: Socket): {
  read(n: number): Promise<Buffer>;
  readUntilZero(max: number): Promise<Buffer>;
  release(): void;
} {
  let buffered: Buffer = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let ended = false;
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (wake) wake();
    else socket.pause();
  };
  const onEnd = (): void => {
    ended = true;
    wake?.();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  const more = async (): Promise<void> => {
    if (ended) throw new Error('client closed during the handshake');
    await new Promise<void>((resolve) => {
      wake = resolve;
      socket.resume();
    });
    wake = undefined;
  };
  return {
    async read(n) {
      while (buffered.length < n) await more();
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      return out;
    },
    async readUntilZero(max) {
      for (;;) {
        const at = buffered.indexOf(0);
        if (at >= 0) {
          const out = buffered.subarray(0, at);
          buffered = buffered.subarray(at + 1);
          return out;
        }
        if (buffered.length > max) throw new Error('SOCKS4 field too long');
        await more();
      }
    },
    release() {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (buffered.length > 0) socket.unshift(buffered);
      buffered = Buffer.alloc(0);
    },
  };
}

/**
 * How the proxy joins a client to its cluster stream: ends pass on (half-close), and an error or
 * cut on either side tears down both, as does a close while the other is not done both ways.
 */
export const PROXY_JOIN = { halfClose: 'end', cut: 'destroy', onClose: 'unless-done' } as const satisfies JoinOptions;

/**
 * ssh2 channels and other plain Duplex streams lack the socket methods node:http calls on its
 * connections; give them harmless stand-ins.
 */
function asHttpSocket(stream: Duplex): Duplex {
  const s = stream as Duplex & Record<string, unknown>;
  for (const name of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) {
    if (typeof s[name] !== 'function') s[name] = () => stream;
  }
  return stream;
}

/** Headers that belong to one hop, plus the proxy's own. */
const HOP_BY_HOP = hopByHopFields({ also: ['trailer', 'proxy-authenticate', 'proxy-authorization'] });

/** rawHeaders (flat name, value list) without hop-by-hop headers and those Connection names. */
function endToEndHeaders(raw: readonly string[], keep: ReadonlySet<string> = new Set()): string[] {
  const listed = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) listed.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!keep.has(name) && (HOP_BY_HOP.has(name) || listed.has(name))) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

interface Target {
  host: string;
  port: number;
  /** Origin-form request target: path and query. */
  path: string;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * http://host[:port]/path from an absolute-form request target; undefined otherwise. Parsed by
 * hand so that the path goes upstream exactly as the client wrote it (no URL normalisation).
 */
function parseAbsoluteTarget(url: string | undefined): Target | undefined {
  const match = url ? /^http:\/\/([^/?#]*)([^#]*)/i.exec(url) : null;
  if (!match) return undefined;
  const authority = match[1]!.slice(match[1]!.lastIndexOf('@') + 1); // userinfo is dropped
  const rest = match[2]!;
  const path = rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
  const withPort = parseAuthority(authority);
  if (withPort) return { ...withPort, path };
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+)$/.test(authority)) return undefined;
  return { host: stripBrackets(authority), port: 80, path };
}

/** The Host header value for host:port, leaving out the default port. */
function hostHeader(host: string, port: number): string {
  const name = host.includes(':') ? `[${host}]` : host;
  return port === 80 ? name : `${name}:${port}`;
}

/** How long a client refused with a final message gets to read it and hang up. */
const LINGER_MS = 5_000;

/**
 * Sends the last bytes of a refused connection and half-closes; what the client still sends is
 * drained, and a client that does not hang up is cut after LINGER_MS.
 */
function endAndDrain(socket: Duplex, data: string | Buffer): void {
  socket.end(data);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** host:port from a CONNECT request target (authority-form); undefined when malformed. */
function parseAuthority(authority: string | undefined): { host: string; port: number } | undefined {
  if (!authority) return undefined;
  const match = /^(\[[^\]]+\]|[^:[\]\s/]+):(\d{1,5})$/.exec(authority);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: stripBrackets(match[1]!), port };
}

function plainResponse(status: number, reason: string, body: string): string {
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

function sendText(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function dialFailureBody(host: string, port: number, err: unknown): string {
  return `kt proxy: cannot connect to ${hostPort(host, port)}: ${errorText(err)}\n`;
}

/** Starts the proxy; rejects with a one-sentence Error when the port cannot be bound. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const host = options.host ?? DEFAULT_PROXY_HOST;
  const log = options.log ?? silentProxyLogger;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const clients = new Set<Socket>();
  const upstreams = new Set<Duplex>();
  const counts = { total: 0, socks5: 0, socks4: 0, http: 0, dialFailures: 0 };
  const udpStats = emptyUdpProxyStats();
  let closing = false;

  const dial = async (target: string, port: number): Promise<Duplex> => {
    let stream: Duplex;
    try {
      stream = await options.dial(target, port);
    } catch (err) {
      counts.dialFailures++;
      log.debug(`proxy: cannot connect to ${hostPort(target, port)}: ${errorText(err)}`, {
        target: hostPort(target, port),
        error: errorText(err),
      });
      throw err;
    }
    if (closing) {
      stream.destroy();
      throw new Error('the proxy is closing');
    }
    upstreams.add(stream);
    stream.once('close', () => upstreams.delete(stream));
    return stream;
  };

  const pipeError = (target: string) => (err: Error) =>
    log.debug(`proxy: connection to ${target} failed: ${err.message}`, { target, error: err.message, code: errorCode(err) });

  // ---- SOCKS ---------------------------------------------------------------------------------

  const socks5 = async (socket: Socket): Promise<void> => {
    const reader = handshakeReader(socket);
    const refuse = (reply: Buffer): void => {
      reader.release();
      endAndDrain(socket, reply);
    };
    const [version, methodCount] = await reader.read(2);
    if (version !== 0x05) throw new Error('not SOCKS5');
    const methods = await reader.read(methodCount ?? 0);
    if (!methods.includes(0x00)) {
      // No acceptable method: only "no authentication" is offered.
      refuse(Buffer.from([0x05, 0xff]));
      return;
    }
    socket.write(Buffer.from([0x05, 0x00]));
    const [requestVersion, command, , addressType] = await reader.read(4);
    if (requestVersion !== 0x05) throw new Error('bad SOCKS5 request version');
    let target: string;
    if (addressType === 0x01) {
      target = [...(await reader.read(4))].join('.');
    } else if (addressType === 0x04) {
      target = formatIpv6(await reader.read(16));
    } else if (addressType === 0x03) {
      const [length] = await reader.read(1);
      // Passed as-is: the name is resolved in the cluster.
      target = (await reader.read(length ?? 0)).toString('latin1');
    } else {
      refuse(socks5Reply(SOCKS5_REPLY.addressTypeNotSupported));
      return;
    }
    const port = (await reader.read(2)).readUInt16BE(0);
    if (command === 0x03 && options.udp) {
      await udpAssociate(socket, reader, { host: target, port }, options.udp);
      return;
    }
    if (command !== 0x01) {
      refuse(socks5Reply(SOCKS5_REPLY.commandNotSupported));
      return;
    }
    if (target === '' || port === 0) {
      refuse(socks5Reply(SOCKS5_REPLY.hostUnreachable));
      return;
    }
    let upstream: Duplex;
    try {
      upstream = await dial(target, port);
    } catch (err) {
      refuse(socks5Reply(socks5ReplyCode(err)));
      return;
    }
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    socket.write(socks5Reply(SOCKS5_REPLY.succeeded));
    reader.release();
    void joinStreams(socket, upstream, { ...PROXY_JOIN, onError: pipeError(hostPort(target, port)) });
  };

  /** The control connection carries nothing more; when it ends or closes, so does the association. */
  const udpAssociate = async (socket: Socket, reader: ReturnType<typeof handshakeReader>, expected: { host: string; port: number }, udp: UdpAssociateOptions): Promise<void> => {
    let association: Awaited<ReturnType<typeof startUdpAssociation>>;
    try {
      association = await startUdpAssociation(socket, expected, udp, udpStats, (msg, fields) => log.debug(msg, fields));
    } catch (err) {
      log.debug(`proxy: cannot open a UDP relay: ${errorText(err)}`, { error: errorText(err) });
      reader.release();
      endAndDrain(socket, socks5Reply(SOCKS5_REPLY.generalFailure));
      return;
    }
    if (socket.destroyed) {
      await association.close();
      return;
    }
    socket.once('close', () => void association.close());
    socket.write(association.reply);
    reader.release();
    socket.on('end', () => socket.end());
    socket.resume();
  };

  const socks4 = async (socket: Socket): Promise<void> => {
    const reader = handshakeReader(socket);
    const refuse = (reply: Buffer): void => {
      reader.release();
      endAndDrain(socket, reply);
    };
    const head = await reader.read(8);
    const command = head[1];
    const port = head.readUInt16BE(2);
    const ip = [...head.subarray(4, 8)];
    await reader.readUntilZero(255); // user id, ignored
    let target = ip.join('.');
    // SOCKS4a: 0.0.0.x (x != 0) means a host name follows.
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
      target = (await reader.readUntilZero(255)).toString('latin1');
    }
    if (command !== 0x01 || target === '' || port === 0) {
      refuse(socks4Reply(false));
      return;
    }
    let upstream: Duplex;
    try {
      upstream = await dial(target, port);
    } catch {
      refuse(socks4Reply(false));
      return;
    }
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    socket.write(socks4Reply(true));
    reader.release();
    void joinStreams(socket, upstream, { ...PROXY_JOIN, onError: pipeError(hostPort(target, port)) });
  };

  // ---- HTTP ----------------------------------------------------------------------------------

  // Never listens: non-SOCKS connections are handed to it with emit('connection').
  const httpServer = createHttpServer({ requestTimeout: 0 });
  httpServer.on('clientError', (err: Error, socket: Duplex) => {
    log.debug(`proxy: bad HTTP from a client: ${err.message}`, { error: err.message, code: errorCode(err) });
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(plainResponse(400, 'Bad Request', 'kt proxy: malformed request\n'));
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });

  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void forward(req, res).catch((err: unknown) => {
      log.debug(`proxy: request failed: ${errorText(err)}`, { error: errorText(err) });
      sendText(res, 502, `kt proxy: ${errorText(err)}\n`);
    });
  });

  const forward = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = parseAbsoluteTarget(req.url);
    if (!target) {
      sendText(res, 400, `kt proxy: expected an absolute http:// URL or CONNECT, got ${JSON.stringify(req.url ?? '')}\n`);
      return;
    }
    let upstream: Duplex;
    try {
      upstream = asHttpSocket(await dial(target.host, target.port));
    } catch (err) {
      sendText(res, 502, dialFailureBody(target.host, target.port, err));
      return;
    }
    if (res.destroyed || req.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.on('error', noop); // reported through the request below
    const headers = endToEndHeaders(req.rawHeaders);
    if (!headers.some((_, i) => i % 2 === 0 && headers[i]!.toLowerCase() === 'host')) {
      headers.push('Host', hostHeader(target.host, target.port));
    }
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) {
      // The body is re-framed; keep it chunked so that the upstream sees where it ends.
      headers.push('Transfer-Encoding', 'chunked');
    }
    const upstreamReq = httpRequest({
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      createConnection: () => upstream,
    });
    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      res.sendDate = false;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.rawHeaders));
      upstreamRes.pipe(res);
      upstreamRes.on('error', () => res.destroy());
    });
    upstreamReq.on('error', (err: Error) => {
      log.debug(`proxy: request to ${hostPort(target.host, target.port)} failed: ${err.message}`, {
        target: hostPort(target.host, target.port),
        error: err.message,
      });
      if (!res.headersSent) sendText(res, 502, dialFailureBody(target.host, target.port, err));
      else res.destroy();
    });
    res.on('close', () => {
      upstreamReq.destroy();
      upstream.destroy();
    });
    req.pipe(upstreamReq);
  };

  httpServer.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = parseAuthority(req.url);
    if (!target) {
      endAndDrain(socket, plainResponse(400, 'Bad Request', `kt proxy: bad CONNECT target ${JSON.stringify(req.url ?? '')}\n`));
      return;
    }
    dial(target.host, target.port).then(
      (upstream) => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        void joinStreams(socket, upstream, { ...PROXY_JOIN, onError: pipeError(hostPort(target.host, target.port)) });
      },
      (err: unknown) => {
        endAndDrain(socket, plainResponse(502, 'Bad Gateway', dialFailureBody(target.host, target.port, err)));
      },
    );
  });

  // Upgrades through a plain proxy request (WebSocket over ws://): forwarded as bytes.
  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = parseAbsoluteTarget(req.url);
    if (!target) {
      endAndDrain(socket, plainResponse(400, 'Bad Request', 'kt proxy: expected an absolute http:// URL\n'));
      return;
    }
    dial(target.host, target.port).then(
      (upstream) => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        const lines = [`${req.method ?? 'GET'} ${target.path} HTTP/${req.httpVersion}`];
        const raw = req.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) {
          if (!raw[i]!.toLowerCase().startsWith('proxy-')) lines.push(`${raw[i]}: ${raw[i + 1]}`);
        }
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        void joinStreams(socket, upstream, { ...PROXY_JOIN, onError: pipeError(hostPort(target.host, target.port)) });
      },
      (err: unknown) => {
        endAndDrain(socket, plainResponse(502, 'Bad Gateway', dialFailureBody(target.host, target.port, err)));
      },
    );
  });

  // ---- Listener ------------------------------------------------------------------------------

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    counts.total++;
    clients.add(socket);
    socket.once('close', () => clients.delete(socket));
    socket.on('error', (err: Error) => log.debug(`proxy: client connection error: ${err.message}`, { error: err.message, code: errorCode(err) }));
    socket.setNoDelay(true);

    const onTimeout = (): void => {
      log.debug('proxy: a client sent no complete request in time; closing it', { remote: socket.remoteAddress });
      socket.destroy();
    };
    socket.setTimeout(handshakeTimeoutMs, onTimeout);
    const handshakeDone = (): void => {
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
    };

    // Half-open is allowed, so a client that hangs up before saying anything is closed here.
    const onEarlyEnd = (): void => {
      socket.destroy();
    };
    socket.once('end', onEarlyEnd);
    socket.once('data', (chunk: Buffer) => {
      // Sniff the first byte and put it back for whoever handles the protocol.
      socket.off('end', onEarlyEnd);
      socket.pause();
      socket.unshift(chunk);
      const first = chunk[0];
      if (first === 0x05 || first === 0x04) {
        const handshake = first === 0x05 ? socks5 : socks4;
        if (first === 0x05) counts.socks5++;
        else counts.socks4++;
        handshake(socket).then(handshakeDone, (err: unknown) => {
          log.debug(`proxy: SOCKS handshake failed: ${errorText(err)}`, { error: errorText(err) });
          socket.destroy();
        });
      } else {
        counts.http++;
        handshakeDone();
        httpServer.emit('connection', socket);
        socket.resume();
      }
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => {
      const { code, sentence } = cannotListen(`port ${options.port} on ${host}`, err);
      const hint = code === 'EADDRINUSE' ? '; pick another with --proxy-port' : code === 'EACCES' ? '; pick a port above 1023 with --proxy-port' : '';
      const message = sentence + hint;
      reject(Object.assign(new Error(message, { cause: err }), { code }));
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : options.port);
    });
  });
  server.on('error', (err: Error) => log.warn(`proxy: listener error: ${err.message}`, { error: err.message }));
  log.debug(`proxy: listening on ${hostPort(host, port)}`, { host, port });

  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    stats: () => ({
      active: clients.size,
      total: counts.total,
      socks5: counts.socks5,
      socks4: counts.socks4,
      http: counts.http,
      dialFailures: counts.dialFailures,
      udp: { ...udpStats },
    }),
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        for (const socket of clients) socket.destroy();
        for (const stream of upstreams) stream.destroy();
      });
      return closed;
    },
  };
}
