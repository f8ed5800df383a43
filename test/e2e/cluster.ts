// What end-to-end tests need to know about the local cluster and the laptop namespace, read from
// the cluster scripts themselves so there is one source of truth.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const shellVars = (file: string, names: string[]): Record<string, string> => {
  const script = `. ${file}; ${names.map((n) => `printf '%s\\n' "$${n}"`).join('; ')}`;
  const out = execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\n');
  return Object.fromEntries(names.map((n, i) => [n, out[i] ?? '']));
};

const v = shellVars('test/cluster/versions.sh', [
  'BIN_DIR', 'KT_CLUSTER_DIR', 'LAPTOP_NS', 'NODE_IP', 'API_PORT', 'DNS_SVC_IP', 'KUBERNETES_SVC_IP', 'CLUSTER_DOMAIN',
]);
const images = shellVars('test/images.env', ['KT_TEST_ECHO_IMAGE']);

export const cluster = {
  binDir: v.BIN_DIR!,
  kubectl: `${v.BIN_DIR}/kubectl`,
  kubeconfig: `${v.KT_CLUSTER_DIR}/admin.kubeconfig`,
  laptopKubeconfig: `${v.KT_CLUSTER_DIR}/laptop.kubeconfig`,
  laptopNs: v.LAPTOP_NS!,
  nodeIp: v.NODE_IP!,
  apiPort: Number(v.API_PORT),
  dnsServiceIp: v.DNS_SVC_IP!,
  kubernetesServiceIp: v.KUBERNETES_SVC_IP!,
  clusterDomain: v.CLUSTER_DOMAIN!,
  echoImage: images.KT_TEST_ECHO_IMAGE!,
};

/** Runs kubectl as the cluster admin, from the machine itself (not the laptop). */
export function kubectl(args: string[], input?: string): string {
  return execFileSync(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function kubectlJson<T>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json'])) as T;
}

/** Argument vector that runs a command inside the laptop network namespace. */
export function inLaptop(cmd: string, args: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', cluster.laptopNs, cmd, ...args]];
}

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command in the laptop namespace to completion, never throwing on a non-zero exit. */
export function runInLaptop(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const [c, a] = inLaptop(cmd, args);
  return new Promise((resolve) => {
    const p = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Starts a long-running command in the laptop namespace; the caller stops it. */
export function spawnInLaptop(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const [c, a] = inLaptop(cmd, args);
  return spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** Creates a namespace for one test file; the returned function deletes it. */
export function createNamespace(prefix: string, labels: Record<string, string> = {}): { name: string; remove: () => void } {
  const name = uniqueName(prefix);
  kubectl(['create', 'namespace', name]);
  const pairs = Object.entries(labels).map(([k, val]) => `${k}=${val}`);
  if (pairs.length > 0) kubectl(['label', 'namespace', name, ...pairs]);
  return { name, remove: () => { kubectl(['delete', 'namespace', name, '--wait=false']); } };
}

/**
 * The echo workload (test/workloads/echo) as a Deployment and a Service, with a security context
 * that passes the `restricted` Pod Security level.
 */
export function echoManifest(name: string, namespace: string, replicas = 1, options: EchoOptions = {}): string {
  return readFileSync('test/e2e/echo.yaml', 'utf8')
    .replaceAll('@UDP_SERVICE_PORT@', options.udp ? '- { name: udp, port: 7070, targetPort: udp, protocol: UDP }' : '')
    .replaceAll('@NAME@', name)
    .replaceAll('@NAMESPACE@', namespace)
    .replaceAll('@IMAGE@', cluster.echoImage)
    .replaceAll('@REPLICAS@', String(replicas));
}

export interface EchoOptions {
  /**
   * The Service also offers the UDP echo (udp 7070). Off by default: kt-mesh refuses a Service with
   * a UDP port (its router carries TCP only), so only UDP tests ask for it.
   */
  udp?: boolean;
}

export function deployEcho(name: string, namespace: string, replicas = 1, options: EchoOptions = {}): void {
  kubectl(['apply', '-f', '-'], echoManifest(name, namespace, replicas, options));
  kubectl(['rollout', 'status', `deployment/${name}`, '-n', namespace, '--timeout=120s']);
}

/** Polls fn until it returns a value that is not undefined, or throws after timeoutMs. */
export async function eventually<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const r = await fn();
      if (r !== undefined) return r;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Objects of the given kinds in a namespace, as one string without what the cluster itself
 * changes (status, resourceVersion, generation, managedFields): equal before and after a session
 * means the session changed nothing of them.
 */
export function objectsAsWritten(namespace: string, kinds: string): string {
  type Obj = { metadata: Record<string, unknown>; spec?: unknown };
  return JSON.stringify(kubectlJson<{ items: Obj[] }>(['get', kinds, '-n', namespace]).items.map((o) => {
    const { resourceVersion: _rv, managedFields: _mf, generation: _g, ...meta } = o.metadata;
    return { meta, spec: o.spec };
  }));
}
