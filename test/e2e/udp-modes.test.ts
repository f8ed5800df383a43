// UDP in transparent and hosts mode, end to end: from the laptop namespace, as a user bound only to
// the documented Role, a program exchanges 1,000 datagrams with the echo workload's UDP port (by
// ClusterIP and by name in transparent mode; by name and by the Service's loopback address in
// hosts mode), loss counted (0 expected), every reply coming from the address the program sent to;
// flows expire after --udp-idle-timeout and the next datagram opens a new one; Ctrl-C (and, in
// transparent mode, SIGKILL + kt-clean) leaves the laptop exactly as before, UDP rules included.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, eventually, kubectl, runInLaptop } from './cluster.ts';
import { laptopState } from './laptop-state.ts';
import { runPlugin, trackedPlugins, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

type Mode = 'transparent' | 'hosts';
const PROXY_PORT: Record<Mode, number> = { transparent: 2341, hosts: 2343 };
const IDLE_S = 2;

interface Exchange { target: string; sent: number; received: number; lost: number; duplicates: number; misdirected: number; from: string[]; ms: number; localPort: number }

async function exchange(host: string, count: number, extra: string[] = []): Promise<Exchange> {
  const r = await runInLaptop(process.execPath, ['test/e2e/tools/udp-exchange.ts', host, '7070', String(count), '16', ...extra], 120_000);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Exchange;
}

function ktObjects(ns: string): string {
  return kubectl(['get', 'pods,secrets', '-n', ns, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
}

describe.each<Mode>(['transparent', 'hosts'])('kt-connect --mode %s carries UDP', (mode) => {
  const ns = createNamespace(`kt-udp-${mode.slice(0, 5)}`, {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  const plugins = trackedPlugins(1);
  let kubeconfigArgs: string[] = [];
  let plugin: RunningPlugin;
  let clusterIp = '';
  let before = '';

  const args = (port: number): string[] => ['--mode', mode, '--proxy-port', String(port), '--udp-idle-timeout', `${IDLE_S}s`, '--debug', ...kubeconfigArgs];

  beforeAll(async () => {
    before = await laptopState();
    deployEcho('echo', ns.name, 1, { udp: true });
    clusterIp = kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.clusterIP}']);
    kubeconfigArgs = ['--kubeconfig', restrictedKubeconfig(ns.name)];
    plugin = plugins.start('kt-connect', args(PROXY_PORT[mode]));
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
  });
  afterEach(() => plugins.stopStragglers());
  afterAll(async () => {
    if (plugin.proc.exitCode === null) await plugin.stop('SIGINT');
    ns.remove();
  });

  const targets = (): [string, string][] => mode === 'transparent'
    ? [['the ClusterIP', clusterIp], ['the name echo.<ns>', `echo.${ns.name}`]]
    : [['the name echo', 'echo'], ['the name echo.<ns>', `echo.${ns.name}`]];

  it('exchanges 1,000 datagrams with the echo Service, none lost, every reply from the address sent to', async () => {
    for (const [what, host] of targets()) {
      const r = await exchange(host, 1000);
      console.log(`${mode}, ${what}: ${r.received}/${r.sent} datagrams echoed, ${r.lost} lost, ${r.ms} ms, replies from ${r.from.join(', ')}`);
      expect(r.sent).toBe(1000);
      expect(r.lost, JSON.stringify(r)).toBe(0);
      expect(r.received).toBe(1000);
      expect(r.duplicates).toBe(0);
      expect(r.misdirected).toBe(0);
      expect(r.from).toEqual([r.target]);
      expect(r.target).toMatch(mode === 'transparent' ? new RegExp(`^${clusterIp.replaceAll('.', '\\.')}:7070$`) : /^127\.20\.\d+\.\d+:7070$/);
    }
  });

  it('serves a connected UDP socket, which accepts only replies from where it sent', async () => {
    const host = mode === 'transparent' ? clusterIp : 'echo';
    const r = await exchange(host, 200, ['--connected']);
    expect(r).toMatchObject({ sent: 200, received: 200, lost: 0 });
    expect(r.from).toEqual([r.target]);
  });

  it.runIf(mode === 'transparent')('keeps two cluster destinations of one socket apart (ClusterIP and pod IP, alternating)', async () => {
    const podIp = kubectl(['get', 'pods', '-n', ns.name, '-l', 'app=echo', '-o', 'jsonpath={.items[0].status.podIP}']);
    const r = await exchange(`${clusterIp},${podIp}`, 400);
    expect(r).toMatchObject({ sent: 400, received: 400, lost: 0, misdirected: 0 });
    expect(r.from).toEqual([`${clusterIp}:7070`, `${podIp}:7070`].sort());
  });

  it(`ends a flow after ${IDLE_S}s without datagrams, and the next datagram opens a new one`, async () => {
    const first = await exchange(`echo.${ns.name}`, 20);
    expect(first.lost).toBe(0);
    const closed = new RegExp(`flow [\\d.]+:${first.localPort} -> \\S+ closed \\(idle\\)`);
    const t0 = Date.now();
    await plugin.waitFor(closed, 15_000);
    const after = Date.now() - t0;
    console.log(`${mode}: the flow from port ${first.localPort} closed as idle ${after} ms after the exchange ended (--udp-idle-timeout ${IDLE_S}s)`);
    expect(after).toBeGreaterThan(IDLE_S * 1000 - 1000);
    const again = await exchange(`echo.${ns.name}`, 20);
    expect(again).toMatchObject({ received: 20, lost: 0 });
  });

  it('Ctrl-C leaves no kt object in the cluster and the laptop exactly as before', async () => {
    const code = await plugin.stop('SIGINT');
    expect(code).toBe(0);
    expect(ktObjects(ns.name)).toBe('');
    expect(await laptopState()).toBe(before);
  });

  it.runIf(mode === 'transparent')('after SIGKILL, kt-clean removes the UDP rules with the rest', async () => {
    const p = plugins.start('kt-connect', args(PROXY_PORT[mode] + 1));
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    const rules = (await runInLaptop('iptables-save', ['-t', 'nat'])).stdout;
    expect(rules).toMatch(/-A OUTPUT -p udp -m comment --comment "?kt-session=\S+"? -j KT-/);
    expect(rules).toMatch(/-A KT-\S+ -d \S+ -p udp -j REDIRECT --to-ports \d+/);
    expect((await exchange(clusterIp, 10)).lost).toBe(0);
    await p.stop('SIGKILL');
    expect(await laptopState()).not.toBe(before);
    const clean = await runPlugin('kt-clean', kubeconfigArgs);
    expect(clean.code, clean.stderr).toBe(0);
    await eventually('objects gone', 30_000, () => (ktObjects(ns.name) === '' ? true : undefined));
    expect(await laptopState()).toBe(before);
  });
});
