// Runs INSIDE a network namespace udp-capture.test.ts creates: transparent mode's UDP capture for
// real (iptables and ip6tables REDIRECT, conntrack, the relay socket, cleanup) with fake flows
// that echo what they are sent, prefixed with where it was going. Prints one JSON line.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { startTransparent } from '../../../../../plugins/connect/transparent/transparent.ts';
import { fakeFlows, noTunnel } from '../udp-fakes.ts';

const log = { debug: () => {}, info: () => {}, warn: (m: string) => void process.stderr.write(`warning: ${m}\n`) };
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
// As test/e2e/laptop-state.ts compares them: a table with no rules is the same as no table (one
// cannot be deleted once something created it), and counters do not count.
const saves = (): string => ['iptables-save', 'ip6tables-save']
  .map((c) => sh(c, []).replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '').split(/(?=^\*)/m).filter((t) => /^-[AN] /m.test(t)).join(''))
  .join('\n----\n');

/** Sends n datagrams to host:port and collects the replies with their senders (1 s after the last). */
async function exchange(type: 'udp4' | 'udp6', host: string, port: number, n: number, connected = false): Promise<{ replies: string[]; from: string[] }> {
  const s: Socket = createSocket(type);
  s.bind(0);
  await once(s, 'listening');
  if (connected) await new Promise<void>((r) => s.connect(port, host, () => r()));
  const replies: string[] = [];
  const from = new Set<string>();
  s.on('message', (m, r) => { replies.push(m.toString()); from.add(`${r.address}:${r.port}`); });
  s.on('error', () => {}); // ICMP port unreachable on a connected socket: counted as no reply
  for (let i = 0; i < n; i++) {
    if (connected) s.send(`d${i}`);
    else s.send(`d${i}`, port, host);
    if (i % 16 === 15) await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 1000));
  s.close();
  return { replies, from: [...from] };
}

sh('ip', ['link', 'set', 'lo', 'up']);
sh('ip', ['route', 'add', '10.96.0.0/16', 'dev', 'lo']);
sh('ip', ['-6', 'route', 'add', 'fd00:10:96::/112', 'dev', 'lo']);
// Somebody else's rule, which must survive untouched.
sh('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '198.51.100.0/24', '-p', 'udp', '-j', 'RETURN']);
const before = saves();

const flows = fakeFlows();
const udp = { ports: 'all' as const, tunnel: noTunnel, open: flows.open };
const v4 = await startTransparent({ cidrs: ['10.96.0.0/16'], exclude: [], dial: () => Promise.reject(new Error('no TCP here')), sessionId: 'udpcap0001', log, udp });
const v6 = await startTransparent({ family: 6, cidrs: ['fd00:10:96::/112'], exclude: [], dial: () => Promise.reject(new Error('no TCP here')), sessionId: 'udpcap0001', log, udp });
const during = saves();

const ipv4 = await exchange('udp4', '10.96.0.7', 9000, 100);
const ipv4Connected = await exchange('udp4', '10.96.0.8', 9001, 20, true);
const ipv6 = await exchange('udp6', 'fd00:10:96::7', 9000, 100);
const receivedBeforeDns = v4.udp!.stats().received;
const dns = await exchange('udp4', '10.96.0.10', 53, 3);
const dnsReachedRelay = v4.udp!.stats().received - receivedBeforeDns;

await v6.close();
await v4.close();
const after = saves();
console.log(JSON.stringify({
  ipv4, ipv4Connected, ipv6, dns, dnsReachedRelay, opened: flows.opened.sort(),
  udpRules: during.split('\n').filter((l) => l.includes('-p udp') && l.includes('KT-')),
  restored: after === before,
}));
