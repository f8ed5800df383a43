import { Packet } from 'dns2';
import { describe, expect, it } from 'vitest';
import {
  classifyName,
  cidrList,
  errorReply,
  fitUdp,
  frame,
  frameReader,
  inspectQuery,
  nameClassifier,
  normalizeName,
  questionsEnd,
  reverseNameToIp,
  withId,
} from '../../../../../plugins/connect/transparent/local-dns.ts';

const { TYPE, CLASS, RCODE } = Packet;

function query(id: number, name: string, type: number = TYPE.A, udpSize?: number): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question(name, type, CLASS.IN));
  if (udpSize !== undefined) packet.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: udpSize }));
  return packet.toBuffer();
}

describe('name classification', () => {
  const services = new Set(['echo', 'api']);
  const namespaces = new Set(['default', 'shop']);
  const classify = nameClassifier({
    clusterDomain: 'cluster.local',
    // The kind of predicate the caller gives: a known Service, or a known namespace second.
    isClusterName: (name) => {
      const labels = name.split('.');
      if (labels.length === 1) return services.has(labels[0]!);
      if (labels.length === 2 || (labels.length === 3 && labels[2] === 'svc')) return namespaces.has(labels[1]!);
      return false;
    },
    reverseCidrs: ['10.96.0.0/16', '10.244.0.0/24', 'fd00:10:96::/112'],
  });

  it('sends the cluster domain to the shadow, in any case, with or without the final dot', () => {
    expect(classify('echo.default.svc.cluster.local')).toBe('cluster');
    expect(classify('ECHO.Default.SVC.Cluster.Local.')).toBe('cluster');
    expect(classify('cluster.local')).toBe('cluster');
    expect(classify('_http._tcp.echo.default.svc.cluster.local')).toBe('cluster');
    expect(classify('notcluster.local')).toBe('upstream');
    expect(classify('cluster.local.example.com')).toBe('upstream');
  });

  it('asks the predicate about the short forms', () => {
    expect(classify('echo')).toBe('cluster');
    expect(classify('anything.default')).toBe('cluster');
    expect(classify('anything.shop.svc')).toBe('cluster');
    expect(classify('example')).toBe('upstream');
    expect(classify('www.example.com')).toBe('upstream');
    expect(classify('example.com')).toBe('upstream');
  });

  it('sends reverse names of cluster addresses to the shadow, other reverse names upstream', () => {
    expect(classify('7.7.96.10.in-addr.arpa')).toBe('cluster');
    expect(classify('9.0.244.10.in-addr.arpa.')).toBe('cluster');
    expect(classify('9.1.244.10.in-addr.arpa')).toBe('upstream');
    expect(classify('1.0.0.127.in-addr.arpa')).toBe('upstream');
    expect(classify('96.10.in-addr.arpa')).toBe('upstream'); // a zone, not an address
    const hex = `fd00${'0010'}${'0096'}${'0000'.repeat(4)}000a`;
    const v6 = `${[...hex].reverse().join('.')}.ip6.arpa`;
    expect(reverseNameToIp(v6)).toBe('fd00:0010:0096:0000:0000:0000:0000:000a');
    expect(classify(v6)).toBe('cluster');
  });

  it('treats a throwing predicate as "not a cluster name"', () => {
    expect(classifyName('echo', { isClusterName: () => { throw new Error('boom'); } })).toBe('upstream');
    expect(classifyName('echo')).toBe('upstream');
    expect(classifyName('x.svc.corp', { clusterDomain: 'corp' })).toBe('cluster');
  });

  it('reads reverse names strictly', () => {
    expect(reverseNameToIp('4.3.2.1.in-addr.arpa')).toBe('1.2.3.4');
    expect(reverseNameToIp('256.3.2.1.in-addr.arpa')).toBeUndefined();
    expect(reverseNameToIp('04.3.2.1.in-addr.arpa')).toBeUndefined();
    expect(reverseNameToIp('x.3.2.1.in-addr.arpa')).toBeUndefined();
    expect(normalizeName('A.B.')).toBe('a.b');
  });

  it('refuses a malformed CIDR', () => {
    expect(() => cidrList(['10.96.0.0/33'])).toThrow(/not an address or CIDR/);
    expect(() => cidrList(['nope'])).toThrow(/not an address or CIDR/);
    expect(cidrList(['10.0.0.1']).check('10.0.0.1')).toBe(true);
  });
});

describe('raw messages', () => {
  it('finds the end of the question section', () => {
    const q = query(7, 'echo.default.svc.cluster.local');
    expect(questionsEnd(q)).toBe(q.length);
    expect(questionsEnd(q.subarray(0, 20))).toBeUndefined();
    expect(questionsEnd(Buffer.alloc(5))).toBeUndefined();
  });

  it('reads the question and the EDNS buffer size', () => {
    expect(inspectQuery(query(9, 'Echo.Default', TYPE.AAAA))).toEqual({ id: 9, name: 'Echo.Default', type: TYPE.AAAA, udpLimit: 512 });
    expect(inspectQuery(query(9, 'a', TYPE.A, 1232))?.udpLimit).toBe(1232);
    expect(inspectQuery(query(9, 'a', TYPE.A, 65000))?.udpLimit).toBe(4096);
    expect(inspectQuery(query(9, 'a', TYPE.A, 100))?.udpLimit).toBe(512);
    expect(inspectQuery(Buffer.from([1, 2, 3]))).toBeUndefined();
  });

  it('replaces the id without touching the rest', () => {
    const q = query(0x1111, 'a.b');
    const changed = withId(q, 0xabcd);
    expect(changed.readUInt16BE(0)).toBe(0xabcd);
    expect(changed.subarray(2).equals(q.subarray(2))).toBe(true);
    expect(q.readUInt16BE(0)).toBe(0x1111);
  });

  it('builds error replies that keep the id, the opcode, RD and the question', () => {
    const q = query(0x2222, 'echo.default');
    const reply = Packet.parse(errorReply(q, RCODE.SERVFAIL));
    expect(reply.header).toMatchObject({ id: 0x2222, qr: 1, rd: 1, ra: 1, rcode: RCODE.SERVFAIL, opcode: 0 });
    expect(reply.questions).toEqual([expect.objectContaining({ name: 'echo.default', type: TYPE.A })]);
    expect(reply.answers).toEqual([]);
    // Garbage after the header: no question, just the rcode.
    const bad = Buffer.concat([q.subarray(0, 12), Buffer.from([0xff])]);
    const formerr = Packet.parse(errorReply(bad, RCODE.FORMERR));
    expect(formerr.header).toMatchObject({ id: 0x2222, qr: 1, rcode: RCODE.FORMERR, qdcount: 0 });
  });

  it('truncates a UDP reply that does not fit to its question with TC set', () => {
    const request = Packet.parse(query(5, 'big.default.svc.cluster.local'));
    const big = Packet.createResponseFromRequest(request);
    for (let i = 0; i < 60; i++) {
      big.answers.push(Packet.createResourceFromQuestion(request.questions[0]!, { type: TYPE.A, class: CLASS.IN, ttl: 5, address: `10.0.0.${i}` }));
    }
    const wire = big.toBuffer();
    expect(fitUdp(wire, 4096)).toBe(wire);
    const cut = fitUdp(wire, 512);
    expect(cut.length).toBeLessThanOrEqual(512);
    const parsed = Packet.parse(cut);
    expect(parsed.header).toMatchObject({ id: 5, tc: 1, qr: 1, ancount: 0 });
    expect(parsed.questions[0]?.name).toBe('big.default.svc.cluster.local');
  });

  it('frames and unframes TCP messages split anywhere', () => {
    const messages = [query(1, 'a'), query(2, 'bb.cc'), query(3, 'ddd.eee.fff')];
    const wire = Buffer.concat(messages.map(frame));
    for (const step of [1, 2, 3, 7, wire.length]) {
      const got: Buffer[] = [];
      const read = frameReader((m) => got.push(Buffer.from(m)));
      for (let i = 0; i < wire.length; i += step) read(wire.subarray(i, i + step));
      expect(got.map((m) => m.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
    }
  });
});
