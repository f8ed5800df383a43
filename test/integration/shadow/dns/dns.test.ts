// The shadow's DNS server, in-process on loopback, forwarding to a fake upstream (a dns2 server on
// 127.0.0.1) through a resolv.conf with a Kubernetes pod's search list.
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packet } from 'dns2';
import type { Resource } from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShadowHandle } from '../../../../shadow/main.ts';
import { keyPair, listenDns, startLoopbackShadow, writeSessionDir } from '../fixtures.ts';

const { TYPE, CLASS, RCODE } = Packet;


// ---------------------------------------------------------------------------------------------
// A fake upstream: the cluster's DNS server, as far as these tests go.

type RecordSpec = Partial<Resource> & { type: number };

const ZONE: Record<string, RecordSpec[]> = {
  'echo.demo.svc.cluster.local': [
    { type: TYPE.A, address: '10.96.0.50', ttl: 30 },
    { type: TYPE.AAAA, address: 'fd00::50', ttl: 30 },
  ],
  '_http._tcp.echo.demo.svc.cluster.local': [
    { type: TYPE.SRV, priority: 0, weight: 100, port: 8080, target: 'echo.demo.svc.cluster.local', ttl: 30 },
  ],
  '50.0.96.10.in-addr.arpa': [{ type: TYPE.PTR, domain: 'echo.demo.svc.cluster.local', ttl: 30 }],
  'many.demo.svc.cluster.local': Array.from({ length: 100 }, (_, i) => ({
    type: TYPE.A,
    address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    ttl: 30,
  })),
  'ext.demo.svc.cluster.local': [{ type: TYPE.CNAME, domain: 'target.example.com', ttl: 20 }],
  'target.example.com': [{ type: TYPE.A, address: '192.0.2.7', ttl: 60 }],
  'short.demo.svc.cluster.local': [{ type: TYPE.A, address: '10.96.0.51', ttl: 1 }],
};

interface FakeUpstream {
  port: number;
  /** Questions received, as "name TYPE". */
  queries: string[];
  close(): Promise<void>;
}

function answerFor(request: Packet): Packet {
  const response = Packet.createResponseFromRequest(request);
  response.header.ra = 1;
  const question = request.questions[0];
  if (question === undefined) return response;
  const name = question.name.toLowerCase();
  const records = ZONE[name];
  if (records === undefined) {
    response.header.rcode = RCODE.NXDOMAIN;
    response.authorities.push(
      new Packet.Resource({
        name: 'cluster.local',
        type: TYPE.SOA,
        class: CLASS.IN,
        ttl: 30,
        primary: 'ns.dns.cluster.local',
        admin: 'hostmaster.cluster.local',
        serial: 1,
        refresh: 7200,
        retry: 1800,
        expiration: 86400,
        minimum: 30,
      }),
    );
    return response;
  }
  for (const record of records) {
    if (record.type === question.type || record.type === TYPE.CNAME) {
      response.answers.push(new Packet.Resource({ name: question.name, class: CLASS.IN, ...record }));
      if (record.type === TYPE.CNAME && record.domain !== undefined) {
        for (const target of ZONE[record.domain] ?? []) {
          if (target.type === question.type) {
            response.answers.push(new Packet.Resource({ name: record.domain, class: CLASS.IN, ...target }));
          }
        }
      }
    }
  }
  return response;
}

async function startFakeUpstream(): Promise<FakeUpstream> {
  const queries: string[] = [];
  const handle = (request: Packet, send: (response: Packet) => Promise<Buffer>): void => {
    const question = request.questions[0];
    if (question !== undefined) queries.push(`${question.name.toLowerCase()} ${Packet.typeName(question.type)}`);
    void send(answerFor(request)).catch(() => {});
  };
  return { ...(await listenDns(handle)), queries };
}

// ---------------------------------------------------------------------------------------------
// A small DNS client with control over EDNS.

interface QueryOptions {
  /** EDNS buffer size to offer; undefined: no EDNS (512-octet limit). */
  edns?: number;
}

function buildQuery(name: string, type: number, options: QueryOptions): { id: number; wire: Buffer } {
  const query = new Packet();
  const id = Packet.uuid();
  query.header.id = id;
  query.header.rd = 1;
  query.questions.push(new Packet.Question(name, type, CLASS.IN));
  if (options.edns !== undefined) query.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: options.edns }));
  return { id, wire: query.toBuffer() };
}

interface Reply {
  packet: Packet;
  size: number;
}

function udpQuery(port: number, name: string, type: number, options: QueryOptions = {}): Promise<Reply> {
  const { id, wire } = buildQuery(name, type, options);
  const socket = createSocket('udp4');
  return new Promise<Reply>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no UDP reply for ${name}`));
    }, 5000);
    socket.on('message', (message) => {
      const packet = Packet.parse(message);
      if (packet.header.id !== id) return;
      clearTimeout(timer);
      socket.close();
      resolve({ packet, size: message.length });
    });
    socket.send(wire, port, '127.0.0.1');
  });
}

function tcpQuery(port: number, name: string, type: number, options: QueryOptions = {}): Promise<Reply> {
  const { wire } = buildQuery(name, type, options);
  return new Promise<Reply>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TCP reply for ${name}`));
    }, 5000);
    socket.on('error', reject);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(wire.length);
    socket.write(Buffer.concat([prefix, wire]));
    Packet.readStream(socket).then(
      (message) => {
        clearTimeout(timer);
        socket.end();
        resolve({ packet: Packet.parse(message), size: message.length });
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

const addresses = (packet: Packet, type: number = TYPE.A): string[] =>
  packet.answers.filter((r) => r.type === type).map((r) => r.address ?? '');

// ---------------------------------------------------------------------------------------------

let upstream: FakeUpstream;
let shadow: ShadowHandle;
let dir: string;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'kt-shadow-dns-'));
  const keys = keyPair();
  const client = keyPair();
  writeSessionDir(dir, keys.private, client.public, upstream.port);
  shadow = await startLoopbackShadow(dir);
});

afterAll(async () => {
  await shadow?.close();
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shadow DNS', () => {
  it.each([
    ['a short name', 'echo'],
    ['service.namespace', 'echo.demo'],
    ['service.namespace.svc', 'echo.demo.svc'],
    ['the FQDN', 'echo.demo.svc.cluster.local'],
  ])('answers %s over UDP under the name asked', async (_what, name) => {
    const { packet } = await udpQuery(shadow.ports.dns, name, TYPE.A);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(packet.header.qr).toBe(1);
    expect(packet.header.tc).toBe(0);
    expect(packet.questions[0]?.name).toBe(name);
    expect(addresses(packet)).toEqual(['10.96.0.50']);
    expect(packet.answers.every((r) => r.name === name)).toBe(true);
  });

  it.each([
    ['a short name', 'echo'],
    ['service.namespace', 'echo.demo'],
    ['the FQDN', 'echo.demo.svc.cluster.local'],
  ])('answers %s over TCP', async (_what, name) => {
    const { packet } = await tcpQuery(shadow.ports.dns, name, TYPE.A);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(addresses(packet)).toEqual(['10.96.0.50']);
    expect(packet.answers[0]?.name).toBe(name);
  });

  it('sends a name inside the cluster domain upstream as-is, without search suffixes', async () => {
    upstream.queries.length = 0;
    await udpQuery(shadow.ports.dns, 'echo.demo.svc.cluster.local', TYPE.AAAA);
    expect(upstream.queries).toEqual(['echo.demo.svc.cluster.local AAAA']);
  });

  it('answers AAAA', async () => {
    const { packet } = await udpQuery(shadow.ports.dns, 'echo', TYPE.AAAA);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(addresses(packet, TYPE.AAAA)).toEqual(['fd00::50']);
    expect(packet.answers[0]?.name).toBe('echo');
  });

  it('answers SRV through the search list', async () => {
    const { packet } = await udpQuery(shadow.ports.dns, '_http._tcp.echo.demo', TYPE.SRV);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    const srv = packet.answers.find((r) => r.type === TYPE.SRV);
    expect(srv).toMatchObject({ name: '_http._tcp.echo.demo', port: 8080, target: 'echo.demo.svc.cluster.local', weight: 100 });
  });

  it('passes PTR through unexpanded', async () => {
    upstream.queries.length = 0;
    const { packet } = await udpQuery(shadow.ports.dns, '50.0.96.10.in-addr.arpa', TYPE.PTR);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(packet.answers[0]).toMatchObject({ type: TYPE.PTR, domain: 'echo.demo.svc.cluster.local' });
    expect(upstream.queries).toEqual(['50.0.96.10.in-addr.arpa PTR']);
  });

  it('flattens a CNAME chain into records of the asked type under the asked name', async () => {
    const { packet } = await udpQuery(shadow.ports.dns, 'ext', TYPE.A);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(packet.answers).toHaveLength(1);
    expect(packet.answers[0]).toMatchObject({ name: 'ext', type: TYPE.A, address: '192.0.2.7' });
    // The chain's smallest TTL (the CNAME's 20 s), not the target's 60 s.
    expect(packet.answers[0]?.ttl).toBeLessThanOrEqual(20);
  });

  it('answers NXDOMAIN when no candidate name exists, after trying each', async () => {
    upstream.queries.length = 0;
    const { packet } = await udpQuery(shadow.ports.dns, 'nope', TYPE.A);
    expect(packet.header.rcode).toBe(RCODE.NXDOMAIN);
    expect(packet.answers).toHaveLength(0);
    expect(upstream.queries).toEqual([
      'nope.demo.svc.cluster.local A',
      'nope.svc.cluster.local A',
      'nope.cluster.local A',
      'nope A',
    ]);
    const tcp = await tcpQuery(shadow.ports.dns, 'nope', TYPE.A);
    expect(tcp.packet.header.rcode).toBe(RCODE.NXDOMAIN);
  });

  it('answers a repeated question from the cache', async () => {
    await udpQuery(shadow.ports.dns, 'echo.demo.svc', TYPE.AAAA);
    const before = shadow.dnsStats();
    const upstreamBefore = upstream.queries.length;
    const { packet } = await udpQuery(shadow.ports.dns, 'echo.demo.svc', TYPE.AAAA);
    const after = shadow.dnsStats();
    expect(addresses(packet, TYPE.AAAA)).toEqual(['fd00::50']);
    expect(upstream.queries.length).toBe(upstreamBefore);
    expect(after.hits).toBeGreaterThan(before.hits);
    expect(after.misses).toBe(before.misses);
    expect(after.upstreamQueries).toBe(before.upstreamQueries);
  });

  it('asks upstream again once a TTL has run out', async () => {
    await udpQuery(shadow.ports.dns, 'short', TYPE.A);
    const count = (): number => upstream.queries.filter((q) => q === 'short.demo.svc.cluster.local A').length;
    const first = count();
    await udpQuery(shadow.ports.dns, 'short', TYPE.A);
    expect(count()).toBe(first);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await udpQuery(shadow.ports.dns, 'short', TYPE.A);
    expect(count()).toBe(first + 1);
  });

  it('truncates a reply too large for UDP without EDNS (TC=1, at most 512 octets, the question kept)', async () => {
    const { packet, size } = await udpQuery(shadow.ports.dns, 'many', TYPE.A);
    expect(packet.header.tc).toBe(1);
    expect(size).toBeLessThanOrEqual(512);
    expect(packet.questions[0]?.name).toBe('many');
    expect(packet.answers.length).toBeLessThan(100);
  });

  it('respects the EDNS buffer size offered over UDP', async () => {
    const small = await udpQuery(shadow.ports.dns, 'many', TYPE.A, { edns: 1024 });
    expect(small.packet.header.tc).toBe(1);
    expect(small.size).toBeLessThanOrEqual(1024);
    expect(small.size).toBeGreaterThan(512);
    // The OPT record survives truncation.
    expect(small.packet.additionals.some((r) => r.type === TYPE.EDNS)).toBe(true);

    const large = await udpQuery(shadow.ports.dns, 'many', TYPE.A, { edns: 4096 });
    expect(large.packet.header.tc).toBe(0);
    expect(addresses(large.packet)).toHaveLength(100);
  });

  it('gives the full answer over TCP for the name that was truncated over UDP', async () => {
    const { packet } = await tcpQuery(shadow.ports.dns, 'many', TYPE.A);
    expect(packet.header.tc).toBe(0);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    const got = addresses(packet);
    expect(got).toHaveLength(100);
    expect(new Set(got).size).toBe(100);
    expect(packet.answers.every((r) => r.name === 'many')).toBe(true);
  });

  it('resolves names for direct-tcpip the same way', async () => {
    await expect(shadow.lookupHost('echo')).resolves.toBe('10.96.0.50');
    await expect(shadow.lookupHost('echo.demo.svc.cluster.local')).resolves.toBe('10.96.0.50');
    await expect(shadow.lookupHost('nope')).rejects.toThrow(/cannot resolve nope: NXDOMAIN/);
  });
});
