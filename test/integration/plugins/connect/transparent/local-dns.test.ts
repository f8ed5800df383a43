// The laptop's local DNS server on loopback: cluster names through a fake dialer to a fake shadow
// DNS server (dns2, TCP), everything else to a fake upstream (dns2, UDP). Then, in a network
// namespace this test creates, wired into the namespace's resolv.conf and asked through the C
// library (getent).
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Server, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Packet, TCPServer, UDPServer } from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dialer } from '../../../../../plugins/tunnel/dialer.ts';
import { frame, frameReader, startLocalDns } from '../../../../../plugins/connect/transparent/local-dns.ts';
import type { LocalDnsHandle } from '../../../../../plugins/connect/transparent/local-dns.ts';

const HOST = '127.0.0.1';
const { TYPE, CLASS, RCODE } = Packet;
type Question = Packet['questions'][number];
type Resource = Packet['answers'][number];

const silent = { debug: () => {}, info: () => {}, warn: () => {} };

function record(question: Question, fields: Partial<Resource>): Resource {
  return Packet.createResourceFromQuestion(question, { class: CLASS.IN, ttl: 30, ...fields });
}

/** A query as a stub resolver would send it; `cookie` adds an EDNS COOKIE option dns2 cannot decode. */
function query(id: number, name: string, type: number = TYPE.A, options: { cookie?: boolean } = {}): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question(name, type, CLASS.IN));
  const base = packet.toBuffer();
  if (!options.cookie) return base;
  // OPT: root name, type 41, UDP size 1232, TTL 0, one option: COOKIE (10), 8 octets.
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
  const out = Buffer.concat([base, opt]);
  out.writeUInt16BE(1, 10);
  return out;
}

function udpAsk(port: number, message: Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no UDP reply'));
    }, timeoutMs);
    socket.on('message', (reply: Buffer) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(message, port, HOST);
  });
}

/** Sends all messages at once on one TCP connection; resolves with the replies as they came. */
function tcpAsk(port: number, messages: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    const socket = connect({ host: HOST, port });
    const read = frameReader((reply) => {
      replies.push(Buffer.from(reply));
      if (replies.length === messages.length) {
        socket.end();
        resolve(replies);
      }
    });
    socket.on('data', read);
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.concat(messages.map(frame))));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${replies.length} of ${messages.length} TCP replies`));
    }, 5000).unref();
  });
}

function addresses(reply: Buffer): string[] {
  return Packet.parse(reply)
    .answers.map((answer) => answer.address ?? answer.domain ?? '')
    .filter((value) => value !== '');
}

function listenOn(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, HOST, () => resolve((server.address() as AddressInfo).port)));
}

describe('local DNS on loopback', () => {
  const shadowAsked: string[] = [];
  const tapped: Buffer[] = [];
  const dialed: string[] = [];
  const shadowConnections = new Set<Socket>();
  let shadow: TCPServer;
  let relay: Server;
  let upstream: UDPServer;
  let dns: LocalDnsHandle;
  let cached: LocalDnsHandle;
  let dialDown = false;

  beforeAll(async () => {
    shadow = new TCPServer((request, send) => {
      const question = request.questions[0]!;
      const name = question.name.toLowerCase();
      shadowAsked.push(name);
      const reply = Packet.createResponseFromRequest(request);
      if (name === 'echo.default.svc.cluster.local' || name === 'echo' || name === 'echo.default') {
        if (question.type === TYPE.A) reply.answers.push(record(question, { type: TYPE.A, address: '10.96.1.2' }));
      } else if (name === 'big.default.svc.cluster.local') {
        for (let i = 0; i < 60; i++) reply.answers.push(record(question, { type: TYPE.A, address: `10.244.0.${i + 1}` }));
      } else if (name === '7.7.96.10.in-addr.arpa' && question.type === TYPE.PTR) {
        reply.answers.push(record(question, { type: TYPE.PTR, domain: 'echo.default.svc.cluster.local' }));
      } else if (name === 'slow.default.svc.cluster.local') {
        setTimeout(() => void send(reply), 300);
        return;
      } else {
        reply.header.rcode = RCODE.NXDOMAIN;
      }
      void send(reply);
    });
    shadow.on('connection', (socket: Socket) => {
      shadowConnections.add(socket);
      socket.on('close', () => shadowConnections.delete(socket));
    });
    const shadowPort = await listenOn(shadow);
    // Between the dialer and the shadow: records the bytes that go to the shadow.
    relay = new Server((client) => {
      const server = connect({ host: HOST, port: shadowPort });
      client.on('data', (chunk: Buffer) => tapped.push(Buffer.from(chunk)));
      client.pipe(server).pipe(client);
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    const relayPort = await listenOn(relay);

    upstream = new UDPServer((request, send) => {
      const question = request.questions[0]!;
      const reply = Packet.createResponseFromRequest(request);
      if (question.name === 'www.example.test' && question.type === TYPE.A) {
        reply.answers.push(record(question, { type: TYPE.A, address: '192.0.2.10' }));
      } else if (question.name === '1.0.0.127.in-addr.arpa') {
        reply.answers.push(record(question, { type: TYPE.PTR, domain: 'localhost' }));
      } else {
        reply.header.rcode = RCODE.NXDOMAIN;
      }
      void send(reply);
    });
    await upstream.listen(0, HOST);
    const upstreamPort = upstream.address().port;

    const dial: Dialer = async (host, port) => {
      dialed.push(`${host}:${port}`);
      if (dialDown) throw new Error('tunnel down');
      const socket = connect({ host: HOST, port: relayPort });
      await once(socket, 'connect');
      return socket;
    };
    const common = {
      host: HOST,
      port: 0,
      dial,
      upstreams: [{ address: HOST, port: upstreamPort }],
      isClusterName: (name: string) => ['echo', 'big', 'slow'].includes(name.split('.')[0] ?? ''),
      clusterTimeoutMs: 2000,
      log: silent,
    };
    // These tests watch each query reach the shadow; the cache has tests of its own below.
    dns = await startLocalDns({ ...common, reverseCidrs: ['10.96.0.0/16', '10.244.0.0/24'], cache: false });
    cached = await startLocalDns(common);
  });

  afterAll(async () => {
    await dns?.close();
    await cached?.close();
    relay?.close();
    shadow?.close();
    for (const socket of shadowConnections) socket.destroy();
    upstream?.close();
  });

  it('answers a cluster name from the shadow under the client query id, over UDP', async () => {
    const reply = await udpAsk(dns.port, query(0x1234, 'echo.default.svc.cluster.local'));
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    const packet = Packet.parse(reply);
    expect(packet.header.qr).toBe(1);
    expect(packet.header.rcode).toBe(RCODE.NOERROR);
    expect(addresses(reply)).toEqual(['10.96.1.2']);
    expect(dialed[0]).toBe('127.0.0.1:5353');
  });

  it('answers short names the predicate recognises from the shadow, other names from upstream', async () => {
    expect(addresses(await udpAsk(dns.port, query(1, 'echo')))).toEqual(['10.96.1.2']);
    expect(addresses(await udpAsk(dns.port, query(2, 'Echo.Default')))).toEqual(['10.96.1.2']);
    const external = await udpAsk(dns.port, query(0xbeef, 'www.example.test'));
    expect(external.readUInt16BE(0)).toBe(0xbeef);
    expect(addresses(external)).toEqual(['192.0.2.10']);
    expect(shadowAsked).not.toContain('www.example.test');
    const missing = Packet.parse(await udpAsk(dns.port, query(3, 'nope.example.test')));
    expect(missing.header.rcode).toBe(RCODE.NXDOMAIN);
  });

  it('sends reverse lookups of cluster addresses to the shadow, others upstream', async () => {
    expect(addresses(await udpAsk(dns.port, query(4, '7.7.96.10.in-addr.arpa', TYPE.PTR)))).toEqual([
      'echo.default.svc.cluster.local',
    ]);
    expect(addresses(await udpAsk(dns.port, query(5, '1.0.0.127.in-addr.arpa', TYPE.PTR)))).toEqual(['localhost']);
    expect(shadowAsked).toContain('7.7.96.10.in-addr.arpa');
    expect(shadowAsked).not.toContain('1.0.0.127.in-addr.arpa');
  });

  it('forwards the query bytes unchanged but for the id (an EDNS cookie survives)', async () => {
    tapped.length = 0;
    const sent = query(0x4242, 'echo.default.svc.cluster.local', TYPE.A, { cookie: true });
    const reply = await udpAsk(dns.port, sent);
    expect(reply.readUInt16BE(0)).toBe(0x4242);
    const forwarded: Buffer[] = [];
    frameReader((message) => forwarded.push(Buffer.from(message)))(Buffer.concat(tapped));
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]!.subarray(2).equals(sent.subarray(2))).toBe(true);
  });

  it('pipelines many queries over one shadow stream, each reply under its own client id', async () => {
    const before = dns.stats().shadowStreams;
    const ids = Array.from({ length: 100 }, (_, i) => 0x7000 + i);
    const replies = await Promise.all(ids.map((id) => udpAsk(dns.port, query(id, 'echo.default.svc.cluster.local'))));
    expect(replies.map((reply) => reply.readUInt16BE(0))).toEqual(ids);
    for (const reply of replies) expect(addresses(reply)).toEqual(['10.96.1.2']);
    expect(dns.stats().shadowStreams).toBe(before);
    expect(shadowConnections.size).toBe(1);
  });

  it('answers pipelined TCP queries out of order, cluster and upstream alike', async () => {
    const replies = await tcpAsk(dns.port, [
      query(10, 'slow.default.svc.cluster.local'),
      query(11, 'echo.default.svc.cluster.local'),
      query(12, 'www.example.test'),
    ]);
    const byId = new Map(replies.map((reply) => [reply.readUInt16BE(0), reply]));
    expect(addresses(byId.get(11)!)).toEqual(['10.96.1.2']);
    expect(addresses(byId.get(12)!)).toEqual(['192.0.2.10']);
    expect(Packet.parse(byId.get(10)!).header.rcode).toBe(RCODE.NOERROR);
    expect(replies[replies.length - 1]!.readUInt16BE(0)).toBe(10); // the slow one came last
  });

  it('truncates a reply too big for UDP (TC), and gives it whole over TCP', async () => {
    const udp = Packet.parse(await udpAsk(dns.port, query(20, 'big.default.svc.cluster.local')));
    expect(udp.header.tc).toBe(1);
    expect(udp.answers).toHaveLength(0);
    expect(udp.questions[0]?.name).toBe('big.default.svc.cluster.local');
    const [tcp] = await tcpAsk(dns.port, [query(21, 'big.default.svc.cluster.local')]);
    expect(addresses(tcp!)).toHaveLength(60);
  });

  it('reopens the shadow stream after it breaks', async () => {
    const before = dns.stats().shadowStreams;
    for (const socket of shadowConnections) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(addresses(await udpAsk(dns.port, query(30, 'echo.default.svc.cluster.local')))).toEqual(['10.96.1.2']);
    expect(dns.stats().shadowStreams).toBe(before + 1);
  });

  it('answers SERVFAIL under the client id when the tunnel is down, and keeps serving upstream names', async () => {
    for (const socket of shadowConnections) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    dialDown = true;
    try {
      const reply = await udpAsk(dns.port, query(0x5151, 'echo.default.svc.cluster.local'));
      expect(reply.readUInt16BE(0)).toBe(0x5151);
      expect(Packet.parse(reply).header.rcode).toBe(RCODE.SERVFAIL);
      expect(Packet.parse(reply).questions[0]?.name).toBe('echo.default.svc.cluster.local');
      expect(addresses(await udpAsk(dns.port, query(41, 'www.example.test')))).toEqual(['192.0.2.10']);
    } finally {
      dialDown = false;
    }
    expect(addresses(await udpAsk(dns.port, query(42, 'echo.default.svc.cluster.local')))).toEqual(['10.96.1.2']);
  });

  it('with the cache: a cluster name asked again is answered on the laptop, until the cache is dropped', async () => {
    const count = (): number => shadowAsked.filter((n) => n === 'echo.default.svc.cluster.local').length;
    const before = count();
    const first = await udpAsk(cached.port, query(0x0101, 'echo.default.svc.cluster.local'));
    expect(addresses(first)).toEqual(['10.96.1.2']);
    expect(count()).toBe(before + 1);
    const t0 = performance.now();
    const again = await udpAsk(cached.port, query(0x0202, 'ECHO.default.svc.cluster.local'));
    const ms = performance.now() - t0;
    expect(again.readUInt16BE(0)).toBe(0x0202);
    expect(Packet.parse(again).questions[0]?.name).toBe('ECHO.default.svc.cluster.local');
    expect(addresses(again)).toEqual(['10.96.1.2']);
    expect(count()).toBe(before + 1);
    expect(ms).toBeLessThan(50); // loopback; the bench measures the real figure
    // NXDOMAIN without an SOA (this fake shadow gives none) is asked each time.
    await udpAsk(cached.port, query(0x0303, 'gone.default.svc.cluster.local'));
    await udpAsk(cached.port, query(0x0304, 'gone.default.svc.cluster.local'));
    expect(shadowAsked.filter((n) => n === 'gone.default.svc.cluster.local')).toHaveLength(2);
    cached.flushCache();
    await udpAsk(cached.port, query(0x0404, 'echo.default.svc.cluster.local'));
    expect(count()).toBe(before + 2);
    expect(cached.stats().cache).toMatchObject({ hits: 1, flushes: 1 });
  });

  it('with the cache: concurrent askers of one slow name share one query to the shadow', async () => {
    const before = shadowAsked.filter((n) => n === 'slow.default.svc.cluster.local').length;
    const ids = Array.from({ length: 30 }, (_, i) => 0x6000 + i);
    const replies = await Promise.all(ids.map((id) => udpAsk(cached.port, query(id, 'slow.default.svc.cluster.local'))));
    expect(replies.map((reply) => reply.readUInt16BE(0))).toEqual(ids);
    expect(shadowAsked.filter((n) => n === 'slow.default.svc.cluster.local').length).toBe(before + 1);
    expect(cached.stats().cache?.coalesced).toBe(29);
  });
});

// ---------------------------------------------------------------------------------------------

const HELPER = fileURLToPath(new URL('./transparent-helper.ts', import.meta.url));
const isRoot = process.getuid?.() === 0;

function haveTools(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('getent', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!isRoot || !haveTools())('local DNS wired into a private namespace resolv.conf', () => {
  const ns = `kt-tt-${randomBytes(4).toString('hex')}`;
  const etcDir = `/etc/netns/${ns}`;
  const resolvConf = `${etcDir}/resolv.conf`;
  // Odd on purpose: a non-UTF-8 byte, CRLF, no final newline. It must come back byte for byte.
  const original = Buffer.from(
    '# the laptop\'s resolv.conf, caf\xe9\r\nsearch example.test\noptions timeout:2 attempts:1\nnameserver 127.0.0.2\n# end',
    'latin1',
  );
  let result: Record<string, unknown>;
  let afterBytes: Buffer;

  beforeAll(async () => {
    mkdirSync(etcDir, { recursive: true });
    writeFileSync(resolvConf, original);
    execFileSync('ip', ['netns', 'add', ns]);
    result = await new Promise((resolve, reject) => {
      execFile(
        'ip',
        ['netns', 'exec', ns, process.execPath, HELPER, 'dns'],
        { encoding: 'utf8', timeout: 55_000 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`helper failed: ${err.message}\n${stdout}\n${stderr}`));
          else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
        },
      );
    });
    afterBytes = readFileSync(resolvConf);
  }, 60_000);

  afterAll(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } finally {
      rmSync(etcDir, { recursive: true, force: true });
    }
  });

  it('resolves cluster names through the shadow and the rest through the original nameserver', () => {
    expect(result.upstreams).toEqual([{ address: '127.0.0.2', port: 53 }]);
    expect(result.results).toEqual({
      fqdn: '10.96.1.2',
      namespaced: '10.96.1.2',
      short: '10.96.1.2',
      external: '192.0.2.10',
      missing: null,
    });
    expect((result.stats as { shadowStreams: number }).shadowStreams).toBe(1);
  });

  it('kept the original copy in the state directory and restored the bind-mounted file byte for byte', () => {
    expect(String(result.backupPath)).toContain('.kt-ttdns-session.orig');
    expect(result.restored).toBe(true);
    expect(afterBytes.equals(original)).toBe(true);
    expect(result.afterRestore).toBeNull();
  });
});
