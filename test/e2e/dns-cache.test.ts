// Transparent mode's local DNS server answers a cluster name asked again on the laptop, without the
// tunnel, and forgets its answers when the tunnel reconnects to a recreated shadow pod. Its DNS
// listens on a port of its own, so the laptop's resolv.conf is left alone; --debug says where each
// answer came from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, eventually, kubectl, runInLaptop } from './cluster.ts';
import { startPlugin, type RunningPlugin } from './plugin.ts';

const DNS_PORT = 23955;

describe('kt-connect transparent mode: the laptop-side DNS cache', () => {
  const ns = createNamespace('kt-dnscache');
  let plugin: RunningPlugin;
  let name = '';

  const lookups = async (): Promise<{ coldMedianMs: number; cachedMedianMs: number; answered: number }> => {
    const r = await runInLaptop(process.execPath, ['bench/tools/dns-bench.ts', `127.0.0.1:${DNS_PORT}`, name]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { coldMedianMs: number; cachedMedianMs: number; answered: number };
  };
  /** Where each answer for `name` came from, per --debug line, in order. */
  const sources = (): string[] => [...plugin.output().matchAll(new RegExp(`local DNS: ${name.replaceAll('.', '\\.')} A over udp -> ([a-z, ]+),`, 'g'))].map((m) => m[1]!);

  beforeAll(async () => {
    kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
    kubectl(['create', 'service', 'clusterip', 'web', '-n', ns.name, '--tcp=80:80']);
    name = `web.${ns.name}.svc.${cluster.clusterDomain}`;
    plugin = startPlugin('kt-connect', ['--mode', 'transparent', '--dns-port', String(DNS_PORT), '--debug', '-n', ns.name]);
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
  });
  afterAll(async () => {
    if (plugin.proc.exitCode === null) await plugin.stop('SIGINT');
    ns.remove();
  });

  it('asks the cluster once, then answers on the laptop in under a millisecond', async () => {
    const r = await lookups(); // one cold lookup, then five more
    expect(r.answered).toBe(1);
    expect(r.cachedMedianMs).toBeLessThan(1);
    await eventually('six debug lines', 5_000, () => (sources().length >= 6 ? true : undefined));
    expect(sources()).toEqual(['cluster', 'cluster, cache', 'cluster, cache', 'cluster, cache', 'cluster, cache', 'cluster, cache']);
  });

  it('drops the cache when the tunnel reconnects to a recreated shadow pod', async () => {
    const shadow = kubectl(['get', 'pods', '-n', ns.name, '-l', 'kt.dev/role=shadow', '-o', 'jsonpath={.items[0].metadata.name}']);
    kubectl(['delete', 'pod', shadow, '-n', ns.name, '--wait=false']);
    await eventually('a reconnect', 90_000, () => (/reconnected to the shadow/.test(plugin.output()) ? true : undefined));
    expect(plugin.output()).toContain('local DNS: cache dropped');
    const before = sources().length;
    const r = await lookups();
    expect(r.answered).toBe(1);
    await eventually('six more debug lines', 5_000, () => (sources().length >= before + 6 ? true : undefined));
    expect(sources().slice(before, before + 2)).toEqual(['cluster', 'cluster, cache']);
  });
});
