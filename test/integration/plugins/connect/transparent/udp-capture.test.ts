// Transparent mode's UDP capture for real, in a network namespace this test creates (the helper
// runs inside it): datagrams to the cluster ranges reach the relay, their original destinations
// come from conntrack, replies come back from those destinations (reverse NAT), IPv4 and IPv6;
// DNS's port 53 is left alone; close() leaves iptables and ip6tables as they were.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HELPER = fileURLToPath(new URL('./udp-helper.ts', import.meta.url));

function haveTools(): boolean {
  try {
    for (const t of ['iptables-save', 'ip6tables-save']) execFileSync(t, ['--version'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

interface Exchange { replies: string[]; from: string[] }
interface Result { ipv4: Exchange; ipv4Connected: Exchange; ipv6: Exchange; dns: Exchange; dnsReachedRelay: number; opened: string[]; udpRules: string[]; restored: boolean }

describe.skipIf(!haveTools())('transparent mode UDP capture in a private network namespace', () => {
  const ns = `kt-tu-${randomBytes(4).toString('hex')}`;
  let r: Result;

  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    r = await new Promise<Result>((resolve, reject) => {
      execFile('ip', ['netns', 'exec', ns, process.execPath, HELPER], { encoding: 'utf8', timeout: 50_000 }, (err, stdout, stderr) => {
        if (err) { reject(new Error(`helper failed: ${err.message}\n${stdout}\n${stderr}`)); return; }
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Result);
      });
    });
  }, 60_000);
  afterAll(() => { execFileSync('ip', ['netns', 'del', ns]); });

  it('relays IPv4 datagrams to where they were going; replies come from there', () => {
    expect(r.ipv4.replies).toHaveLength(100);
    expect(new Set(r.ipv4.replies.map((x) => x.split('|')[0]))).toEqual(new Set(['10.96.0.7:9000']));
    expect(r.ipv4.from).toEqual(['10.96.0.7:9000']);
    expect(r.ipv4Connected.replies).toHaveLength(20);
    expect(r.ipv4Connected.from).toEqual(['10.96.0.8:9001']);
  });

  it('does the same over IPv6 (ip6tables, a relay on ::1)', () => {
    expect(r.ipv6.replies).toHaveLength(100);
    expect(new Set(r.ipv6.replies.map((x) => x.split('|')[0]))).toEqual(new Set(['fd00:10:96::7:9000']));
    expect(r.ipv6.from).toEqual(['fd00:10:96::7:9000']);
  });

  it('leaves port 53 to the local DNS server: nothing reaches the relay', () => {
    expect(r.dnsReachedRelay).toBe(0);
    expect(r.dns.replies).toEqual([]);
    expect(r.opened).toEqual(['10.96.0.7:9000', '10.96.0.8:9001', 'fd00:10:96::7:9000']);
  });

  it('installs the UDP rules in kt\'s chain and removes every rule it added', () => {
    expect(r.udpRules.some((l) => /^-A OUTPUT -p udp -m comment --comment "?kt-session=udpcap0001"? -j KT-udpcap00$/.test(l))).toBe(true);
    expect(r.udpRules.some((l) => l.startsWith('-A KT-udpcap00 -p udp -m udp --dport 53 -j RETURN'))).toBe(true);
    expect(r.udpRules.some((l) => /^-A KT-udpcap00 -d fd00:10:96::\/112 -p udp -j REDIRECT --to-ports \d+$/.test(l))).toBe(true);
    expect(r.restored).toBe(true);
  });
});
