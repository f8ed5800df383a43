// Answers a question the way a program in the pod would get it answered: A, AAAA and SRV names go
// through the pod's search list (so echo, echo.ns and echo.ns.svc.cluster.local all work), other
// types pass through unexpanded. Upstream replies are cached by TTL. Answers are given under the
// name that was asked, never the expanded one.
import { isIP } from 'node:net';
import { Packet } from 'dns2';
import type { Resource } from 'dns2';
import { TtlCache } from './dns-cache.ts';
import type { CacheStats } from './dns-cache.ts';
import type { DnsQuestion, UpstreamQuery } from './dns-upstream.ts';
import { isReverseName, searchCandidates } from './search-list.ts';

const { TYPE, CLASS, RCODE } = Packet;

/** An upstream reply as cached: rcode and sections (no OPT record). */
export interface UpstreamReply {
  rcode: number;
  answers: Resource[];
  authorities: Resource[];
  additionals: Resource[];
}

export interface Resolution extends UpstreamReply {
  /** The name whose upstream reply this is (the asked name, or it with a search suffix). */
  resolvedName: string;
}

export interface ResolverOptions {
  upstream: UpstreamQuery;
  search: readonly string[];
  ndots: number;
  clusterDomain?: string;
  /** How long NXDOMAIN and empty answers are kept. Default 5 s. */
  negativeTtlSeconds?: number;
  /** Upper bound on how long anything is kept. Default 3600 s. */
  maxTtlSeconds?: number;
  /** Default 10 000. */
  maxCacheEntries?: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

export interface ResolverStats extends CacheStats {
  /** Questions that went upstream (cache misses not joined to one already in flight). */
  upstreamQueries: number;
}

/** A name could not be turned into an address. */
export class LookupError extends Error {
  readonly rcode: number | undefined;
  constructor(message: string, rcode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LookupError';
    this.rcode = rcode;
  }
}

export const DEFAULT_NEGATIVE_TTL_SECONDS = 5;
export const DEFAULT_MAX_TTL_SECONDS = 3600;

const EXPANDED_TYPES: ReadonlySet<number> = new Set([TYPE.A, TYPE.AAAA, TYPE.SRV]);

export function rcodeName(rcode: number): string {
  for (const [name, value] of Object.entries(RCODE)) if (value === rcode) return name;
  return `RCODE${rcode}`;
}

function copyRecord(record: Resource, changes: Partial<Resource>): Resource {
  return Object.assign(new Packet.Resource(), record, changes);
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Seconds to cache a reply for: the smallest TTL of a positive answer, a short time for a negative one. */
export function replyTtl(reply: UpstreamReply, negativeTtl: number, maxTtl: number): number {
  if (reply.rcode === RCODE.NOERROR && reply.answers.length > 0) {
    return Math.min(maxTtl, ...reply.answers.map((record) => record.ttl));
  }
  if (reply.rcode === RCODE.NOERROR || reply.rcode === RCODE.NXDOMAIN) {
    // RFC 2308 §5: no longer than the SOA's own TTL and minimum field.
    const soa = reply.authorities.find((record) => record.type === TYPE.SOA);
    const soaTtl = soa === undefined ? negativeTtl : Math.min(soa.ttl, soa.minimum ?? soa.ttl);
    return Math.min(negativeTtl, soaTtl, maxTtl);
  }
  return 0; // server failures and the like are not kept
}

/**
 * The answer section under the asked name. When the records of the asked type were found under
 * another name (the search-expanded one, maybe after CNAMEs), they are given as owned by the asked
 * name, CNAMEs dropped and the TTL lowered to the chain's smallest.
 */
export function answersFor(question: DnsQuestion, resolvedName: string, answers: readonly Resource[]): Resource[] {
  if (sameName(question.name, resolvedName)) return [...answers];
  const final = answers.filter((record) => record.type === question.type);
  if (final.length > 0) {
    const chain = answers.filter((record) => record.type === TYPE.CNAME);
    const chainTtl = Math.min(...chain.map((record) => record.ttl));
    return final.map((record) => copyRecord(record, { name: question.name, ttl: Math.min(record.ttl, chainTtl) }));
  }
  return answers.map((record) => (sameName(record.name, resolvedName) ? copyRecord(record, { name: question.name }) : record));
}

export class Resolver {
  readonly #upstream: UpstreamQuery;
  readonly #search: readonly string[];
  readonly #ndots: number;
  readonly #clusterDomain: string | undefined;
  readonly #negativeTtl: number;
  readonly #maxTtl: number;
  readonly #cache: TtlCache<UpstreamReply>;
  readonly #inFlight = new Map<string, Promise<UpstreamReply>>();
  #upstreamQueries = 0;

  constructor(options: ResolverOptions) {
    this.#upstream = options.upstream;
    this.#search = options.search;
    this.#ndots = options.ndots;
    this.#clusterDomain = options.clusterDomain;
    this.#negativeTtl = options.negativeTtlSeconds ?? DEFAULT_NEGATIVE_TTL_SECONDS;
    this.#maxTtl = options.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS;
    this.#cache = new TtlCache<UpstreamReply>({ maxEntries: options.maxCacheEntries, now: options.now });
  }

  stats(): ResolverStats {
    return { ...this.#cache.stats(), upstreamQueries: this.#upstreamQueries };
  }

  /** The names tried for `question`, in order. */
  candidates(question: DnsQuestion): string[] {
    if (question.class !== CLASS.IN || !EXPANDED_TYPES.has(question.type) || isReverseName(question.name)) {
      return [question.name];
    }
    return searchCandidates(question.name, { search: this.#search, ndots: this.#ndots, clusterDomain: this.#clusterDomain });
  }

  /**
   * Answers `question`. The first candidate name with records wins. When none has any: an empty
   * answer if some name exists (NODATA), else NXDOMAIN, or SERVFAIL if a server failed on the way.
   * Rejects with the upstream's error when no nameserver replies at all.
   */
  async resolve(question: DnsQuestion): Promise<Resolution> {
    const names = this.candidates(question);
    if (names.length === 1) {
      const only = names[0] ?? question.name;
      const reply = await this.#lookup({ ...question, name: only });
      return { ...reply, answers: answersFor(question, only, reply.answers), resolvedName: only };
    }
    let nodata: Resolution | undefined;
    let failure: Resolution | undefined;
    let nxdomain: Resolution | undefined;
    for (const name of names) {
      const reply = await this.#lookup({ ...question, name });
      if (reply.rcode === RCODE.NOERROR && reply.answers.length > 0) {
        return {
          rcode: RCODE.NOERROR,
          answers: answersFor(question, name, reply.answers),
          // Another zone's SOA or NS would only confuse under the asked name.
          authorities: sameName(name, question.name) ? reply.authorities : [],
          additionals: reply.additionals,
          resolvedName: name,
        };
      }
      const outcome = { ...reply, answers: [], resolvedName: name };
      if (reply.rcode === RCODE.NOERROR) nodata ??= outcome;
      else if (reply.rcode === RCODE.NXDOMAIN) nxdomain = outcome;
      else failure ??= outcome;
    }
    const pick = nodata ?? failure ?? nxdomain;
    if (pick === undefined) throw new Error('no candidate names'); // unreachable: names is never empty
    const asked = sameName(pick.resolvedName, question.name);
    return { ...pick, authorities: asked ? pick.authorities : [], additionals: asked ? pick.additionals : [] };
  }

  /** An address for `host` (an IP literal, localhost, or a name through the search list). */
  async lookupHost(host: string): Promise<string> {
    const name = host.replace(/^\[(.*)\]$/, '$1');
    if (isIP(name)) return name;
    const lower = name.toLowerCase().replace(/\.+$/, '');
    if (lower === 'localhost' || lower.endsWith('.localhost')) return '127.0.0.1';
    let last: Resolution | undefined;
    for (const type of [TYPE.A, TYPE.AAAA]) {
      try {
        last = await this.resolve({ name, type, class: CLASS.IN });
      } catch (err) {
        throw new LookupError(`cannot resolve ${name}: ${err instanceof Error ? err.message : String(err)}`, undefined, {
          cause: err,
        });
      }
      const address = last.answers.find((record) => record.type === type && typeof record.address === 'string')?.address;
      if (address !== undefined) return address;
    }
    const rcode = last?.rcode ?? RCODE.NXDOMAIN;
    const why = rcode === RCODE.NOERROR ? 'no address records' : rcodeName(rcode);
    throw new LookupError(`cannot resolve ${name}: ${why}`, rcode);
  }

  /** One upstream question, through the cache; concurrent identical questions share one query. */
  async #lookup(question: DnsQuestion): Promise<UpstreamReply> {
    const key = `${question.class}/${question.type}/${question.name.toLowerCase()}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      const age = Math.floor(hit.ageMs / 1000);
      if (age === 0) return hit.value;
      const aged = (records: Resource[]): Resource[] =>
        records.map((record) => copyRecord(record, { ttl: Math.max(0, record.ttl - age) }));
      return {
        rcode: hit.value.rcode,
        answers: aged(hit.value.answers),
        authorities: aged(hit.value.authorities),
        additionals: aged(hit.value.additionals),
      };
    }
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const query = (async (): Promise<UpstreamReply> => {
      this.#upstreamQueries++;
      const packet = await this.#upstream(question);
      const reply: UpstreamReply = {
        rcode: packet.header.rcode,
        answers: packet.answers,
        authorities: packet.authorities,
        additionals: packet.additionals.filter((record) => record.type !== TYPE.EDNS),
      };
      this.#cache.set(key, reply, replyTtl(reply, this.#negativeTtl, this.#maxTtl));
      return reply;
    })();
    this.#inFlight.set(key, query);
    try {
      return await query;
    } finally {
      this.#inFlight.delete(key);
    }
  }
}
