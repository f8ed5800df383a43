// kubectl kt-connect --mode socks, from the laptop namespace, with a kubeconfig bound only to the
// documented namespace Role, in a namespace that enforces the `restricted` Pod Security level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, runInLaptop } from './cluster.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

interface PodList { items: { metadata: { name: string; labels?: Record<string, string> }; status: { podIP: string } }[] }

const PROXY_PORT = 2301;

async function viaProxy(url: string, timeoutS = 5): Promise<{ code: number; pod?: string; path?: string; stderr: string }> {
  const r = await runInLaptop('curl', ['-sS', '-m', String(timeoutS), '--proxy', `socks5h://127.0.0.1:${PROXY_PORT}`, url]);
  if (r.code !== 0) return { code: r.code, stderr: r.stderr };
  const j = JSON.parse(r.stdout) as { pod: string; path: string };
  return { code: 0, pod: j.pod, path: j.path, stderr: '' };
}

function ktObjects(ns: string): string {
  return kubectl(['get', 'pods,secrets', '-n', ns, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
}

describe('kt-connect --mode socks', () => {
  const ns = createNamespace('kt-socks', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  const other = createNamespace('kt-socks-b');
  let kubeconfig = '';
  let plugin: RunningPlugin;
  let podIp = '';
  let clusterIp = '';

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    deployEcho('echo2', other.name);
    podIp = kubectlJson<PodList>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']).items[0]!.status.podIP;
    clusterIp = kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.clusterIP}']);
    kubeconfig = restrictedKubeconfig(ns.name);
    plugin = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', String(PROXY_PORT), '--kubeconfig', kubeconfig]);
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
  });
  afterAll(async () => {
    if (plugin.proc.exitCode === null) await plugin.stop('SIGINT');
    ns.remove();
    other.remove();
  });

  it('prints a banner with the proxy settings and a real command to try', () => {
    const out = plugin.output();
    expect(out).toContain(`ALL_PROXY=socks5h://127.0.0.1:${PROXY_PORT}`);
    expect(out).toContain(`-DsocksProxyHost=127.0.0.1 -DsocksProxyPort=${PROXY_PORT}`);
    expect(out).toContain(`try: curl --proxy socks5h://127.0.0.1:${PROXY_PORT} http://echo.${ns.name}/`);
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
      const r = await viaProxy(url);
      expect(r.code, `${url}: ${r.stderr}`).toBe(0);
      expect(r.path).toBe(new URL(url).pathname);
    }
  });

  it('reaches a Service in another namespace as svc.otherns', async () => {
    const r = await viaProxy(`http://echo2.${other.name}/other`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.pod).toMatch(/^echo2-/);
  });

  it('carries raw TCP intact (1 MiB through the echo Service)', async () => {
    const r = await runInLaptop(process.execPath, ['test/e2e/tools/socks-tcp.ts', String(PROXY_PORT), `echo.${ns.name}`, '7070', String(1 << 20)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, bytes: 1 << 20 });
  });

  it('HTTP CONNECT and plain HTTP proxying work too', async () => {
    const plain = await runInLaptop('curl', ['-sS', '-m', '5', '--proxy', `http://127.0.0.1:${PROXY_PORT}`, `http://echo.${ns.name}/plain`]);
    expect(plain.code, plain.stderr).toBe(0);
    const tunnel = await runInLaptop('curl', ['-sS', '-m', '5', '-p', '--proxy', `http://127.0.0.1:${PROXY_PORT}`, `http://echo.${ns.name}/connect`]);
    expect(tunnel.code, tunnel.stderr).toBe(0);
    expect(JSON.parse(tunnel.stdout).path).toBe('/connect');
  });

  it('kt-connect status and kt-status report a healthy session', async () => {
    const st = await runPlugin('kt-connect', ['status', '-o', 'json']);
    expect(st.code, st.stdout + st.stderr).toBe(0);
    const sessions = (JSON.parse(st.stdout) as { sessions: { state: string; namespace: string }[] }).sessions;
    expect(sessions.some((s) => s.state === 'healthy' && s.namespace === ns.name)).toBe(true);
    const ks = await runPlugin('kt-status', ['--kubeconfig', kubeconfig]);
    expect(ks.code, ks.stderr).toBe(0);
    expect(ks.stdout).toMatch(/connect\s+-\s+\S+\s+\S+\s+\S+ ago\s+healthy/);
  });

  it('recovers by itself when the port-forward is cut', async () => {
    const t0 = Date.now();
    // Kill the laptop's connections to the API server, the way a network drop would.
    const kill = await runInLaptop('ss', ['-K', 'dst', cluster.nodeIp, 'dport', '=', String(cluster.apiPort)]);
    expect(kill.code, kill.stderr).toBe(0);
    await plugin.waitFor(/reconnected to the shadow after/, 30_000);
    await eventually('requests work again', 30_000, async () => ((await viaProxy('http://echo/after-cut', 3)).code === 0 ? true : undefined));
    const took = Date.now() - t0;
    console.log(`socks: requests worked again ${took} ms after the port-forward was cut`);
    expect(took).toBeLessThan(30_000);
  });

  it('recovers by itself when the shadow pod is deleted, recreating it', async () => {
    const shadow = kubectl(['get', 'pods', '-n', ns.name, '-l', 'kt.dev/role=shadow', '-o', 'jsonpath={.items[0].metadata.name}']);
    const before = (plugin.output().match(/reconnected to the shadow/g) ?? []).length;
    const t0 = Date.now();
    kubectl(['delete', 'pod', shadow, '-n', ns.name, '--wait=false']);
    await eventually('a second reconnect', 60_000, () => ((plugin.output().match(/reconnected to the shadow/g) ?? []).length > before ? true : undefined));
    await eventually('requests work again', 30_000, async () => ((await viaProxy('http://echo/after-delete', 3)).code === 0 ? true : undefined));
    const took = Date.now() - t0;
    console.log(`socks: requests worked again ${took} ms after the shadow pod was deleted`);
    expect(took).toBeLessThan(45_000);
    expect(plugin.output()).toContain('is gone; recreating it');
  });

  it('Ctrl-C leaves no kt object in the cluster and no local record', async () => {
    const code = await plugin.stop('SIGINT');
    expect(code).toBe(0);
    expect(plugin.output()).toContain('nothing is left in the cluster');
    expect(ktObjects(ns.name)).toBe('');
    const st = await runPlugin('kt-connect', ['status']);
    expect(st.stdout).toContain('no kt-connect session is running');
  });

  it('after SIGKILL, kt-clean --dry-run lists and kt-clean removes what was left', async () => {
    const p = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', String(PROXY_PORT + 1), '--kubeconfig', kubeconfig]);
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    const id = p.output().match(/session ([0-9a-f]{10})/)![1]!;
    await p.stop('SIGKILL');
    expect(ktObjects(ns.name)).toContain(`kt-connect-${id}`);

    const dry = await runPlugin('kt-clean', ['--dry-run', '--kubeconfig', kubeconfig]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would delete pod/kt-connect-${id}`);
    expect(ktObjects(ns.name)).toContain(`kt-connect-${id}`);

    const clean = await runPlugin('kt-clean', ['--kubeconfig', kubeconfig]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(`deleted pod/kt-connect-${id}`);
    await eventually('objects gone', 30_000, () => (ktObjects(ns.name) === '' ? true : undefined));
  });
});
