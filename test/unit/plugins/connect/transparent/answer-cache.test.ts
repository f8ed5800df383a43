import { Packet } from 'dns2';
import { describe, expect, it } from 'vitest';
import { AnswerCache, questionKey, replyTtl, servedCopy } from '../../../../../plugins/connect/transparent/answer-cache.ts';

const { TYPE, CLASS, RCODE } = Packet;
type Resource = Packet['answers'][number];

function query(id: number, name: string, type: number = TYPE.A, edns?: { do?: boolean; cookie?: number[] }): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question(name, type, CLASS.IN));
  const base = packet.toBuffer();
  if (edns === undefined) return base;
  const options = edns.cookie === undefined ? [] : [0, 10, 0, edns.cookie.length, ...edns.cookie];
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, edns.do ? 0x80 : 0, 0, 0, options.length, ...options]);
  const out = Buffer.concat([base, opt]);
  out.writeUInt16BE(1, 10);
  return out;
}

interface ReplyShape {
  rcode?: number;
  answers?: { address: string; ttl: number }[];
  soa?: { ttl: number; minimum: number };
  tc?: boolean;
}

/** The fake upstream's reply to `q`. */
function reply(q: Buffer, shape: ReplyShape): Buffer {
  const request = Packet.parse(q);
  const question = request.questions[0]!;
  const packet = Packet.createResponseFromRequest(request);
  packet.header.rcode = shape.rcode ?? RCODE.NOERROR;
  if (shape.tc) packet.header.tc = 1;
  for (const a of shape.answers ?? []) {
    packet.answers.push(Packet.createResourceFromQuestion(question, { type: TYPE.A, class: CLASS.IN, ttl: a.ttl, address: a.address }));
  }
  if (shape.soa) {
    const soa: Partial<Resource> = {
      name: 'cluster.local', type: TYPE.SOA, class: CLASS.IN, ttl: shape.soa.ttl,
      primary: 'ns.dns.cluster.local', admin: 'hostmaster.cluster.local', serial: 1, refresh: 7200, retry: 1800, expiration: 86400, minimum: shape.soa.minimum,
    };
    packet.authorities.push(soa as Resource);
  }
  return packet.toBuffer();
}

function ttls(message: Buffer): number[] {
  const p = Packet.parse(message);
  return [...p.answers, ...p.authorities].map((r) => r.ttl);
}

/** A fake clock and a fake upstream that counts what it was asked. */
function harness(maxEntries?: number) {
  let now = 1_000_000;
  const cache = new AnswerCache({ now: () => now, ...(maxEntries ? { maxEntries } : {}) });
  const asked: string[] = [];
  const ask = async (q: Buffer, shape: ReplyShape): Promise<{ reply: Buffer; from: string }> => {
    const name = Packet.parse(q).questions[0]!.name;
    return cache.answer(questionKey(q, name, TYPE.A)!, q, async () => {
      asked.push(name);
      return reply(q, shape);
    });
  };
  return { cache, asked, ask, advance: (ms: number) => { now += ms; } };
}

describe('laptop DNS answer cache', () => {
  it('keeps a positive reply for its smallest TTL, handing it out aged and under the asker\'s id', async () => {
    const h = harness();
    const shape = { answers: [{ address: '10.96.0.1', ttl: 30 }, { address: '10.96.0.2', ttl: 20 }] };
    const first = await h.ask(query(1, 'echo.default.svc.cluster.local'), shape);
    expect(first.from).toBe('asked');
    h.advance(19_500);
    const again = await h.ask(query(0xabcd, 'echo.default.svc.cluster.local'), shape);
    expect(again.from).toBe('cache');
    expect(again.reply.readUInt16BE(0)).toBe(0xabcd);
    expect(ttls(again.reply)).toEqual([11, 1]);
    h.advance(500);
    expect((await h.ask(query(2, 'echo.default.svc.cluster.local'), shape)).from).toBe('asked');
    expect(h.asked).toHaveLength(2);
  });

  it('answers in the asker\'s letter case from one entry', async () => {
    const h = harness();
    const shape = { answers: [{ address: '10.96.0.1', ttl: 30 }] };
    await h.ask(query(1, 'echo.default.svc.cluster.local'), shape);
    const mixed = await h.ask(query(2, 'EcHo.Default.svc.cluster.local.'), shape);
    expect(mixed.from).toBe('cache');
    expect(Packet.parse(mixed.reply).questions[0]!.name).toBe('EcHo.Default.svc.cluster.local');
  });

  it('keeps a negative reply for the SOA TTL capped by its minimum (RFC 2308), and not without an SOA', async () => {
    const h = harness();
    const nx = { rcode: RCODE.NXDOMAIN, soa: { ttl: 30, minimum: 5 } };
    expect(replyTtl(reply(query(1, 'nope.cluster.local'), nx), 3600)).toBe(5);
    await h.ask(query(1, 'nope.cluster.local'), nx);
    h.advance(4_000);
    const cached = await h.ask(query(2, 'nope.cluster.local'), nx);
    expect(cached.from).toBe('cache');
    expect(Packet.parse(cached.reply).header.rcode).toBe(RCODE.NXDOMAIN);
    expect(ttls(cached.reply)).toEqual([26]);
    h.advance(1_000);
    expect((await h.ask(query(3, 'nope.cluster.local'), nx)).from).toBe('asked');
    // No data (NOERROR, no answer) is negative too; the SOA's own TTL can be the lower one.
    expect(replyTtl(reply(query(1, 'x.cluster.local'), { soa: { ttl: 3, minimum: 60 } }), 3600)).toBe(3);
    expect(replyTtl(reply(query(1, 'x.cluster.local'), { rcode: RCODE.NXDOMAIN }), 3600)).toBe(0);
    expect(replyTtl(reply(query(1, 'x.cluster.local'), {}), 3600)).toBe(0);
  });

  it('keeps no SERVFAIL, no truncated reply, no TTL 0, and caps a long TTL', () => {
    const q = query(1, 'echo.default.svc.cluster.local');
    expect(replyTtl(reply(q, { rcode: RCODE.SERVFAIL, soa: { ttl: 30, minimum: 30 } }), 3600)).toBe(0);
    expect(replyTtl(reply(q, { tc: true, answers: [{ address: '10.0.0.1', ttl: 30 }] }), 3600)).toBe(0);
    expect(replyTtl(reply(q, { answers: [{ address: '10.0.0.1', ttl: 0 }] }), 3600)).toBe(0);
    expect(replyTtl(reply(q, { answers: [{ address: '10.0.0.1', ttl: 86_400 }] }), 3600)).toBe(3600);
  });

  it('sends one query for concurrent askers of one question; each gets its own id', async () => {
    const cache = new AnswerCache();
    let calls = 0;
    let release: (b: Buffer) => void = () => {};
    const pending = new Promise<Buffer>((r) => { release = r; });
    const q = (id: number): Buffer => query(id, 'echo.default.svc.cluster.local');
    const key = questionKey(q(0), 'echo.default.svc.cluster.local', TYPE.A)!;
    const askers = Array.from({ length: 20 }, (_, i) => cache.answer(key, q(100 + i), () => { calls++; return pending; }));
    release(reply(q(0), { answers: [{ address: '10.96.0.1', ttl: 30 }] }));
    const replies = await Promise.all(askers);
    expect(calls).toBe(1);
    expect(replies.map((r) => r.reply.readUInt16BE(0))).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i));
    expect(replies.filter((r) => r.from === 'shared')).toHaveLength(19);
    expect(cache.stats().coalesced).toBe(19);
  });

  it('hands a failure to every asker that shared it, and keeps nothing', async () => {
    const cache = new AnswerCache();
    const q = query(1, 'echo.default.svc.cluster.local');
    const key = questionKey(q, 'echo.default.svc.cluster.local', TYPE.A)!;
    let calls = 0;
    const fail = async (): Promise<Buffer> => { calls++; await Promise.resolve(); throw new Error('tunnel down'); };
    const results = await Promise.allSettled([cache.answer(key, q, fail), cache.answer(key, q, fail)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    await cache.answer(key, q, async () => { calls++; return reply(q, { answers: [{ address: '10.0.0.1', ttl: 5 }] }); });
    expect(calls).toBe(2);
  });

  it('is bounded: the least recently used entry goes first', async () => {
    const h = harness(2);
    const shape = { answers: [{ address: '10.96.0.1', ttl: 30 }] };
    await h.ask(query(1, 'a.cluster.local'), shape);
    await h.ask(query(2, 'b.cluster.local'), shape);
    await h.ask(query(3, 'a.cluster.local'), shape); // a is now the most recent
    await h.ask(query(4, 'c.cluster.local'), shape);
    expect((await h.ask(query(5, 'a.cluster.local'), shape)).from).toBe('cache');
    expect((await h.ask(query(6, 'b.cluster.local'), shape)).from).toBe('asked');
    expect(h.cache.stats()).toMatchObject({ evictions: 2, size: 2 });
  });

  it('flush forgets every reply, and a reply in flight across a flush is not kept', async () => {
    const cache = new AnswerCache();
    const q = query(1, 'echo.default.svc.cluster.local');
    const key = questionKey(q, 'echo.default.svc.cluster.local', TYPE.A)!;
    const answer = reply(q, { answers: [{ address: '10.96.0.1', ttl: 30 }] });
    await cache.answer(key, q, async () => answer);
    cache.flush();
    expect(cache.stats().size).toBe(0);
    let release: () => void = () => {};
    const slow = cache.answer(key, q, () => new Promise<Buffer>((r) => { release = () => r(answer); }));
    cache.flush();
    release();
    expect((await slow).from).toBe('asked');
    expect(cache.stats().size).toBe(0);
    expect((await cache.answer(key, q, async () => answer)).from).toBe('asked');
  });

  it('tells questions apart by type, RD, the DO bit and EDNS options, not by case or UDP size', () => {
    const name = 'echo.default.svc.cluster.local';
    const k = (q: Buffer, type: number = TYPE.A): string => questionKey(q, Packet.parse(q).questions[0]!.name, type)!;
    const base = k(query(1, name));
    expect(k(query(2, name.toUpperCase()))).toBe(base);
    expect(k(query(3, name, TYPE.AAAA), TYPE.AAAA)).not.toBe(base);
    const noRd = query(4, name);
    noRd[2] = 0;
    expect(k(noRd)).not.toBe(base);
    expect(k(query(5, name, TYPE.A, {}))).not.toBe(base);
    expect(k(query(6, name, TYPE.A, { do: true }))).not.toBe(k(query(7, name, TYPE.A, {})));
    expect(k(query(8, name, TYPE.A, { cookie: [1, 2, 3, 4, 5, 6, 7, 8] }))).not.toBe(k(query(9, name, TYPE.A, { cookie: [8, 7, 6, 5, 4, 3, 2, 1] })));
    const small = query(10, name, TYPE.A, {});
    small.writeUInt16BE(512, small.length - 8);
    expect(k(small)).toBe(k(query(11, name, TYPE.A, {})));
    expect(questionKey(Buffer.from([0, 1, 2]), name, TYPE.A)).toBeUndefined();
  });

  it('serves an unchanged copy: the stored reply is never written to', () => {
    const q = query(1, 'echo.default.svc.cluster.local');
    const stored = reply(q, { answers: [{ address: '10.96.0.1', ttl: 30 }] });
    const before = Buffer.from(stored);
    servedCopy(stored, query(9, 'ECHO.default.svc.cluster.local'), 10);
    expect(stored.equals(before)).toBe(true);
  });
});
