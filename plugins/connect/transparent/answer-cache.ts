// The local DNS server's cache of whole replies, so that a name asked again is answered on the
// laptop instead of crossing the link to the cluster (a round trip or more at a real distance).
//
// Replies are kept as received, byte for byte, and handed out under the asker's id and question
// (its letter case), with every TTL lowered by the time spent in the cache. A positive reply lives
// for its smallest TTL; a negative one (NXDOMAIN, or no data) for its SOA's TTL capped by the SOA's
// minimum field (RFC 2308 §5), and not at all without an SOA. Anything else (SERVFAIL, a truncated
// reply) is not kept. Concurrent askers of one question share one query. The cache is bounded by
// entries (least recently used first out) and is dropped whole by flush(): a reconnect may land on
// a new shadow pod, whose view of the cluster the old answers do not speak for.
import { Packet } from 'dns2';
import { TtlCache } from '../../../runtime/ttl-cache.ts';
import type { CacheStats } from '../../../runtime/ttl-cache.ts';

const { RCODE, TYPE } = Packet;
const HEADER = 12;
const SOA_MINIMUM_FROM_END = 4;

export const DEFAULT_ANSWER_CACHE_ENTRIES = 4096;
export const DEFAULT_ANSWER_CACHE_MAX_TTL_SECONDS = 3600;

export interface AnswerCacheOptions {
  /** Default 4096. */
  maxEntries?: number;
  /** Longest a reply is kept, whatever its TTLs say; default 3600 s. */
  maxTtlSeconds?: number;
  /** Milliseconds clock, for tests. Default Date.now. */
  now?: () => number;
}

export interface AnswerCacheStats extends CacheStats {
  /** Askers that joined a query already in flight instead of sending their own. */
  coalesced: number;
  flushes: number;
}

interface RecordAt {
  type: number;
  /** Offset of the 32-bit TTL. */
  ttlAt: number;
  rdataAt: number;
  rdlength: number;
}

/** Offset after the (possibly compressed) name at `at`, or undefined past the end. */
function skipName(message: Buffer, at: number): number | undefined {
  for (;;) {
    const len = message[at];
    if (len === undefined) return undefined;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2;
    if ((len & 0xc0) !== 0) return undefined;
    at += 1 + len;
  }
}

/** The offset after the question section, or undefined when the message is malformed. */
function questionsEnd(message: Buffer): number | undefined {
  if (message.length < HEADER) return undefined;
  let at: number | undefined = HEADER;
  for (let q = message.readUInt16BE(4); q > 0 && at !== undefined; q--) {
    at = skipName(message, at);
    if (at !== undefined) at += 4; // type, class
  }
  return at !== undefined && at <= message.length ? at : undefined;
}

/** Every resource record after the question section, or undefined when the message is malformed. */
export function resourceRecords(message: Buffer): RecordAt[] | undefined {
  let at = questionsEnd(message);
  if (at === undefined) return undefined;
  const count = message.readUInt16BE(6) + message.readUInt16BE(8) + message.readUInt16BE(10);
  const records: RecordAt[] = [];
  for (let i = 0; i < count; i++) {
    const end = skipName(message, at);
    if (end === undefined || end + 10 > message.length) return undefined;
    const rdlength = message.readUInt16BE(end + 8);
    if (end + 10 + rdlength > message.length) return undefined;
    records.push({ type: message.readUInt16BE(end), ttlAt: end + 4, rdataAt: end + 10, rdlength });
    at = end + 10 + rdlength;
  }
  return records;
}

/**
 * What makes two queries ask the same thing: name (any case), type, class, the RD and CD bits, and
 * the EDNS record but for its UDP size (the DO bit, and options such as a client cookie, which the
 * reply echoes). Undefined for a malformed query, which is never cached.
 */
export function questionKey(query: Buffer, name: string, type: number): string | undefined {
  const end = questionsEnd(query);
  const records = resourceRecords(query);
  if (end === undefined || records === undefined) return undefined;
  const qclass = query.readUInt16BE(end - 2);
  const flags = ((query[2] ?? 0) & 0x01) | ((query[3] ?? 0) & 0x10); // RD, CD
  const opt = records.find((r) => r.type === TYPE.EDNS);
  const edns = opt === undefined ? '-' : query.subarray(opt.ttlAt, opt.rdataAt + opt.rdlength).toString('hex');
  return `${name.toLowerCase().replace(/\.+$/, '')}|${type}|${qclass}|${flags}|${edns}`;
}

/** Seconds a reply may be kept (0: not at all). */
export function replyTtl(reply: Buffer, maxTtlSeconds: number): number {
  if (reply.length < HEADER || ((reply[2] ?? 0) & 0x02) !== 0) return 0; // truncated
  const rcode = (reply[3] ?? 0) & 0x0f;
  const records = resourceRecords(reply);
  if (records === undefined) return 0;
  const answers = reply.readUInt16BE(6);
  const ttls = records.filter((r) => r.type !== TYPE.EDNS).map((r) => reply.readUInt32BE(r.ttlAt));
  if (rcode === RCODE.NOERROR && answers > 0) return Math.min(maxTtlSeconds, ...ttls);
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return 0;
  const authority = records.slice(answers, answers + reply.readUInt16BE(8));
  const soa = authority.find((r) => r.type === TYPE.SOA && r.rdlength >= SOA_MINIMUM_FROM_END);
  if (soa === undefined) return 0;
  const minimum = reply.readUInt32BE(soa.rdataAt + soa.rdlength - SOA_MINIMUM_FROM_END);
  return Math.min(maxTtlSeconds, reply.readUInt32BE(soa.ttlAt), minimum);
}

/** `stored` as an answer to `query`: its id and question, TTLs lowered by `ageSeconds`. */
export function servedCopy(stored: Buffer, query: Buffer, ageSeconds: number): Buffer {
  const out = Buffer.from(stored);
  out.writeUInt16BE(query.readUInt16BE(0), 0);
  const qEnd = questionsEnd(query);
  // The asker's letter case (some resolvers check it, RFC 5452 §9.1); same name, same length.
  if (qEnd !== undefined && qEnd === questionsEnd(out)) query.copy(out, HEADER, HEADER, qEnd);
  if (ageSeconds > 0) {
    for (const r of resourceRecords(out) ?? []) {
      if (r.type !== TYPE.EDNS) out.writeUInt32BE(Math.max(0, out.readUInt32BE(r.ttlAt) - ageSeconds), r.ttlAt);
    }
  }
  return out;
}

export class AnswerCache {
  readonly #entries: TtlCache<Buffer>;
  readonly #maxTtl: number;
  readonly #inFlight = new Map<string, Promise<Buffer>>();
  #generation = 0;
  #coalesced = 0;
  #flushes = 0;

  constructor(options: AnswerCacheOptions = {}) {
    this.#entries = new TtlCache<Buffer>({ maxEntries: options.maxEntries ?? DEFAULT_ANSWER_CACHE_ENTRIES, ...(options.now ? { now: options.now } : {}) });
    this.#maxTtl = options.maxTtlSeconds ?? DEFAULT_ANSWER_CACHE_MAX_TTL_SECONDS;
  }

  /**
   * The reply to `query` (under its id): from the cache, from a query already in flight for the
   * same key, or from `ask`, whose reply is kept for its TTL. `ask`'s failure reaches every asker
   * that shared it and is not kept.
   */
  async answer(key: string, query: Buffer, ask: () => Promise<Buffer>): Promise<{ reply: Buffer; from: 'cache' | 'shared' | 'asked' }> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) return { reply: servedCopy(hit.value, query, Math.floor(hit.ageMs / 1000)), from: 'cache' };
    const running = this.#inFlight.get(key);
    if (running !== undefined) {
      this.#coalesced++;
      return { reply: servedCopy(await running, query, 0), from: 'shared' };
    }
    const generation = this.#generation;
    const asking = ask();
    this.#inFlight.set(key, asking);
    try {
      const reply = await asking;
      // A flush while the query was out: its answer speaks for the old pod.
      if (generation === this.#generation) this.#entries.set(key, reply, replyTtl(reply, this.#maxTtl));
      return { reply: servedCopy(reply, query, 0), from: 'asked' };
    } finally {
      if (this.#inFlight.get(key) === asking) this.#inFlight.delete(key);
    }
  }

  /** Forgets every reply, and lets queries in flight finish without keeping theirs. */
  flush(): void {
    this.#generation++;
    this.#flushes++;
    this.#entries.clear();
    this.#inFlight.clear();
  }

  stats(): AnswerCacheStats {
    return { ...this.#entries.stats(), coalesced: this.#coalesced, flushes: this.#flushes };
  }
}
