import { Packet } from 'dns2';
import type { Resource } from 'dns2';
import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../../../shadow/dns/dns-cache.ts';
import { Resolver, answersFor, replyTtl } from '../../../../shadow/dns/dns-resolver.ts';
import type { UpstreamReply } from '../../../../shadow/dns/dns-resolver.ts';
import type { DnsQuestion } from '../../../../shadow/dns/dns-upstream.ts';

const { TYPE, CLASS, RCODE } = Packet;

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const record = (fields: Partial<Resource> & { name: string; type: number }): Resource =>
  new Packet.Resource({ class: CLASS.IN, ttl: 30, ...fields });

const soa = (ttl: number, minimum: number): Resource =>
  record({ name: 'cluster.local', type: TYPE.SOA, ttl, minimum, primary: 'ns', admin: 'host', serial: 1, refresh: 1, retry: 1, expiration: 1 });

describe('TtlCache', () => {
  it('keeps a value for its TTL and counts hits and misses', () => {
    const c = clock();
    const cache = new TtlCache<string>({ now: c.now });
    expect(cache.get('k')).toBeUndefined();
    cache.set('k', 'v', 10);
    c.advance(9_999);
    expect(cache.get('k')).toEqual({ value: 'v', ageMs: 9_999 });
    c.advance(1);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, evictions: 0, size: 0 });
  });

  it('stores nothing for a TTL of zero, and drops the old value', () => {
    const cache = new TtlCache<string>();
    cache.set('k', 'old', 60);
    cache.set('k', 'new', 0);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry when full', () => {
    const cache = new TtlCache<number>({ maxEntries: 2 });
    cache.set('a', 1, 60);
    cache.set('b', 2, 60);
    cache.get('a'); // a is now the most recent
    cache.set('c', 3, 60);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.value).toBe(1);
    expect(cache.get('c')?.value).toBe(3);
    expect(cache.stats().evictions).toBe(1);
    expect(cache.size).toBe(2);
  });
});

describe('replyTtl', () => {
  const a = (ttl: number): Resource => record({ name: 'x', type: TYPE.A, address: '10.0.0.1', ttl });
  const reply = (fields: Partial<UpstreamReply>): UpstreamReply => ({
    rcode: RCODE.NOERROR,
    answers: [],
    authorities: [],
    additionals: [],
    ...fields,
  });

  it('is the smallest answer TTL, capped', () => {
    expect(replyTtl(reply({ answers: [a(30), a(7), a(60)] }), 5, 3600)).toBe(7);
    expect(replyTtl(reply({ answers: [a(86_400)] }), 5, 3600)).toBe(3600);
    expect(replyTtl(reply({ answers: [a(0)] }), 5, 3600)).toBe(0);
  });

  it('is short for NXDOMAIN and empty answers, and no longer than the SOA allows', () => {
    expect(replyTtl(reply({ rcode: RCODE.NXDOMAIN }), 5, 3600)).toBe(5);
    expect(replyTtl(reply({}), 5, 3600)).toBe(5);
    expect(replyTtl(reply({ rcode: RCODE.NXDOMAIN, authorities: [soa(30, 2)] }), 5, 3600)).toBe(2);
    expect(replyTtl(reply({ rcode: RCODE.NXDOMAIN, authorities: [soa(1, 30)] }), 5, 3600)).toBe(1);
  });

  it('is zero (not cached) for server failures', () => {
    expect(replyTtl(reply({ rcode: RCODE.SERVFAIL }), 5, 3600)).toBe(0);
  });
});

describe('answersFor', () => {
  const question: DnsQuestion = { name: 'echo', type: TYPE.A, class: CLASS.IN };

  it('renames records found under the expanded name to the asked name', () => {
    const out = answersFor(question, 'echo.demo.svc.cluster.local', [
      record({ name: 'echo.demo.svc.cluster.local', type: TYPE.A, address: '10.96.0.50', ttl: 30 }),
    ]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ name: 'echo', address: '10.96.0.50', ttl: 30 });
  });

  it('drops CNAMEs and takes the chain’s smallest TTL', () => {
    const out = answersFor(question, 'echo.demo.svc.cluster.local', [
      record({ name: 'echo.demo.svc.cluster.local', type: TYPE.CNAME, domain: 'elsewhere.example', ttl: 10 }),
      record({ name: 'elsewhere.example', type: TYPE.A, address: '192.0.2.1', ttl: 300 }),
    ]);
    expect(out).toEqual([expect.objectContaining({ name: 'echo', type: TYPE.A, address: '192.0.2.1', ttl: 10 })]);
  });

  it('leaves the answers alone when the asked name was used as-is', () => {
    const answers = [record({ name: 'Echo.Example', type: TYPE.A, address: '192.0.2.1' })];
    expect(answersFor({ ...question, name: 'echo.example' }, 'echo.example', answers)).toEqual(answers);
  });
});

describe('Resolver', () => {
  /** A fake upstream: names map to A addresses; others are NXDOMAIN; records every question. */
  function fakeUpstream(zone: Record<string, { address?: string; ttl?: number; rcode?: number }>) {
    const asked: string[] = [];
    const upstream = async (q: DnsQuestion): Promise<Packet> => {
      asked.push(`${q.name} ${Packet.typeName(q.type)}`);
      const packet = new Packet();
      packet.header = new Packet.Header({ qr: 1 });
      packet.questions = [new Packet.Question(q.name, q.type, q.class)];
      const entry = zone[q.name.toLowerCase()];
      if (entry === undefined) {
        packet.header.rcode = RCODE.NXDOMAIN;
      } else if (entry.rcode !== undefined) {
        packet.header.rcode = entry.rcode;
      } else if (entry.address !== undefined && q.type === TYPE.A) {
        packet.answers.push(record({ name: q.name, type: TYPE.A, address: entry.address, ttl: entry.ttl ?? 30 }));
      }
      return packet;
    };
    return { asked, upstream };
  }
  const search = ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];
  const A = (name: string): DnsQuestion => ({ name, type: TYPE.A, class: CLASS.IN });

  it('walks the search list and answers under the asked name', async () => {
    const { asked, upstream } = fakeUpstream({ 'echo.svc.cluster.local': { address: '10.0.0.9' } });
    const resolver = new Resolver({ upstream, search, ndots: 5, clusterDomain: 'cluster.local' });
    const result = await resolver.resolve(A('echo'));
    expect(result.rcode).toBe(RCODE.NOERROR);
    expect(result.resolvedName).toBe('echo.svc.cluster.local');
    expect(result.answers).toEqual([expect.objectContaining({ name: 'echo', address: '10.0.0.9' })]);
    expect(asked).toEqual(['echo.demo.svc.cluster.local A', 'echo.svc.cluster.local A']);
  });

  it('serves repeats from the cache, with TTLs aged, until they expire', async () => {
    const c = clock();
    const { asked, upstream } = fakeUpstream({ 'echo.demo.svc.cluster.local': { address: '10.0.0.1', ttl: 30 } });
    const resolver = new Resolver({ upstream, search, ndots: 5, now: c.now });
    await resolver.resolve(A('echo'));
    expect(resolver.stats()).toMatchObject({ hits: 0, misses: 1, upstreamQueries: 1 });

    c.advance(10_000);
    const again = await resolver.resolve(A('echo'));
    expect(again.answers[0]?.ttl).toBe(20);
    expect(resolver.stats()).toMatchObject({ hits: 1, misses: 1, upstreamQueries: 1 });
    expect(asked).toHaveLength(1);

    c.advance(20_000);
    await resolver.resolve(A('echo'));
    expect(resolver.stats()).toMatchObject({ hits: 1, misses: 2, upstreamQueries: 2 });
  });

  it('caches NXDOMAIN briefly', async () => {
    const c = clock();
    const { asked, upstream } = fakeUpstream({});
    const resolver = new Resolver({ upstream, search: [], ndots: 1, now: c.now, negativeTtlSeconds: 5 });
    expect((await resolver.resolve(A('gone.example'))).rcode).toBe(RCODE.NXDOMAIN);
    c.advance(4_000);
    await resolver.resolve(A('gone.example'));
    expect(asked).toHaveLength(1);
    c.advance(1_000);
    await resolver.resolve(A('gone.example'));
    expect(asked).toHaveLength(2);
  });

  it('shares one upstream query among concurrent identical questions', async () => {
    const { asked, upstream } = fakeUpstream({ 'x.example': { address: '192.0.2.1' } });
    const resolver = new Resolver({ upstream, search: [], ndots: 1 });
    await Promise.all([resolver.resolve(A('x.example')), resolver.resolve(A('x.example')), resolver.resolve(A('x.example'))]);
    expect(asked).toEqual(['x.example A']);
  });

  it('prefers an empty answer (the name exists) over NXDOMAIN, and SERVFAIL over NXDOMAIN', async () => {
    const nodata = fakeUpstream({ 'svc.svc.cluster.local': {} });
    const r1 = new Resolver({ upstream: nodata.upstream, search, ndots: 5 });
    const result = await r1.resolve(A('svc'));
    expect(result.rcode).toBe(RCODE.NOERROR);
    expect(result.answers).toEqual([]);

    const failing = fakeUpstream({ 'svc.cluster.local': { rcode: RCODE.SERVFAIL } });
    const r2 = new Resolver({ upstream: failing.upstream, search, ndots: 5 });
    expect((await r2.resolve(A('svc'))).rcode).toBe(RCODE.SERVFAIL);
  });

  it('passes other types and classes through unexpanded', async () => {
    const { asked, upstream } = fakeUpstream({});
    const resolver = new Resolver({ upstream, search, ndots: 5 });
    await resolver.resolve({ name: 'echo', type: TYPE.TXT, class: CLASS.IN });
    await resolver.resolve({ name: 'echo', type: TYPE.A, class: CLASS.CH });
    expect(asked).toEqual(['echo TXT', 'echo A']);
  });

  it('looks hosts up: IP literals as they are, localhost, names through the search list', async () => {
    const { upstream } = fakeUpstream({ 'echo.demo.svc.cluster.local': { address: '10.96.0.50' } });
    const resolver = new Resolver({ upstream, search, ndots: 5 });
    await expect(resolver.lookupHost('10.1.2.3')).resolves.toBe('10.1.2.3');
    await expect(resolver.lookupHost('[fd00::1]')).resolves.toBe('fd00::1');
    await expect(resolver.lookupHost('localhost')).resolves.toBe('127.0.0.1');
    await expect(resolver.lookupHost('echo')).resolves.toBe('10.96.0.50');
    await expect(resolver.lookupHost('nothing')).rejects.toThrow('cannot resolve nothing: NXDOMAIN');
  });

  it('rejects when the upstream does not answer at all', async () => {
    const resolver = new Resolver({
      upstream: () => Promise.reject(new Error('no reply from 10.96.0.10:53 within 5000 ms')),
      search,
      ndots: 5,
    });
    await expect(resolver.resolve(A('echo'))).rejects.toThrow(/no reply/);
    await expect(resolver.lookupHost('echo')).rejects.toThrow(/cannot resolve echo: no reply/);
  });
});
