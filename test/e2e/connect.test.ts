// kubectl kt-connect end to end, in each of its three modes, run from the laptop namespace as a
// user runs it, against a namespace that enforces the `restricted` Pod Security level, with a
// kubeconfig bound only to the documented namespace Role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, runInLaptop } from './cluster.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { laptopState } from './laptop-state.ts';
import { bindRoleIn, restrictedKubeconfig } from './rbac.ts';

interface PodList { items: { status: { podIP: string } }[] }
type Mode = 'socks' | 'transparent' | 'hosts';

const BASE_PORT: Record<Mode, number> = { socks: 2301, transparent: 2311, hosts: 2321 };

function ktObjects(ns: string): string {
  return kubectl(['get', 'pods,secrets', '-n', ns, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
}

describe.each<Mode>(['socks', 'transparent', 'hosts'])('kt-connect --mode %s', (mode) => {
  const port = BASE_PORT[mode];
  const ns = createNamespace(`kt-${mode}`, {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  const other = createNamespace(`kt-${mode}-b`);
  let kubeconfigArgs: string[] = [];
  let plugin: RunningPlugin;
  let podIp = '';
  let clusterIp = '';
  let before = '';

  /** Fetches url from the laptop the way a program would in this mode. */
  async function fetchFromLaptop(url: string, timeoutS = 5): Promise<{ code: number; pod?: string; path?: string; stderr: string }> {
    const isIp = /^http:\/\/\d/.test(url);
    const viaProxy = mode === 'socks' || (mode === 'hosts' && isIp);
    const args = ['-sS', '-m', String(timeoutS), ...(viaProxy ? ['--proxy', `socks5h://127.0.0.1:${port}`] : []), url];
    const r = await runInLaptop('curl', args);
    if (r.code !== 0) return { code: r.code, stderr: r.stderr };
    const j = JSON.parse(r.stdout) as { pod: string; path: string };
    return { code: 0, pod: j.pod, path: j.path, stderr: '' };
  }

  beforeAll(async () => {
    before = await laptopState();
    deployEcho('echo', ns.name);
    deployEcho('echo2', other.name);
    podIp = kubectlJson<PodList>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']).items[0]!.status.podIP;
    clusterIp = kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.clusterIP}']);
    // Every mode as a user bound only to the documented Role, in this namespace and the other one
    // (hosts and transparent mode are told the other namespace: such a user may not list namespaces).
    kubeconfigArgs = ['--kubeconfig', restrictedKubeconfig(ns.name)];
    bindRoleIn(other.name, ns.name);
    plugin = startPlugin('kt-connect', ['--mode', mode, '--proxy-port', String(port), ...kubeconfigArgs, ...(mode === 'socks' ? [] : ['--namespaces', other.name])]);
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
  });
  afterAll(async () => {
    if (plugin.proc.exitCode === null) await plugin.stop('SIGINT');
    ns.remove();
    other.remove();
  });

  it('prints a banner saying it is ready and suggesting a real command', () => {
    const out = plugin.output();
    expect(out).toContain(`connected to namespace "${ns.name}"`);
    expect(out).toMatch(/try: curl .*http:\/\/echo/);
    if (mode === 'socks') {
      expect(out).toContain(`ALL_PROXY=socks5h://127.0.0.1:${port}`);
      expect(out).toContain(`-DsocksProxyHost=127.0.0.1 -DsocksProxyPort=${port}`);
    }
  });

  it('reaches the echo Service by svc, svc.ns and FQDN, by ClusterIP and by pod IP', async () => {
    const urls = [
      'http://echo/a',
      `http://echo.${ns.name}/b`,
      `http://echo.${ns.name}.svc.${cluster.clusterDomain}/c`,
      `http://${clusterIp}/d`,
      `http://${podIp}:8080/e`,
    ];
    for (const url of urls) {
      const r = await fetchFromLaptop(url);
      expect(r.code, `${url}: ${r.stderr}`).toBe(0);
      expect(r.path).toBe(new URL(url).pathname);
    }
  });

  it('reaches a Service in another namespace as svc.otherns', async () => {
    const r = await fetchFromLaptop(`http://echo2.${other.name}/other`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.pod).toMatch(/^echo2-/);
  });

  it('carries raw TCP intact (1 MiB through the echo Service)', async () => {
    const size = String(1 << 20);
    const r = mode === 'socks'
      ? await runInLaptop(process.execPath, ['test/e2e/tools/socks-tcp.ts', String(port), `echo.${ns.name}`, '7070', size])
      : await runInLaptop(process.execPath, ['test/e2e/tools/tcp-echo.ts', `echo.${ns.name}`, '7070', size]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, bytes: 1 << 20 });
  });

  it('kt-connect status and kt-status report a healthy session', async () => {
    const st = await runPlugin('kt-connect', ['status', '-o', 'json']);
    expect(st.code, st.stdout + st.stderr).toBe(0);
    const list = JSON.parse(st.stdout) as { apiVersion: string; kind: string; items: { metadata: { namespace: string }; spec: { mode: string }; status: { state: string } }[] };
    expect(list).toMatchObject({ apiVersion: 'kt.dev/v1', kind: 'SessionList' });
    expect(list.items.some((s) => s.status.state === 'healthy' && s.metadata.namespace === ns.name && s.spec.mode === mode)).toBe(true);
    const ks = await runPlugin('kt-status', kubeconfigArgs);
    expect(ks.code, ks.stderr).toBe(0);
    expect(ks.stdout).toMatch(/connect\s+-\s+\S+\s+\S+\s+\S+ ago\s+healthy/);
  });

  it('recovers by itself when the port-forward is cut', async () => {
    const t0 = Date.now();
    const n = (plugin.output().match(/reconnected to the shadow/g) ?? []).length;
    // Kill the laptop's connections to the API server, the way a network drop would.
    const kill = await runInLaptop('ss', ['-K', 'dst', cluster.nodeIp, 'dport', '=', String(cluster.apiPort)]);
    expect(kill.code, kill.stderr).toBe(0);
    await eventually('a reconnect', 30_000, () => ((plugin.output().match(/reconnected to the shadow/g) ?? []).length > n ? true : undefined));
    await eventually('requests work again', 30_000, async () => ((await fetchFromLaptop('http://echo/after-cut', 3)).code === 0 ? true : undefined));
    const took = Date.now() - t0;
    console.log(`${mode}: requests worked again ${took} ms after the port-forward was cut`);
    expect(took).toBeLessThan(30_000);
  });

  it('recovers by itself when the shadow pod is deleted, recreating it', async () => {
    const shadow = kubectl(['get', 'pods', '-n', ns.name, '-l', 'kt.dev/role=shadow', '-o', 'jsonpath={.items[0].metadata.name}']);
    const n = (plugin.output().match(/reconnected to the shadow/g) ?? []).length;
    const t0 = Date.now();
    kubectl(['delete', 'pod', shadow, '-n', ns.name, '--wait=false']);
    await eventually('a reconnect', 60_000, () => ((plugin.output().match(/reconnected to the shadow/g) ?? []).length > n ? true : undefined));
    await eventually('requests work again', 30_000, async () => ((await fetchFromLaptop('http://echo/after-delete', 3)).code === 0 ? true : undefined));
    const took = Date.now() - t0;
    console.log(`${mode}: requests worked again ${took} ms after the shadow pod was deleted`);
    expect(took).toBeLessThan(45_000);
    expect(plugin.output()).toContain('is gone; recreating it');
  });

  it('Ctrl-C leaves no kt object in the cluster and the laptop exactly as before', async () => {
    const id = plugin.output().match(/session ([0-9a-f]{10})/)![1]!;
    const code = await plugin.stop('SIGINT');
    expect(code).toBe(0);
    expect(plugin.output()).toContain('nothing is left in the cluster');
    expect(ktObjects(ns.name)).toBe('');
    expect(await laptopState()).toBe(before);
    const st = await runPlugin('kt-connect', ['status', '-o', 'json']);
    expect(st.stdout).not.toContain(id);
  });

  it('after SIGKILL, kt-clean --dry-run lists and kt-clean restores everything', async () => {
    const p = startPlugin('kt-connect', ['--mode', mode, '--proxy-port', String(port + 1), ...kubeconfigArgs]);
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    const id = p.output().match(/session ([0-9a-f]{10})/)![1]!;
    await p.stop('SIGKILL');
    expect(ktObjects(ns.name)).toContain(`kt-connect-${id}`);
    if (mode !== 'socks') expect(await laptopState()).not.toBe(before);

    const dry = await runPlugin('kt-clean', ['--dry-run', ...kubeconfigArgs]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would delete pod/kt-connect-${id}`);
    expect(ktObjects(ns.name)).toContain(`kt-connect-${id}`);

    const clean = await runPlugin('kt-clean', kubeconfigArgs);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(`deleted pod/kt-connect-${id}`);
    await eventually('objects gone', 30_000, () => (ktObjects(ns.name) === '' ? true : undefined));
    expect(await laptopState()).toBe(before);
  });
});
