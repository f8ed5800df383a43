// The shadow's DNS server: UDP and TCP on one port, each question answered by the Resolver.
// Over UDP a reply is sized to the client's EDNS buffer (512 octets without EDNS); one that does
// not fit goes out with TC=1 and what fits, so the client asks again over TCP.
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { Packet, TCPServer, UDPServer } from 'dns2';
import type { Resource } from 'dns2';
import type { Resolver } from './dns-resolver.ts';
import { rcodeName } from './dns-resolver.ts';
import type { Logger } from '../../runtime/log.ts';
import { errorMessage } from '../../runtime/log.ts';
import { ListenError, bindUdp, listenTcp } from '../../runtime/listen.ts';

const { TYPE, RCODE } = Packet;

/** Without EDNS a UDP reply is at most 512 octets (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_LIMIT = 512;
/** The largest EDNS buffer honoured; larger offers are treated as this. */
export const MAX_UDP_PAYLOAD = 4096;
/** The EDNS buffer size this server advertises in its replies. */
export const ADVERTISED_UDP_PAYLOAD = 1232;
/** A DNS message over TCP carries a 16-bit length. */
const TCP_LIMIT = 65535;

export type Transport = 'udp' | 'tcp';

export interface DnsServerOptions {
  /** Undefined: all interfaces. */
  host?: string;
  /** 0 picks a port free for both UDP and TCP. */
  port: number;
  resolver: Resolver;
  log: Logger;
}

export interface DnsServerHandle {
  /** The port bound, for both UDP and TCP. */
  readonly port: number;
  close(): Promise<void>;
}

function optRecord(packet: Packet): Resource | undefined {
  return packet.additionals.find((record) => record.type === TYPE.EDNS);
}

/** The UDP reply size the client accepts: its EDNS buffer size, else 512. */
export function udpLimit(request: Packet): number {
  const opt = optRecord(request);
  if (opt === undefined) return CLASSIC_UDP_LIMIT;
  return Math.min(Math.max(opt.class, CLASSIC_UDP_LIMIT), MAX_UDP_PAYLOAD);
}

function baseReply(request: Packet, rcode: number): Packet {
  const reply = new Packet();
  reply.header = new Packet.Header({
    id: request.header.id,
    qr: 1,
    opcode: request.header.opcode,
    rd: request.header.rd,
    ra: 1,
    rcode,
  });
  reply.questions = request.questions.slice();
  // An EDNS request gets an EDNS reply (RFC 6891 §6.1.1); an rcode above 15 needs the OPT to carry it.
  if (optRecord(request) !== undefined || rcode > 0xf) {
    reply.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: ADVERTISED_UDP_PAYLOAD }));
  }
  return reply;
}

export function errorReply(request: Packet, rcode: number): Packet {
  return baseReply(request, rcode);
}

/** The reply to `request` carrying `sections` under `rcode`. */
export function buildReply(
  request: Packet,
  rcode: number,
  sections: { answers: readonly Resource[]; authorities: readonly Resource[]; additionals: readonly Resource[] },
): Packet {
  const reply = baseReply(request, rcode);
  reply.answers = [...sections.answers];
  reply.authorities = [...sections.authorities];
  // Our OPT (if any) goes last, after the upstream's additional records.
  reply.additionals = [...sections.additionals.filter((record) => record.type !== TYPE.EDNS), ...reply.additionals];
  return reply;
}

/**
 * The wire form of `reply` in at most `limit` octets. If the whole reply does not fit: TC=1, the
 * question, as many answer records as fit, no authority or additional records except the OPT.
 */
export function fitReply(reply: Packet, limit: number): Buffer {
  const whole = reply.toBuffer();
  if (whole.length <= limit) return whole;
  const opt = optRecord(reply);
  const attempt = (answerCount: number): Buffer => {
    const truncated = new Packet();
    truncated.header = new Packet.Header({ ...reply.header, tc: 1 });
    truncated.questions = reply.questions.slice();
    truncated.answers = reply.answers.slice(0, answerCount);
    truncated.authorities = [];
    truncated.additionals = opt === undefined ? [] : [opt];
    return truncated.toBuffer();
  };
  // The largest answer count that fits, by bisection (the encoder is not cheap).
  let low = 0;
  let high = reply.answers.length;
  let best = attempt(0);
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    const candidate = attempt(mid);
    if (candidate.length <= limit) {
      best = candidate;
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  // Only a pathological question (or OPT) overflows with no answers at all; the header still says TC.
  return best.length <= limit ? best : best.subarray(0, limit);
}

/** The reply to one request, or undefined for a message that is not a query. */
export async function answer(request: Packet, resolver: Resolver, log: Logger, transport: Transport): Promise<Packet | undefined> {
  if (request.header.qr) return undefined;
  if (request.header.opcode !== 0) return errorReply(request, RCODE.NOTIMP);
  const question = request.questions[0];
  if (question === undefined || request.questions.length !== 1 || request.errors.length > 0) {
    return errorReply(request, RCODE.FORMERR);
  }
  const opt = optRecord(request);
  if (opt !== undefined && (opt.version ?? 0) > 0) return errorReply(request, RCODE.BADVERS);

  const started = performance.now();
  try {
    const result = await resolver.resolve({ name: question.name, type: question.type, class: question.class });
    log.debug('dns query', {
      transport,
      name: question.name,
      type: Packet.typeName(question.type),
      resolved: result.resolvedName,
      rcode: rcodeName(result.rcode),
      answers: result.answers.length,
      ms: Math.round(performance.now() - started),
    });
    return buildReply(request, result.rcode, result);
  } catch (err) {
    log.warn('dns upstream failed', { transport, name: question.name, type: Packet.typeName(question.type), error: errorMessage(err) });
    return errorReply(request, RCODE.SERVFAIL);
  }
}

function closeUdp(socket: UDPServer): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // not bound or already closed
    }
  });
}

/** A UDP socket on host:port; with no host, IPv6 any (dual stack) if the pod has IPv6, else IPv4 any. */
async function openUdp(host: string | undefined, port: number): Promise<UDPServer> {
  const attempts: [type: 'udp4' | 'udp6', address: string | undefined][] =
    host === undefined ? [['udp6', '::'], ['udp4', '0.0.0.0']] : [[isIPv6(host) ? 'udp6' : 'udp4', host]];
  let lastError: unknown;
  for (const [type, address] of attempts) {
    const socket = new UDPServer({ type });
    try {
      await bindUdp(socket, address, port);
      return socket;
    } catch (err) {
      lastError = err;
      await closeUdp(socket);
      // A port conflict is the same on both families; only a missing family is worth the fallback.
      if ((err as { code?: unknown }).code === 'EADDRINUSE') break;
    }
  }
  throw new ListenError('DNS (UDP)', host ?? 'all interfaces', port, lastError);
}

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServerHandle> {
  const { host, resolver, log } = options;
  const sockets = new Set<Socket>();

  const serve =
    (transport: Transport) =>
    (request: Packet, send: (response: Packet | Buffer) => Promise<Buffer>, limit: number): void => {
      answer(request, resolver, log, transport)
        .then((reply) => (reply === undefined ? undefined : send(fitReply(reply, limit))))
        .catch((err: unknown) => log.debug('dns reply not sent', { transport, error: errorMessage(err) }));
    };
  const serveUdp = serve('udp');
  const serveTcp = serve('tcp');

  // TCP and UDP share the port number. With port 0 the TCP port is picked first and UDP takes the
  // same number; if that is taken for UDP, try again with another.
  let tcp: TCPServer | undefined;
  let udp: UDPServer | undefined;
  let port = options.port;
  for (let tries = 0; udp === undefined; tries++) {
    const server = new TCPServer();
    server.maxConnections = 512;
    port = await listenTcp(server, 'DNS (TCP)', host, options.port);
    try {
      udp = await openUdp(host, port);
      tcp = server;
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (options.port !== 0 || tries >= 20) throw err;
    }
  }
  if (tcp === undefined) throw new Error('unreachable');

  udp.on('request', (request: Packet, send: (response: Packet | Buffer) => Promise<Buffer>) =>
    serveUdp(request, send, udpLimit(request)),
  );
  tcp.on('request', (request: Packet, send: (response: Packet | Buffer) => Promise<Buffer>) => serveTcp(request, send, TCP_LIMIT));
  tcp.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  for (const [transport, emitter] of [['udp', udp], ['tcp', tcp]] as const) {
    emitter.on('requestError', (err: Error) => log.debug('dns request not understood', { transport, error: err.message }));
    emitter.on('error', (err: Error) => log.warn('dns server error', { transport, error: err.message }));
  }

  const udpSocket = udp;
  const tcpServer = tcp;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= (async () => {
        const tcpClosed = new Promise<void>((resolve) => tcpServer.close(() => resolve()));
        await closeUdp(udpSocket);
        for (const socket of sockets) socket.destroy();
        await tcpClosed;
      })();
      return closing;
    },
  };
}
