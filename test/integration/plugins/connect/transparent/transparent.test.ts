// Transparent mode for real: iptables REDIRECT, conntrack, the listener, cleanup. Everything runs
// in a network namespace this test creates (the helper runs inside it), never in the machine's own.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HELPER = fileURLToPath(new URL('./transparent-helper.ts', import.meta.url));
const isRoot = process.getuid?.() === 0;

function haveTools(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('iptables-save', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs the helper inside `ns`; resolves with its JSON line. */
function runHelper(ns: string, mode: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, HELPER, mode],
      { encoding: 'utf8', timeout: 50_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        if (err) {
          reject(new Error(`helper ${mode} failed: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
          return;
        }
        try {
          resolve(JSON.parse(last) as Record<string, unknown>);
        } catch {
          reject(new Error(`helper ${mode} printed no result\nstdout: ${stdout}\nstderr: ${stderr}`));
        }
      },
    );
  });
}

/** Runs the helper's `mode` in a network namespace made for it before the tests and removed after them. */
function inPrivateNamespace(prefix: string, mode: string, got: (result: Record<string, unknown>) => void): void {
  const ns = `${prefix}-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    got(await runHelper(ns, mode));
  }, 60_000);
  afterAll(() => {
    execFileSync('ip', ['netns', 'del', ns]);
  });
}

describe.skipIf(!isRoot || !haveTools())('transparent mode in a private network namespace', () => {
  let result: Record<string, unknown>;
  inPrivateNamespace('kt-tt', 'transparent', (r) => { result = r; });

  it('captures the cluster CIDR, except the excluded addresses and loopback', () => {
    expect(result.capturedBefore).toBeNull();
    const captured = result.captured as Record<string, unknown>;
    expect(captured.service).toEqual({
      chain: 'KT-tt012345',
      sessionId: 'tt0123456789-live',
      cidr: '10.96.0.0/16',
      port: result.handlePort,
    });
    expect(captured.excluded).toBeUndefined();
    expect(captured.outside).toBeUndefined();
    expect(captured.loopback).toBeUndefined();
    expect(result.chain).toBe('KT-tt012345');
    const during = String(result.during);
    expect(during).toContain('-A OUTPUT -p tcp -m comment --comment "kt-session=tt0123456789-live" -j KT-tt012345');
    expect(during).toContain('-A KT-tt012345 -d 127.0.0.0/8 -j RETURN');
    expect(during).toContain('-A KT-tt012345 -d 10.96.9.9/32 -j RETURN');
    expect(during).toContain(`-A KT-tt012345 -d 10.96.0.0/16 -p tcp -j REDIRECT --to-ports ${String(result.handlePort)}`);
  });

  it('dials the original destination and pipes both ways, with half-close', () => {
    expect(result.hello).toEqual({ data: 'hello through the tunnel', error: null });
    expect(result.bigEchoLength).toBe(1 << 20);
    expect(result.bigEchoIntact).toBe(true);
    expect(result.parallelOk).toBe(true);
    const dialed = result.dialed as string[];
    expect(dialed[0]).toBe('10.96.7.7:80');
    expect(dialed).toContain('10.96.200.1:8080');
    for (let i = 0; i < 40; i++) expect(dialed).toContain(`10.96.3.${i + 1}:${1000 + i}`);
    expect(dialed).toHaveLength(1 + 1 + 40 + 1);
  });

  it('resets a connection whose dial fails, and one with no redirected destination', () => {
    expect(result.refused).toEqual({ data: '', error: 'ECONNRESET' });
    expect(result.dialed as string[]).toContain('10.96.7.8:81');
    // Connecting to the listener directly is not a redirected connection: reset, nothing dialed.
    expect(result.direct).toEqual({ data: '', error: 'ECONNRESET' });
  });

  it('finds original destinations in /proc/net/nf_conntrack quickly', () => {
    expect(result.lookupSource).toBe('proc');
    expect(result.lookupCount).toBe(1 + 1 + 40 + 1 + 1);
    expect(result.lookupMedianMs).toBeLessThan(50);
    console.info(`original-destination lookup: median ${Number(result.lookupMedianMs).toFixed(2)} ms over ${String(result.lookupCount)} connections`);
  });

  it('removes only dead sessions\' chains after a crash', () => {
    expect([...(result.chainsWithCrashed as string[])].sort()).toEqual([':KT-tt012345 - [0:0]', ':KT-ttdeadbe - [0:0]']);
    expect(result.removed).toEqual(['KT-ttdeadbe']);
    expect(result.afterCleanupMatchesLiveOnly).toBe(true);
  });

  it('leaves iptables exactly as it found it', () => {
    expect(result.after).toBe(result.before);
    expect(String(result.before)).toContain('-A OUTPUT -d 198.51.100.0/24 -p tcp -j RETURN');
  });
});

// IPv6 for real: ip6tables REDIRECT to [::1], the original destination from conntrack (which writes
// IPv6 addresses in full), beside the IPv4 chain of the same session, as for a dual-stack cluster.
describe.skipIf(!isRoot || !haveTools())('transparent mode for a dual-stack cluster, in a private network namespace', () => {
  let result: Record<string, unknown>;
  inPrivateNamespace('kt-t6', 'dual-stack', (r) => { result = r; });

  it('captures the IPv6 range with ip6tables, never loopback, link-local or the excluded address; the IPv4 chain keeps to IPv4', () => {
    const { v4: port4, v6: port6 } = result.ports as { v4: number; v6: number };
    const captured = result.captured as Record<string, unknown>;
    expect(captured.service6).toEqual({ chain: 'KT-ds012345', sessionId: 'ds0123456789-live', cidr: 'fd00:10:96::/112', port: port6 });
    expect(captured.service4).toEqual({ chain: 'KT-ds012345', sessionId: 'ds0123456789-live', cidr: '10.96.0.0/16', port: port4 });
    for (const k of ['excluded6', 'outside6', 'loopback6', 'linkLocal']) expect(captured[k], k).toBeUndefined();
    const during = result.during as { v4: string; v6: string };
    expect(during.v6).toContain('-A OUTPUT -p tcp -m comment --comment "kt-session=ds0123456789-live" -j KT-ds012345');
    expect(during.v6).toContain('-A KT-ds012345 -d ::1/128 -j RETURN');
    expect(during.v6).toContain('-A KT-ds012345 -d fe80::/10 -j RETURN');
    expect(during.v6).toContain('-A KT-ds012345 -d fd00:10:96::9/128 -j RETURN');
    expect(during.v6).toContain(`-A KT-ds012345 -d fd00:10:96::/112 -p tcp -j REDIRECT --to-ports ${port6}`);
    expect(during.v4).not.toContain('fd00');
  });

  it('dials the original IPv6 destination, as compressed text, and pipes both ways; IPv4 beside it too', () => {
    expect(result.hello6).toEqual({ data: 'hello over IPv6', error: null });
    expect(result.hello4).toEqual({ data: 'hello over IPv4', error: null });
    expect(result.dialed).toEqual(['[fd00:10:96::7]:80', '[10.96.7.7]:80']);
  });

  it('removes a dead session\'s ip6tables chain after a crash, and leaves both tables as it found them', () => {
    expect(result.removed).toEqual(['KT-dsdeadbe (ip6tables)']);
    expect(result.afterCleanupMatchesLiveOnly).toBe(true);
    expect(result.after).toEqual(result.before);
    expect((result.before as { v6: string }).v6).toContain('-A OUTPUT -d 2001:db8::/32 -p tcp -j RETURN');
  });
});
