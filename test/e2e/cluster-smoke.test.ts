// The local cluster is real and the laptop is outside it: pods and ClusterIPs are unreachable
// from the laptop namespace, the API server (and so `kubectl port-forward`) is reachable, and
// cluster DNS works inside pods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, runInLaptop, spawnInLaptop } from './cluster.ts';

interface PodList { items: { metadata: { name: string }; status: { podIP: string } }[] }
interface Service { spec: { clusterIP: string } }

describe('local cluster smoke', () => {
  const ns = createNamespace('kt-smoke');
  let podName = '';
  let podIp = '';
  let clusterIp = '';

  beforeAll(() => {
    deployEcho('echo', ns.name);
    const pods = kubectlJson<PodList>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']);
    podName = pods.items[0]!.metadata.name;
    podIp = pods.items[0]!.status.podIP;
    clusterIp = kubectlJson<Service>(['get', 'service', 'echo', '-n', ns.name]).spec.clusterIP;
  });
  afterAll(() => ns.remove());

  it('the node is Ready and runs the version built here', () => {
    const out = kubectl(['get', 'nodes', '--no-headers']);
    expect(out).toMatch(/\bReady\b/);
    expect(out).toContain('v1.33.');
  });

  it('the laptop cannot reach a pod IP or a ClusterIP directly', async () => {
    for (const url of [`http://${podIp}:8080/`, `http://${clusterIp}/`]) {
      const r = await runInLaptop('curl', ['-sS', '-m', '3', '-o', '/dev/null', url]);
      expect(r.code, `curl ${url} from the laptop`).not.toBe(0);
    }
  });

  it('the laptop reaches the API server and kubectl port-forward reaches the pod', async () => {
    const version = await runInLaptop(cluster.kubectl, ['--kubeconfig', cluster.laptopKubeconfig, 'version', '-o', 'json']);
    expect(version.code, version.stderr).toBe(0);

    const pf = spawnInLaptop(cluster.kubectl, [
      '--kubeconfig', cluster.laptopKubeconfig, '-n', ns.name, 'port-forward', `pod/${podName}`, '18080:8080',
    ]);
    try {
      const body = await eventually('port-forward answers', 20_000, async () => {
        const r = await runInLaptop('curl', ['-sf', '-m', '3', 'http://127.0.0.1:18080/hello?x=1']);
        return r.code === 0 ? r.stdout : undefined;
      });
      const echo = JSON.parse(body) as { pod: string; path: string; method: string };
      expect(echo.pod).toBe(podName);
      expect(echo.path).toBe('/hello?x=1');
      expect(echo.method).toBe('GET');
    } finally {
      pf.kill('SIGTERM');
    }
  });

  it('a pod resolves kubernetes.default.svc.cluster.local and the echo Service by name', () => {
    const lookup = (name: string): string =>
      kubectl(['exec', '-n', ns.name, podName, '--', 'node', '-e',
        `require('dns').lookup(${JSON.stringify(name)}, { family: 4 }, (e, a) => { if (e) { console.error(e.message); process.exit(1); } console.log(a); })`,
      ]).trim();
    expect(lookup(`kubernetes.default.svc.${cluster.clusterDomain}`)).toBe(cluster.kubernetesServiceIp);
    expect(lookup('echo')).toBe(clusterIp);
    expect(lookup(`echo.${ns.name}`)).toBe(clusterIp);
    expect(lookup(`echo.${ns.name}.svc.${cluster.clusterDomain}`)).toBe(clusterIp);
  });

  it('a pod reaches the echo Service through its ClusterIP (kube-proxy works)', () => {
    const out = kubectl(['exec', '-n', ns.name, podName, '--', 'node', '-e',
      "fetch('http://echo/svc').then(r => r.json()).then(j => console.log(j.path)).catch(e => { console.error(String(e)); process.exit(1); })",
    ]);
    expect(out.trim()).toBe('/svc');
  });
});
