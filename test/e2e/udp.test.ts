// UDP in socks mode, end to end: from the laptop namespace, as a user bound only to the documented
// Role, a SOCKS5 client (the `socks` package) associates with kt-connect's proxy and exchanges
// 1,000 datagrams with the echo workload's UDP port by Service name and by ClusterIP, loss counted
// (0 expected). The shadow's own flow counters (SHADOW_UDP.statsPath on its health port, fetched
// through the same proxy) show its flows closing when the association ends, and when a flow has
// been idle for --udp-idle-timeout while the association stays.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHADOW_PORT, SHADOW_UDP } from '../../contract/index.ts';
import { cluster, createNamespace, deployEcho, eventually, kubectl, runInLaptop, spawnInLaptop } from './cluster.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

const PROXY_PORT = 2351;
const IDLE_S = 3;

interface Exchange { sent: number; received: number; lost: number; duplicates: number; wrong: number; from: string[]; ms: number; relay: string }
interface ShadowUdp { open: number; opened: number; expired: number; failed: number; dropped: number; datagrams: number }

async function socksExchange(host: string, count: number, holdMs = 0): Promise<Exchange> {
  const r = await runInLaptop(process.execPath, ['test/e2e/tools/socks-udp.ts', String(PROXY_PORT), host, '7070', String(count), '16', String(holdMs)], 120_000);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Exchange;
}

describe('kt-connect --mode socks carries UDP (SOCKS5 UDP ASSOCIATE)', () => {
  const ns = createNamespace('kt-udp-socks', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  let plugin: RunningPlugin;
  let clusterIp = '';
  let shadowIp = '';
  let kubeconfig = '';

  /** The shadow's UDP counters, read through the proxy from the laptop. */
  async function shadowUdp(): Promise<ShadowUdp> {
    const r = await runInLaptop('curl', ['-sS', '-m', '5', '--proxy', `socks5h://127.0.0.1:${PROXY_PORT}`, `http://${shadowIp}:${SHADOW_PORT.health}${SHADOW_UDP.statsPath}`]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ShadowUdp;
  }

  beforeAll(async () => {
    deployEcho('echo', ns.name, 1, { udp: true });
    clusterIp = kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.clusterIP}']);
    kubeconfig = restrictedKubeconfig(ns.name);
    plugin = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', String(PROXY_PORT), '--udp-idle-timeout', `${IDLE_S}s`, '--debug', '--kubeconfig', kubeconfig]);
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    // kt is ready as soon as its SSH server answers, which can be before the kubelet has reported
    // the pod's IP to the API (it does so up to a second after the container started).
    shadowIp = await eventually('the shadow pod has an IP', 30_000, () => kubectl(['get', 'pods', '-n', ns.name, '-l', 'kt.dev/role=shadow', '-o', 'jsonpath={.items[0].status.podIP}']) || undefined);
  });
  afterAll(async () => {
    if (plugin.proc.exitCode === null) await plugin.stop('SIGINT');
    ns.remove();
  });

  it('exchanges 1,000 datagrams with the echo Service by name and by ClusterIP, none lost', async () => {
    expect(plugin.output()).toContain(`SOCKS5 (TCP and UDP) and HTTP proxy on 127.0.0.1:${PROXY_PORT}`);
    for (const host of ['echo', `echo.${ns.name}`, clusterIp]) {
      const r = await socksExchange(host, 1000);
      console.log(`socks, ${host}: ${r.received}/${r.sent} datagrams echoed, ${r.lost} lost, ${r.ms} ms, relay ${r.relay}, replies from ${r.from.join(', ')}`);
      expect(r).toMatchObject({ sent: 1000, received: 1000, lost: 0, duplicates: 0, wrong: 0 });
      expect(r.relay).toMatch(/^127\.0\.0\.1:\d+$/);
      // The reply header names the destination as the client wrote it.
      expect(r.from).toEqual([`${host}:7070`]);
    }
  });

  it('the shadow closes a flow as soon as its association ends', async () => {
    const before = await shadowUdp();
    const r = await socksExchange(`echo.${ns.name}`, 50);
    expect(r.lost).toBe(0);
    const t0 = Date.now();
    const after = await eventually('the shadow has no UDP flow open', 10_000, async () => {
      const s = await shadowUdp();
      return s.open === 0 ? s : undefined;
    });
    const ms = Date.now() - t0;
    console.log(`socks: association ended, the shadow had 0 flows open ${ms} ms later (${after.opened - before.opened} opened meanwhile)`);
    expect(after.opened).toBe(before.opened + 1);
    expect(ms).toBeLessThan(IDLE_S * 1000);
    expect(plugin.output()).toMatch(/proxy: UDP association from 127\.0\.0\.1:\d+ ended: 1 flows, 0 expired, 0 datagrams dropped/);
  });

  it(`expires a flow idle for ${IDLE_S}s while its association stays open`, async () => {
    const before = await shadowUdp();
    const closedIdle = (plugin.output().match(new RegExp(`UDP flow to ${clusterIp.replaceAll('.', '\\.')}:7070 closed \\(idle\\)`, 'g')) ?? []).length;
    // The association is held open 3 idle periods after the exchange.
    const running = socksExchange(clusterIp, 20, IDLE_S * 3000);
    const t0 = Date.now();
    await eventually('the laptop closes the idle flow', IDLE_S * 3000, () =>
      (plugin.output().match(new RegExp(`UDP flow to ${clusterIp.replaceAll('.', '\\.')}:7070 closed \\(idle\\)`, 'g')) ?? []).length > closedIdle ? true : undefined);
    const idleAfter = Date.now() - t0;
    const shadow = await eventually('the shadow closes it too', 5_000, async () => {
      const s = await shadowUdp();
      return s.open === 0 && s.opened === before.opened + 1 ? s : undefined;
    });
    console.log(`socks: the flow closed as idle ${idleAfter} ms after the exchange began (--udp-idle-timeout ${IDLE_S}s); shadow counters ${JSON.stringify(shadow)}`);
    expect(idleAfter).toBeGreaterThanOrEqual(IDLE_S * 1000 - 500);
    const r = await running;
    expect(r).toMatchObject({ received: 20, lost: 0 });
    expect(plugin.output()).toMatch(/UDP association from 127\.0\.0\.1:\d+ ended: 1 flows, 1 expired, 0 datagrams dropped/);
  });

  it('an association outlives a cut tunnel: after the reconnect, its next datagrams open new flows', async () => {
    const reconnects = (plugin.output().match(/reconnected to the shadow/g) ?? []).length;
    const tool = spawnInLaptop(process.execPath, ['test/e2e/tools/socks-udp.ts', String(PROXY_PORT), `echo.${ns.name}`, '7070', '200', '16', '8000', '2']);
    let out = '';
    tool.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => tool.on('close', resolve));
    try {
      await eventually('the first round', 30_000, () => (out.includes('"round":1') ? true : undefined));
      // Kill the laptop's connections to the API server, the way a network drop would.
      const kill = await runInLaptop('ss', ['-K', 'dst', cluster.nodeIp, 'dport', '=', String(cluster.apiPort)]);
      expect(kill.code, kill.stderr).toBe(0);
      await eventually('a reconnect', 30_000, () => ((plugin.output().match(/reconnected to the shadow/g) ?? []).length > reconnects ? true : undefined));
      expect(await exited).toBe(0);
    } finally {
      tool.kill();
    }
    const [first, second] = out.trim().split('\n').map((l) => JSON.parse(l) as Exchange & { round: number });
    console.log(`socks: the same association before and after a cut tunnel: ${first!.received}/200 then ${second!.received}/200 echoed`);
    expect(first).toMatchObject({ round: 1, received: 200, lost: 0 });
    expect(second).toMatchObject({ round: 2, received: 200, lost: 0 });
    expect(plugin.output()).toMatch(new RegExp(`UDP flow to echo\\.${ns.name}:7070 closed \\(remote\\)`));
  });

  const ktPods = (): string => kubectl(['get', 'pods', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();

  it('Ctrl-C ends the session cleanly with UDP flows used', async () => {
    expect(await plugin.stop('SIGINT')).toBe(0);
    expect(ktPods()).toBe('');
  });

  it.each([['2h', 'must be at most 1h, not 2h'], ['100ms', 'must be at least 1s, not "100ms"']])('--udp-idle-timeout %s: one sentence, exit 2, nothing created', async (value, says) => {
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '--udp-idle-timeout', value, '--kubeconfig', kubeconfig]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toContain(`--udp-idle-timeout ${says}`);
    expect(ktPods()).toBe('');
  });
});
