import { Packet } from 'dns2';
import { describe, expect, it } from 'vitest';
import { Resolver } from '../../../../shadow/dns/dns-resolver.ts';
import { answer, buildReply, fitReply, udpLimit } from '../../../../shadow/dns/dns-server.ts';
import type { DnsQuestion } from '../../../../shadow/dns/dns-upstream.ts';
import { silentLogger } from '../../../../runtime/log.ts';

const { TYPE, CLASS, RCODE } = Packet;

function request(name: string, type: number, edns?: number): Packet {
  const packet = new Packet();
  packet.header = new Packet.Header({ id: 4242, rd: 1 });
  packet.questions = [new Packet.Question(name, type, CLASS.IN)];
  if (edns !== undefined) packet.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: edns }));
  // Round-trip through the wire, as the server sees it.
  return Packet.parse(packet.toBuffer());
}

const manyA = (name: string, count: number) =>
  Array.from(
    { length: count },
    (_, i) => new Packet.Resource({ name, type: TYPE.A, class: CLASS.IN, ttl: 30, address: `10.0.${i >> 8}.${i & 255}` }),
  );

describe('udpLimit', () => {
  it('is 512 without EDNS, else the offered size within 512..4096', () => {
    expect(udpLimit(request('x', TYPE.A))).toBe(512);
    expect(udpLimit(request('x', TYPE.A, 1232))).toBe(1232);
    expect(udpLimit(request('x', TYPE.A, 100))).toBe(512);
    expect(udpLimit(request('x', TYPE.A, 65_000))).toBe(4096);
  });
});

describe('fitReply', () => {
  it('sends a reply that fits unchanged', () => {
    const req = request('small', TYPE.A);
    const reply = buildReply(req, RCODE.NOERROR, { answers: manyA('small', 3), authorities: [], additionals: [] });
    const wire = fitReply(reply, 512);
    const parsed = Packet.parse(wire);
    expect(parsed.header.tc).toBe(0);
    expect(parsed.answers).toHaveLength(3);
    expect(parsed.header.id).toBe(4242);
  });

  it('truncates to the limit with TC=1, the question and as many answers as fit', () => {
    const req = request('many', TYPE.A);
    const reply = buildReply(req, RCODE.NOERROR, { answers: manyA('many', 100), authorities: [], additionals: [] });
    const wire = fitReply(reply, 512);
    expect(wire.length).toBeLessThanOrEqual(512);
    const parsed = Packet.parse(wire);
    expect(parsed.header.tc).toBe(1);
    expect(parsed.questions[0]?.name).toBe('many');
    expect(parsed.answers.length).toBeGreaterThan(0);
    expect(parsed.answers.length).toBeLessThan(100);
    // One more answer would not have fitted.
    const oneMore = buildReply(req, RCODE.NOERROR, {
      answers: manyA('many', parsed.answers.length + 1),
      authorities: [],
      additionals: [],
    });
    expect(oneMore.toBuffer().length).toBeGreaterThan(512);
  });

  it('keeps the OPT record in a truncated EDNS reply', () => {
    const req = request('many', TYPE.A, 1024);
    const reply = buildReply(req, RCODE.NOERROR, { answers: manyA('many', 100), authorities: [], additionals: [] });
    const parsed = Packet.parse(fitReply(reply, udpLimit(req)));
    expect(parsed.header.tc).toBe(1);
    expect(parsed.additionals.filter((r) => r.type === TYPE.EDNS)).toHaveLength(1);
  });
});

describe('answer', () => {
  const resolver = new Resolver({
    upstream: async (q: DnsQuestion) => {
      const packet = new Packet();
      packet.header = new Packet.Header({ qr: 1, rcode: q.name === 'echo.demo' ? RCODE.NOERROR : RCODE.NXDOMAIN });
      if (q.name === 'echo.demo') {
        packet.answers.push(new Packet.Resource({ name: q.name, type: TYPE.A, class: CLASS.IN, ttl: 5, address: '10.0.0.5' }));
      }
      return packet;
    },
    search: ['demo'],
    ndots: 1,
  });

  it('answers under the asked name, as a recursive reply', async () => {
    const reply = await answer(request('echo', TYPE.A), resolver, silentLogger, 'udp');
    expect(reply?.header).toMatchObject({ id: 4242, qr: 1, ra: 1, rd: 1, rcode: RCODE.NOERROR });
    expect(reply?.answers[0]).toMatchObject({ name: 'echo', address: '10.0.0.5' });
  });

  it('answers an EDNS query with an OPT record, and a query without EDNS without one', async () => {
    const withEdns = await answer(request('echo', TYPE.A, 1232), resolver, silentLogger, 'udp');
    expect(withEdns?.additionals.some((r) => r.type === TYPE.EDNS)).toBe(true);
    const without = await answer(request('echo', TYPE.A), resolver, silentLogger, 'udp');
    expect(without?.additionals.some((r) => r.type === TYPE.EDNS)).toBe(false);
  });

  it('refuses other opcodes and ignores replies', async () => {
    const notify = request('echo', TYPE.A);
    notify.header.opcode = 4;
    expect((await answer(notify, resolver, silentLogger, 'udp'))?.header.rcode).toBe(RCODE.NOTIMP);
    const stray = request('echo', TYPE.A);
    stray.header.qr = 1;
    expect(await answer(stray, resolver, silentLogger, 'udp')).toBeUndefined();
  });

  it('answers SERVFAIL when the upstream cannot be reached', async () => {
    const down = new Resolver({ upstream: () => Promise.reject(new Error('timeout')), search: [], ndots: 1 });
    expect((await answer(request('x', TYPE.A), down, silentLogger, 'tcp'))?.header.rcode).toBe(RCODE.SERVFAIL);
  });
});
