// The laptop's DNS server in transparent mode. Cluster names (under the cluster domain, the short
// forms the caller's predicate recognises, and reverse names of the cluster CIDRs) go to the
// shadow's DNS server over one TCP stream through the tunnel; every other query goes to the
// laptop's original nameservers over UDP, so the rest of the laptop's DNS keeps working.
//
// Queries are forwarded as received, byte for byte, except for the query id: the shadow stream
// carries many queries at once (pipelined, RFC 7766), each under an id unique on that stream, and
// every reply goes back under the client's id. dns2's UDP server receives the UDP queries; TCP
// framing is done here, because dns2's TCP server hands over only the decoded message and
// re-encoding it would drop what dns2 does not decode (unknown EDNS options such as cookies).
//
// Replies are cached on the laptop by their TTLs (answer-cache.ts), so a name asked again costs no
// trip through the tunnel; the session flushes the cache when the tunnel reconnects.
import { createSocket } from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { BlockList, Server, connect, isIP, isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Packet, UDPServer } from 'dns2';
import { DEFAULT_CLUSTER_DOMAIN, SHADOW_PORT } from '../../../contract/index.ts';
import { ListenError, bindUdp, cannotListen, listenTcp } from '../../../runtime/listen.ts';
import type { Nameserver } from '../../../runtime/resolv-conf.ts';
import type { Dialer } from '../../tunnel/dialer.ts';
import type { Logger } from '../../cli/log.ts';
import { AnswerCache, questionKey } from './answer-cache.ts';
import type { AnswerCacheOptions, AnswerCacheStats } from './answer-cache.ts';

/** What the local DNS server logs through: one human-readable line per call (plugins/cli/log.ts). */
export type LocalDnsLog = Pick<Logger, 'debug' | 'info' | 'warn'>;

export type { Nameserver };

export interface NameRules {
  /** Default cluster.local. */
  clusterDomain?: string;
  /**
   * Whether a name outside the cluster domain is a cluster name (`svc`, `svc.ns`, `svc.ns.svc`).
   * Gets the name in lower case without the trailing dot.
   */
  isClusterName?: (name: string) => boolean;
  /** Reverse lookups (PTR names) of addresses in these CIDRs are cluster names. */
  reverseCidrs?: readonly string[];
}

export interface LocalDnsOptions extends NameRules {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 53; 0 picks a port free for both UDP and TCP. */
  port?: number;
  /** Opens streams through the tunnel. */
  dial: Dialer;
  /** The shadow's DNS server as the dialer sees it; default 127.0.0.1:5353. */
  shadowDns?: Nameserver;
  /** The laptop's original nameservers (from the resolv.conf that was replaced). */
  upstreams: readonly Nameserver[];
  log: LocalDnsLog;
  /** How long a cluster query may take; default 5000 ms. */
  clusterTimeoutMs?: number;
  /** How long each upstream nameserver gets; default 2000 ms. */
  upstreamTimeoutMs?: number;
  /** The reply cache; false forwards every query. */
  cache?: AnswerCacheOptions | false;
}

export interface LocalDnsStats {
  clusterQueries: number;
  upstreamQueries: number;
  /** Queries answered SERVFAIL because the forward failed. */
  failures: number;
  /** Streams opened to the shadow's DNS server. */
  shadowStreams: number;
  /** Undefined when the cache is off. */
  cache?: AnswerCacheStats;
}

export interface LocalDnsHandle {
  readonly host: string;
  /** The port bound, for both UDP and TCP. */
  readonly port: number;
  stats(): LocalDnsStats;
  /** Forgets every cached reply (the tunnel reached what may be a new shadow pod). */
  flushCache(): void;
  close(): Promise<void>;
}

export { DEFAULT_CLUSTER_DOMAIN };
export const DEFAULT_DNS_HOST = '127.0.0.1';
export const DEFAULT_DNS_PORT = 53;

/** The local DNS server cannot start. */
export class LocalDnsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalDnsError';
  }
}

const { RCODE, TYPE } = Packet;
const HEADER = 12;
const CLASSIC_UDP_LIMIT = 512;
const MAX_UDP_LIMIT = 4096;
const TCP_IDLE_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Names.

/** Lower case, no trailing dot. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** The address a reverse name (`4.3.2.1.in-addr.arpa`, 32-nibble `ip6.arpa`) stands for. */
export function reverseNameToIp(name: string): string | undefined {
  const labels = normalizeName(name).split('.');
  if (labels.length === 6 && labels[4] === 'in-addr' && labels[5] === 'arpa') {
    const octets = labels.slice(0, 4).reverse();
    if (!octets.every((o) => /^(0|[1-9]\d{0,2})$/.test(o) && Number(o) <= 255)) return undefined;
    return octets.join('.');
  }
  if (labels.length === 34 && labels[32] === 'ip6' && labels[33] === 'arpa') {
    const nibbles = labels.slice(0, 32).reverse();
    if (!nibbles.every((n) => /^[0-9a-f]$/.test(n))) return undefined;
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(nibbles.slice(i, i + 4).join(''));
    return groups.join(':');
  }
  return undefined;
}

/** A BlockList of CIDRs (IPv4 or IPv6; a bare address is a /32 or /128); throws on a bad entry. */
export function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits, extra] = cidr.trim().split('/');
    const family = isIP(address ?? '');
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (address === undefined || family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new LocalDnsError(`${JSON.stringify(cidr)} is not an address or CIDR`);
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

export type Route = 'cluster' | 'upstream';

/** A classifier of names: 'cluster' goes to the shadow, 'upstream' to the original nameservers. */
export function nameClassifier(rules: NameRules): (name: string) => Route {
  const domain = normalizeName(rules.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
  const reverse = cidrList(rules.reverseCidrs ?? []);
  const predicate = rules.isClusterName;
  return (rawName) => {
    const name = normalizeName(rawName);
    if (name === '') return 'upstream';
    if (domain !== '' && (name === domain || name.endsWith(`.${domain}`))) return 'cluster';
    if (name.endsWith('.arpa')) {
      const ip = reverseNameToIp(name);
      if (ip === undefined) return 'upstream';
      return reverse.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4') ? 'cluster' : 'upstream';
    }
    try {
      return predicate?.(name) ? 'cluster' : 'upstream';
    } catch {
      return 'upstream';
    }
  };
}

/**
 * The short cluster names outside the cluster domain: `svc` (a Service of the session's
 * namespace), `svc.ns` and `svc.ns.svc` for a namespace that exists. While the namespaces cannot
 * be listed only the session's own and those named with --namespaces count, so `example.com` or
 * `corp.internal` never go to the cluster for want of a list.
 */
export function shortClusterNames(namespaces: () => ReadonlySet<string> | undefined, sessionNamespace: string, named: readonly string[] = []): (name: string) => boolean {
  return (name) => {
    const labels = name.split('.');
    if (labels.length === 1) return labels[0] !== '';
    if (labels.length > 3 || (labels.length === 3 && labels[2] !== 'svc')) return false;
    const ns = labels[1]!;
    // Namespaces the user named (--namespaces) count even when they cannot be listed.
    return named.includes(ns) || (namespaces() ?? new Set([sessionNamespace])).has(ns);
  };
}

/** One-shot form of nameClassifier. */
export function classifyName(name: string, rules: NameRules = {}): Route {
  return nameClassifier(rules)(name);
}

// ---------------------------------------------------------------------------------------------
// Raw messages.

/** The octet after the question section, or undefined when the message is malformed. */
export function questionsEnd(message: Buffer): number | undefined {
  if (message.length < HEADER) return undefined;
  let at = HEADER;
  const count = message.readUInt16BE(4);
  for (let q = 0; q < count; q++) {
    for (;;) {
      const len = message[at];
      if (len === undefined) return undefined;
      if (len === 0) {
        at += 1;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        at += 2;
        break;
      }
      if ((len & 0xc0) !== 0) return undefined;
      at += 1 + len;
    }
    at += 4; // type, class
    if (at > message.length) return undefined;
  }
  return at;
}

/** A copy of `message` under query id `id`. */
export function withId(message: Buffer, id: number): Buffer {
  const copy = Buffer.from(message);
  copy.writeUInt16BE(id, 0);
  return copy;
}

/** A reply to `query` with no records and `rcode`, keeping its id, opcode, RD and question. */
export function errorReply(query: Buffer, rcode: number): Buffer {
  const end = questionsEnd(query);
  const reply = Buffer.alloc(end ?? HEADER);
  if (end !== undefined) query.copy(reply, 0, 0, end);
  else query.copy(reply, 0, 0, Math.min(2, query.length));
  const opcodeRd = (query[2] ?? 0) & 0x79; // opcode and RD
  reply[2] = 0x80 | opcodeRd; // QR
  reply[3] = 0x80 | (rcode & 0x0f); // RA, rcode
  reply.writeUInt16BE(end === undefined ? 0 : query.readUInt16BE(4), 4);
  reply.writeUInt16BE(0, 6);
  reply.writeUInt16BE(0, 8);
  reply.writeUInt16BE(0, 10);
  return reply;
}

/**
 * `reply` if it fits in `limit` octets, else its header with TC=1 and its question only: the
 * client asks again over TCP.
 */
export function fitUdp(reply: Buffer, limit: number): Buffer {
  if (reply.length <= limit) return reply;
  const end = questionsEnd(reply) ?? HEADER;
  const truncated = Buffer.from(reply.subarray(0, Math.min(end, limit)));
  truncated[2] = (truncated[2] ?? 0) | 0x02; // TC
  if (end > limit) truncated.writeUInt16BE(0, 4);
  truncated.writeUInt16BE(0, 6);
  truncated.writeUInt16BE(0, 8);
  truncated.writeUInt16BE(0, 10);
  return truncated;
}

export interface QueryInfo {
  id: number;
  name: string;
  type: number;
  /** The largest UDP reply the client takes: its EDNS buffer size, else 512. */
  udpLimit: number;
}

/** What the query asks, or undefined when it is not a single-question standard query. */
export function inspectQuery(message: Buffer): QueryInfo | undefined {
  let packet: Packet;
  try {
    packet = Packet.parse(message);
  } catch {
    return undefined;
  }
  const question = packet.questions[0];
  if (packet.header.qr || packet.header.opcode !== 0 || question === undefined || packet.questions.length !== 1) return undefined;
  const opt = packet.additionals.find((record) => record.type === TYPE.EDNS);
  const udpLimit = opt === undefined ? CLASSIC_UDP_LIMIT : Math.min(Math.max(opt.class, CLASSIC_UDP_LIMIT), MAX_UDP_LIMIT);
  return { id: packet.header.id, name: question.name, type: question.type, udpLimit };
}

/** Reads length-prefixed DNS messages (RFC 1035 §4.2.2) from a byte stream. */
export function frameReader(onMessage: (message: Buffer) => void): (chunk: Buffer) => void {
  let buffered: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) break;
      const message = buffered.subarray(2, 2 + length);
      buffered = buffered.subarray(2 + length);
      if (length > 0) onMessage(message);
    }
  };
}

export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The shadow: one pipelined stream, reopened after it fails.

/** The stream to the shadow failed under a query: worth one more try on a new stream. */
class StreamLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamLost';
  }
}

interface Pending {
  stream: Duplex;
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface ShadowChannel {
  query(message: Buffer): Promise<Buffer>;
  streams(): number;
  close(): void;
}

function shadowChannel(dial: Dialer, target: Nameserver, timeoutMs: number, log: LocalDnsLog): ShadowChannel {
  let stream: Duplex | undefined;
  let opening: Promise<Duplex> | undefined;
  let opened = 0;
  let closed = false;
  const pending = new Map<number, Pending>();
  let nextId = Math.floor(Math.random() * 0x10000);

  const dropStream = (s: Duplex, why: string): void => {
    if (stream === s) stream = undefined;
    for (const [id, entry] of pending) {
      if (entry.stream !== s) continue;
      pending.delete(id);
      clearTimeout(entry.timer);
      entry.reject(new StreamLost(why));
    }
    s.destroy();
  };

  const open = async (): Promise<Duplex> => {
    const s = await dial(target.address, target.port);
    opened++;
    if (closed) {
      s.destroy();
      throw new Error('local DNS is closing');
    }
    const read = frameReader((reply) => {
      const entry = pending.get(reply.readUInt16BE(0));
      if (entry === undefined || entry.stream !== s) return; // late, after a timeout
      pending.delete(reply.readUInt16BE(0));
      clearTimeout(entry.timer);
      entry.resolve(reply);
    });
    s.on('data', (chunk: Buffer) => read(chunk));
    s.on('error', (err: Error) => dropStream(s, `shadow DNS stream failed: ${err.message}`));
    s.on('end', () => dropStream(s, 'shadow DNS stream closed'));
    s.on('close', () => dropStream(s, 'shadow DNS stream closed'));
    log.debug(`local DNS: stream to the shadow's DNS server (${target.address}:${target.port}) open`);
    stream = s;
    return s;
  };

  const current = (): Promise<Duplex> => {
    if (stream !== undefined && !stream.destroyed && stream.writable) return Promise.resolve(stream);
    opening ??= open().finally(() => (opening = undefined));
    return opening;
  };

  const allocateId = (): number => {
    for (let tries = 0; tries < 0x10000; tries++) {
      nextId = (nextId + 1) & 0xffff;
      if (!pending.has(nextId)) return nextId;
    }
    throw new Error('too many DNS queries in flight');
  };

  const once = async (message: Buffer): Promise<Buffer> => {
    const s = await current();
    const id = allocateId();
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`no reply from the shadow's DNS server within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { stream: s, resolve, reject, timer });
      s.write(frame(withId(message, id)));
    });
  };

  return {
    async query(message) {
      try {
        return await once(message);
      } catch (err) {
        if (!(err instanceof StreamLost) || closed) throw err;
        log.debug(`local DNS: retrying a query on a new shadow stream (${err.message})`);
        return once(message);
      }
    },
    streams: () => opened,
    close() {
      closed = true;
      if (stream !== undefined) dropStream(stream, 'local DNS closed');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Upstream nameservers.

function udpExchange(server: Nameserver, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
    // A fresh id and a fresh socket per query: a reply must match both.
    const id = Math.floor(Math.random() * 0x10000);
    const done = (err: Error | undefined, reply?: Buffer): void => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => done(new Error(`no reply from ${server.address}:${server.port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => done(err));
    socket.on('message', (reply: Buffer, rinfo: RemoteInfo) => {
      if (reply.length < HEADER || reply.readUInt16BE(0) !== id || rinfo.port !== server.port) return;
      if (rinfo.address !== server.address && !(server.address === '0.0.0.0' || server.address === '::')) return;
      done(undefined, reply);
    });
    socket.send(withId(query, id), server.port, server.address, (err) => {
      if (err) done(err);
    });
  });
}

function tcpExchange(server: Nameserver, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.address, port: server.port, noDelay: true });
    const timer = setTimeout(() => fail(new Error(`no TCP reply from ${server.address}:${server.port} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const read = frameReader((reply) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    });
    socket.on('data', read);
    socket.on('error', fail);
    socket.on('end', () => fail(new Error(`${server.address}:${server.port} closed the TCP connection without a reply`)));
    socket.write(frame(query));
  });
}

// ---------------------------------------------------------------------------------------------
// The server.

/** dns2's UDP server, handing over the raw query rather than the decoded one. */
class RawUdpServer extends UDPServer {
  onQuery: (message: Buffer, rinfo: RemoteInfo) => void = () => {};
  override handle(data: Buffer, rinfo: RemoteInfo): void {
    this.onQuery(data, rinfo);
  }
}

function listenError(what: string, host: string, port: number, failure: unknown): LocalDnsError {
  // listenTcp wraps the socket's error; UDP's comes bare.
  const err = failure instanceof ListenError ? failure.cause : failure;
  const { code, sentence } = cannotListen(`${what} port ${port} on ${host}`, err);
  const hint = code === 'EADDRINUSE' ? ' (another DNS server?)' : code === 'EACCES' ? ' (port 53 needs root)' : '';
  return new LocalDnsError(`local DNS: ${sentence}${hint}`, { cause: err });
}

export async function startLocalDns(options: LocalDnsOptions): Promise<LocalDnsHandle> {
  const host = options.host ?? DEFAULT_DNS_HOST;
  const wantedPort = options.port ?? DEFAULT_DNS_PORT;
  const { log } = options;
  if (!isIP(host)) throw new LocalDnsError(`local DNS address ${JSON.stringify(host)} is not an IP address`);
  const classify = nameClassifier(options);
  const shadow = shadowChannel(
    options.dial,
    options.shadowDns ?? { address: '127.0.0.1', port: SHADOW_PORT.dns },
    options.clusterTimeoutMs ?? 5000,
    log,
  );
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 2000;
  const stats: LocalDnsStats = { clusterQueries: 0, upstreamQueries: 0, failures: 0, shadowStreams: 0 };
  const cache = options.cache === false ? undefined : new AnswerCache(options.cache);
  let lastWarning = 0;

  // TCP first; UDP takes the same number (with port 0, try again if that one is taken for UDP).
  let tcp: Server | undefined;
  let udp: RawUdpServer | undefined;
  let port = wantedPort;
  for (let tries = 0; udp === undefined; tries++) {
    const server = new Server({ allowHalfOpen: true, noDelay: true });
    server.maxConnections = 256;
    try {
      port = await listenTcp(server, 'DNS (TCP)', host, wantedPort);
    } catch (err) {
      throw listenError('TCP', host, wantedPort, err);
    }
    const socket = new RawUdpServer({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    try {
      await bindUdp(socket, host, port);
      udp = socket;
      tcp = server;
    } catch (err) {
      socket.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (wantedPort !== 0 || tries >= 20) throw listenError('UDP', host, port, err);
    }
  }
  const tcpServer = tcp!;
  const boundPort = port;

  // Never forward to ourselves.
  const upstreams = options.upstreams.filter(
    (server) => !(server.port === boundPort && (server.address === host || (isIPv4(host) && server.address === '0.0.0.0'))),
  );

  async function forwardUpstream(query: Buffer, overTcp: boolean): Promise<Buffer> {
    if (upstreams.length === 0) throw new Error('no upstream nameservers');
    let lastError: unknown;
    for (const server of upstreams) {
      try {
        const reply = await udpExchange(server, query, upstreamTimeoutMs);
        // A truncated UDP reply for a TCP client: ask that server over TCP.
        if (overTcp && ((reply[2] ?? 0) & 0x02) !== 0) {
          return await tcpExchange(server, query, upstreamTimeoutMs).catch(() => reply);
        }
        return reply;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  async function answer(query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (query.length < HEADER || ((query[2] ?? 0) & 0x80) !== 0) return undefined; // not a query
    const info = inspectQuery(query);
    if (info === undefined) {
      const opcode = ((query[2] ?? 0) >> 3) & 0x0f;
      return errorReply(query, opcode !== 0 ? RCODE.NOTIMP : RCODE.FORMERR);
    }
    const route = classify(info.name);
    const started = performance.now();
    const ask = (): Promise<Buffer> => {
      if (route === 'cluster') {
        stats.clusterQueries++;
        return shadow.query(query);
      }
      stats.upstreamQueries++;
      return forwardUpstream(query, transport === 'tcp');
    };
    const key = cache === undefined ? undefined : questionKey(query, info.name, info.type);
    let reply: Buffer;
    let from: string = route;
    try {
      if (cache === undefined || key === undefined) {
        reply = await ask();
      } else {
        // Upstream, a UDP asker may get a truncated reply a TCP asker must not share.
        const answered = await cache.answer(`${route}|${route === 'upstream' ? transport : ''}|${key}`, query, ask);
        reply = answered.reply;
        if (answered.from !== 'asked') from = `${route}, ${answered.from}`;
      }
    } catch (err) {
      stats.failures++;
      const line = `local DNS: ${info.name} ${Packet.typeName(info.type)} (${route}) failed: ${(err as Error).message}`;
      // One warning per half minute; the rest under --debug.
      if (Date.now() - lastWarning > 30_000) {
        lastWarning = Date.now();
        log.warn(line);
      } else {
        log.debug(line);
      }
      return errorReply(query, RCODE.SERVFAIL);
    }
    log.debug(`local DNS: ${info.name} ${Packet.typeName(info.type)} over ${transport} -> ${from}, ${(performance.now() - started).toFixed(1)} ms`);
    const mine = withId(reply, info.id);
    return transport === 'udp' ? fitUdp(mine, info.udpLimit) : mine;
  }

  const udpSocket = udp;
  udpSocket.onQuery = (message, rinfo) => {
    answer(message, 'udp')
      .then((reply) => {
        if (reply !== undefined) udpSocket.send(reply, rinfo.port, rinfo.address);
      })
      .catch((err: unknown) => log.debug(`local DNS: reply not sent: ${(err as Error).message}`));
  };
  udpSocket.on('error', (err: Error) => log.warn(`local DNS: UDP error: ${err.message}`));

  const connections = new Set<Socket>();
  tcpServer.on('connection', (client: Socket) => {
    connections.add(client);
    client.setTimeout(TCP_IDLE_MS);
    let inFlight = 0;
    let peerEnded = false;
    const read = frameReader((message) => {
      inFlight++;
      answer(message, 'tcp')
        .then((reply) => {
          if (reply !== undefined && client.writable) client.write(frame(reply));
        })
        .catch((err: unknown) => log.debug(`local DNS: reply not sent: ${(err as Error).message}`))
        .finally(() => {
          inFlight--;
          if (peerEnded && inFlight === 0) client.end();
        });
    });
    client.on('data', read);
    client.on('end', () => {
      peerEnded = true;
      if (inFlight === 0) client.end();
    });
    client.on('timeout', () => client.end());
    client.on('error', () => client.destroy());
    client.on('close', () => connections.delete(client));
  });
  tcpServer.on('error', (err: Error) => log.warn(`local DNS: TCP error: ${err.message}`));

  log.debug(`local DNS: listening on ${host}:${boundPort}, other names to ${upstreams.map((u) => `${u.address}:${u.port}`).join(', ') || 'nobody'}`);

  let closing: Promise<void> | undefined;
  return {
    host,
    port: boundPort,
    stats: () => ({ ...stats, shadowStreams: shadow.streams(), ...(cache ? { cache: cache.stats() } : {}) }),
    flushCache() {
      if (cache === undefined) return;
      cache.flush();
      log.debug('local DNS: cache dropped');
    },
    close() {
      closing ??= (async () => {
        shadow.close();
        const tcpClosed = new Promise<void>((resolve) => tcpServer.close(() => resolve()));
        for (const client of connections) client.destroy();
        await new Promise<void>((resolve) => {
          try {
            udpSocket.close(() => resolve());
          } catch {
            resolve();
          }
        });
        await tcpClosed;
      })();
      return closing;
    },
  };
}
