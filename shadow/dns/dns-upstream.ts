// Asks the pod's nameservers one question: over UDP with EDNS, again over TCP when the reply is
// truncated, each try bounded by a timeout; nameservers in order, for the configured rounds.
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { Packet } from 'dns2';
import type { Nameserver } from '../../runtime/resolv-conf.ts';

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** One question to the upstream; resolves with its reply (any rcode) or rejects when none came. */
export type UpstreamQuery = (question: DnsQuestion) => Promise<Packet>;

export interface UpstreamOptions {
  servers: readonly Nameserver[];
  /** Per try. */
  timeoutMs: number;
  /** Rounds over `servers`. */
  attempts: number;
  /** The EDNS payload size offered upstream. Default 1232 (fits any path MTU). */
  udpPayloadSize?: number;
}

export const DEFAULT_UPSTREAM_PAYLOAD = 1232;

/** No answer from any nameserver (timeouts, refused connections); not an rcode. */
export class UpstreamError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

function serverText(server: Nameserver): string {
  return isIPv6(server.address) ? `[${server.address}]:${server.port}` : `${server.address}:${server.port}`;
}

function buildQuery(question: DnsQuestion, udpPayloadSize: number): { id: number; wire: Buffer } {
  const query = new Packet();
  const id = Packet.uuid();
  query.header.id = id;
  query.header.rd = 1;
  query.questions.push(new Packet.Question(question.name, question.type, question.class));
  query.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize }));
  return { id, wire: query.toBuffer() };
}

/** Whether `reply` answers `question` sent with `id`; anything else is ignored. */
function matches(reply: Packet, id: number, question: DnsQuestion): boolean {
  if (reply.header.id !== id || reply.header.qr !== 1) return false;
  const q = reply.questions[0];
  // A reply may omit the question (some FORMERR replies); the id then has to do.
  if (q === undefined) return true;
  return q.type === question.type && q.name.toLowerCase() === question.name.toLowerCase();
}

export function queryUdp(server: Nameserver, question: DnsQuestion, timeoutMs: number, udpPayloadSize: number): Promise<Packet> {
  const { id, wire } = buildQuery(question, udpPayloadSize);
  const socket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
  return new Promise<Packet>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, reply?: Packet): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => finish(new UpstreamError(`no reply from ${serverText(server)} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (err) => finish(new UpstreamError(`${serverText(server)}: ${err.message}`, { cause: err })));
    socket.on('message', (message) => {
      let reply: Packet;
      try {
        reply = Packet.parse(message);
      } catch {
        return; // not a DNS message: keep waiting
      }
      if (matches(reply, id, question)) finish(undefined, reply);
    });
    // A connected socket only hears from the server, and learns of ICMP port-unreachable.
    socket.connect(server.port, server.address, (err?: Error) => {
      if (err) return finish(new UpstreamError(`${serverText(server)}: ${err.message}`, { cause: err }));
      socket.send(wire, (err) => {
        if (err) finish(new UpstreamError(`${serverText(server)}: ${err.message}`, { cause: err }));
      });
    });
  });
}

export function queryTcp(server: Nameserver, question: DnsQuestion, timeoutMs: number): Promise<Packet> {
  const { id, wire } = buildQuery(question, DEFAULT_UPSTREAM_PAYLOAD);
  return new Promise<Packet>((resolve, reject) => {
    let done = false;
    let received: Buffer = Buffer.alloc(0);
    const socket = connect({ host: server.address, port: server.port, noDelay: true });
    const finish = (err: Error | undefined, reply?: Packet): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => finish(new UpstreamError(`no reply from ${serverText(server)} over TCP within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (err) => finish(new UpstreamError(`${serverText(server)} (TCP): ${err.message}`, { cause: err })));
    socket.on('end', () => finish(new UpstreamError(`${serverText(server)} closed the TCP connection without a reply`)));
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      // Length-prefixed messages (RFC 1035 §4.2.2); skip any that are not our reply.
      while (received.length >= 2) {
        const length = received.readUInt16BE(0);
        if (received.length < 2 + length) return;
        const message = received.subarray(2, 2 + length);
        received = received.subarray(2 + length);
        try {
          const reply = Packet.parse(message);
          if (matches(reply, id, question)) return finish(undefined, reply);
        } catch (err) {
          return finish(new UpstreamError(`${serverText(server)} sent a malformed reply`, { cause: err }));
        }
      }
    });
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(wire.length);
    socket.write(Buffer.concat([prefix, wire]));
  });
}

/** UDP first; the same question over TCP when the UDP reply is truncated. */
export async function queryServer(server: Nameserver, question: DnsQuestion, timeoutMs: number, udpPayloadSize: number): Promise<Packet> {
  const reply = await queryUdp(server, question, timeoutMs, udpPayloadSize);
  if (!reply.header.tc) return reply;
  return queryTcp(server, question, timeoutMs);
}

const RETRY_RCODES: ReadonlySet<number> = new Set([Packet.RCODE.SERVFAIL, Packet.RCODE.REFUSED, Packet.RCODE.NOTIMP]);

export function createUpstream(options: UpstreamOptions): UpstreamQuery {
  const { servers, timeoutMs } = options;
  const attempts = Math.max(1, options.attempts);
  const udpPayloadSize = options.udpPayloadSize ?? DEFAULT_UPSTREAM_PAYLOAD;
  if (servers.length === 0) throw new Error('no upstream nameservers');
  return async (question) => {
    let lastReply: Packet | undefined;
    let lastError: unknown;
    for (let round = 0; round < attempts; round++) {
      for (const server of servers) {
        try {
          const reply = await queryServer(server, question, timeoutMs, udpPayloadSize);
          // A server failure is worth asking the next server (as the C library does).
          if (RETRY_RCODES.has(reply.header.rcode)) {
            lastReply = reply;
            continue;
          }
          return reply;
        } catch (err) {
          lastError = err;
        }
      }
    }
    if (lastReply !== undefined) return lastReply;
    const reason = lastError instanceof Error ? lastError.message : String(lastError);
    throw new UpstreamError(`no nameserver answered ${question.name}: ${reason}`, { cause: lastError });
  };
}
