// Runs INSIDE a network namespace the integration tests create (`ip netns exec <ns> node
// transparent-helper.ts <mode>`), so that the iptables rules and the resolv.conf it changes are
// the namespace's own. Prints one JSON object (the observations) as its last stdout line; the
// tests make the assertions.
//
//   transparent: the iptables chain, REDIRECT, original destinations, piping, cleanup.
//   dns:         local DNS on 127.0.0.1:53 wired into the namespace's resolv.conf (bind-mounted
//                by `ip netns exec`, so written in place), queried through the C library.
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Server, Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Packet, TCPServer, UDPServer } from 'dns2';
import { startLocalDns } from '../../../../../plugins/connect/transparent/local-dns.ts';
import { wireResolver } from '../../../../../plugins/connect/transparent/resolver-config.ts';
import { createOriginalDstLookup } from '../../../../../plugins/connect/transparent/original-dst.ts';
import { cleanupStaleChains, routeCapturedBy, startTransparent } from '../../../../../plugins/connect/transparent/transparent.ts';
import type { Dialer } from '../../../../../plugins/tunnel/dialer.ts';

const log = {
  debug: () => {},
  info: (msg: string) => void process.stderr.write(`${msg}\n`),
  warn: (msg: string) => void process.stderr.write(`warning: ${msg}\n`),
};

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** iptables-save without its timestamp comments. */
function iptablesSave(): string {
  return sh('iptables-save', [])
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Sends `payload`, half-closes, collects what comes back until the peer closes. */
function roundTrip(host: string, port: number, payload: Buffer): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 10_000);
    socket.on('connect', () => socket.end(payload));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error: err.code ?? err.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks) });
    });
  });
}

async function transparentMode(): Promise<Record<string, unknown>> {
  sh('ip', ['link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'add', 'kttb0', 'type', 'bridge']);
  sh('ip', ['link', 'set', 'kttb0', 'up']);
  sh('ip', ['addr', 'add', '10.123.0.5/32', 'dev', 'kttb0']);
  sh('ip', ['route', 'add', '10.96.0.0/16', 'dev', 'kttb0', 'src', '10.123.0.5']);
  // Somebody else's rules, which must survive untouched.
  sh('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '198.51.100.0/24', '-p', 'tcp', '-j', 'RETURN']);
  sh('iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.123.0.0/24', '-j', 'MASQUERADE']);
  sh('iptables', ['-t', 'filter', '-A', 'OUTPUT', '-d', '203.0.113.0/24', '-j', 'ACCEPT']);
  const before = iptablesSave();

  // The "cluster": an echo server on loopback.
  const echo = new Server((socket) => socket.pipe(socket));
  const echoPort = await listen(echo);

  const dialed: string[] = [];
  const dial: Dialer = async (host, port) => {
    dialed.push(`${host}:${port}`);
    if (port === 81) throw new Error('connection refused in the cluster');
    const socket = connect({ host: '127.0.0.1', port: echoPort });
    await once(socket, 'connect');
    return socket;
  };

  // The default lookup, timed.
  const lookup = createOriginalDstLookup();
  const lookupMs: number[] = [];
  const timedLookup = async (socket: Socket) => {
    const started = performance.now();
    try {
      return await lookup(socket);
    } finally {
      lookupMs.push(performance.now() - started);
    }
  };

  const sessionId = 'tt0123456789-live';
  const capturedBefore = await routeCapturedBy('10.96.7.7');
  const handle = await startTransparent({
    cidrs: ['10.96.0.0/16'],
    exclude: ['10.96.9.9'],
    dial,
    sessionId,
    log,
    originalDst: timedLookup,
  });
  const during = iptablesSave();
  const captured = {
    service: await routeCapturedBy('10.96.7.7'),
    excluded: await routeCapturedBy('10.96.9.9'),
    outside: await routeCapturedBy('10.97.0.1'),
    loopback: await routeCapturedBy('127.0.0.1'),
  };

  const hello = await roundTrip('10.96.7.7', 80, Buffer.from('hello through the tunnel'));
  const big = randomBytes(1 << 20);
  const bigEcho = await roundTrip('10.96.200.1', 8080, big);
  // Many at once: one conntrack read serves several lookups.
  const parallel = await Promise.all(
    Array.from({ length: 40 }, (_, i) => roundTrip(`10.96.3.${i + 1}`, 1000 + i, Buffer.from(`conn ${i}`))),
  );
  const refused = await roundTrip('10.96.7.8', 81, Buffer.from('nobody home'));
  const direct = await roundTrip('127.0.0.1', handle.port, Buffer.from('not redirected'));

  // A second session that "crashed" (its chain stays), then the crash cleanup.
  const crashed = await startTransparent({ cidrs: ['10.96.0.0/16'], exclude: [], dial, sessionId: 'ttdeadbeef-crashed', log });
  const chainsWithCrashed = iptablesSave()
    .split('\n')
    .filter((line) => line.startsWith(':KT-'));
  const removed = await cleanupStaleChains((id) => id === sessionId);
  const afterCleanup = iptablesSave();
  await crashed.close(); // its chain is already gone: a no-op

  await handle.close();
  const after = iptablesSave();
  await handle.close(); // idempotent
  echo.close();

  const sorted = [...lookupMs].sort((a, b) => a - b);
  return {
    handlePort: handle.port,
    chain: handle.chain,
    capturedBefore: capturedBefore ?? null,
    captured,
    during,
    hello: { data: hello.data.toString(), error: hello.error ?? null },
    bigEchoIntact: bigEcho.data.equals(big),
    bigEchoLength: bigEcho.data.length,
    parallelOk: parallel.every((r, i) => r.data.toString() === `conn ${i}`),
    refused: { data: refused.data.toString(), error: refused.error ?? null },
    direct: { data: direct.data.toString(), error: direct.error ?? null },
    dialed,
    lookupSource: lookup.source() ?? null,
    lookupMedianMs: sorted[Math.floor(sorted.length / 2)] ?? null,
    lookupCount: sorted.length,
    chainsWithCrashed,
    removed,
    afterCleanupMatchesLiveOnly: afterCleanup === during,
    before,
    after,
  };
}

/** ip6tables-save without its timestamp comments. */
function ip6tablesSave(): string {
  return sh('ip6tables-save', ['-t', 'nat']).split('\n').filter((line) => !line.startsWith('#')).join('\n');
}

/** A dual-stack cluster: the same session captures 10.96.0.0/16 with iptables and fd00:10:96::/112 with ip6tables. */
async function dualStackMode(): Promise<Record<string, unknown>> {
  sh('ip', ['link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'add', 'kttb0', 'type', 'bridge']);
  sh('ip', ['link', 'set', 'kttb0', 'up']);
  sh('ip', ['addr', 'add', '10.123.0.5/32', 'dev', 'kttb0']);
  sh('ip', ['addr', 'add', 'fd00:123::5/128', 'dev', 'kttb0', 'nodad']);
  sh('ip', ['route', 'add', '10.96.0.0/16', 'dev', 'kttb0', 'src', '10.123.0.5']);
  sh('ip', ['-6', 'route', 'add', 'fd00:10:96::/112', 'dev', 'kttb0', 'src', 'fd00:123::5']);
  sh('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '198.51.100.0/24', '-p', 'tcp', '-j', 'RETURN']);
  sh('ip6tables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '2001:db8::/32', '-p', 'tcp', '-j', 'RETURN']);
  const before = { v4: iptablesSave(), v6: ip6tablesSave() };
  const echo = new Server((socket) => socket.pipe(socket));
  const echoPort = await listen(echo);
  const dialed: string[] = [];
  const dial: Dialer = async (host, port) => {
    dialed.push(`[${host}]:${port}`);
    const socket = connect({ host: '127.0.0.1', port: echoPort });
    await once(socket, 'connect');
    return socket;
  };
  const sessionId = 'ds0123456789-live';
  const v4 = await startTransparent({ cidrs: ['10.96.0.0/16', 'fd00:10:96::/112'], exclude: ['10.96.9.9', 'fd00:10:96::9'], dial, sessionId, log });
  const v6 = await startTransparent({ family: 6, cidrs: ['fd00:10:96::/112'], exclude: ['10.96.9.9', 'fd00:10:96::9'], dial, sessionId, log });
  const during = { v4: iptablesSave(), v6: ip6tablesSave() };
  const captured = {
    service6: await routeCapturedBy('fd00:10:96::7'),
    excluded6: await routeCapturedBy('fd00:10:96::9'),
    outside6: await routeCapturedBy('fd00:10:97::1'),
    loopback6: await routeCapturedBy('::1'),
    linkLocal: await routeCapturedBy('fe80::1'),
    service4: await routeCapturedBy('10.96.7.7'),
  };
  const hello6 = await roundTrip('fd00:10:96::7', 80, Buffer.from('hello over IPv6'));
  const hello4 = await roundTrip('10.96.7.7', 80, Buffer.from('hello over IPv4'));
  // A crashed session's chains in both tables, then the crash cleanup.
  const crashed6 = await startTransparent({ family: 6, cidrs: ['fd00:10:96::/112'], exclude: [], dial, sessionId: 'dsdeadbeef-crashed', log });
  const removed = await cleanupStaleChains((id) => id === sessionId);
  const afterCleanup = { v4: iptablesSave(), v6: ip6tablesSave() };
  await crashed6.close();
  await v6.close();
  await v4.close();
  const after = { v4: iptablesSave(), v6: ip6tablesSave() };
  echo.close();
  return {
    ports: { v4: v4.port, v6: v6.port },
    during,
    captured,
    hello6: { data: hello6.data.toString(), error: hello6.error ?? null },
    hello4: { data: hello4.data.toString(), error: hello4.error ?? null },
    dialed,
    removed,
    afterCleanupMatchesLiveOnly: afterCleanup.v4 === during.v4 && afterCleanup.v6 === during.v6,
    before,
    after,
  };
}

// ---------------------------------------------------------------------------------------------

type Question = Packet['questions'][number];
type Resource = Packet['answers'][number];

function aRecord(question: Question, address: string): Resource {
  return Packet.createResourceFromQuestion(question, { type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address });
}

function getent(name: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('getent', ['ahostsv4', name], { encoding: 'utf8', timeout: 20_000 }, (err, stdout) => {
      resolve(err ? null : (stdout.split(/\s+/)[0] ?? null));
    });
  });
}

async function dnsMode(): Promise<Record<string, unknown>> {
  sh('ip', ['link', 'set', 'lo', 'up']);
  // getaddrinfo (AI_ADDRCONFIG) returns no IPv4 results on a machine with only loopback addresses.
  sh('ip', ['link', 'add', 'kttb0', 'type', 'bridge']);
  sh('ip', ['link', 'set', 'kttb0', 'up']);
  sh('ip', ['addr', 'add', '10.123.0.5/32', 'dev', 'kttb0']);
  const clusterNames: Record<string, string> = {
    'echo.default.svc.cluster.local': '10.96.1.2',
    'echo.default': '10.96.1.2',
    echo: '10.96.1.2',
  };
  // The shadow's DNS server (TCP), reached by the fake dialer.
  const shadowAsked: string[] = [];
  const shadow = new TCPServer((request, send) => {
    const question = request.questions[0]!;
    shadowAsked.push(question.name);
    const reply = Packet.createResponseFromRequest(request);
    const address = clusterNames[question.name.toLowerCase()];
    if (address === undefined) reply.header.rcode = Packet.RCODE.NXDOMAIN;
    else if (question.type === Packet.TYPE.A) reply.answers.push(aRecord(question, address));
    void send(reply);
  });
  const shadowPort = await listen(shadow);
  // The laptop's original nameserver, on 127.0.0.2:53 (resolv.conf has no ports).
  const upstream = new UDPServer((request, send) => {
    const question = request.questions[0]!;
    const reply = Packet.createResponseFromRequest(request);
    if (question.name === 'www.example.test' && question.type === Packet.TYPE.A) reply.answers.push(aRecord(question, '192.0.2.10'));
    else if (question.name !== 'www.example.test') reply.header.rcode = Packet.RCODE.NXDOMAIN;
    void send(reply);
  });
  await upstream.listen(53, '127.0.0.2');

  const dial: Dialer = async (_host, _port) => {
    const socket = connect({ host: '127.0.0.1', port: shadowPort });
    await once(socket, 'connect');
    return socket;
  };
  const stateDir = mkdtempSync(join(tmpdir(), 'kt-tt-state-'));
  try {
    const wired = await wireResolver({
      sessionId: 'ttdns-session',
      nameserver: '127.0.0.1',
      stateDir,
      preferStateDir: true, // keep the copy out of the machine's /etc
    });
    const dns = await startLocalDns({
      host: '127.0.0.1',
      port: 53,
      dial,
      upstreams: wired.upstreams,
      isClusterName: (name) => (name.split('.')[0] ?? '') in { echo: 1 },
      reverseCidrs: ['10.96.0.0/16'],
      log,
    });
    const results = {
      fqdn: await getent('echo.default.svc.cluster.local'),
      namespaced: await getent('echo.default'),
      short: await getent('echo'),
      external: await getent('www.example.test'),
      missing: await getent('nothing.example.test'),
    };
    const stats = dns.stats();
    const restored = await wired.restore();
    await dns.close();
    return {
      upstreams: wired.upstreams,
      backupPath: wired.backupPath ?? null,
      results,
      stats,
      shadowAsked,
      restored,
      afterRestore: await getent('echo.default.svc.cluster.local'),
    };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
    shadow.close();
    upstream.close();
  }
}

const mode = process.argv[2];
const result = mode === 'transparent' ? await transparentMode() : mode === 'dns' ? await dnsMode() : mode === 'dual-stack' ? await dualStackMode() : undefined;
if (result === undefined) {
  process.stderr.write('usage: transparent-helper.ts transparent|dns\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
