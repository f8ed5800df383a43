// Bad input to kt-connect: one clear sentence, a non-zero exit, and nothing left in the cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, kubectl, runInLaptop } from './cluster.ts';
import { pluginPath, runPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

function ktObjects(ns: string): string {
  return kubectl(['get', 'pods,secrets', '-n', ns, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
}

function oneSentence(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('['));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^kt-connect: .+[.;)]/);
  return lines[0]!;
}

describe('kt-connect bad input', () => {
  const ns = createNamespace('kt-bad');
  afterAll(() => ns.remove());
  beforeAll(() => {
    kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
  });

  it('an unknown flag', async () => {
    const r = await runPlugin('kt-connect', ['--bogus', '-n', ns.name]);
    expect(r.code).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain('unknown flag --bogus');
    expect(ktObjects(ns.name)).toBe('');
  });

  it('an unknown context', async () => {
    const r = await runPlugin('kt-connect', ['--context', 'nope', '-n', ns.name]);
    expect(r.code).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain('context "nope" is not in the kubeconfig');
  });

  it('an unknown namespace', async () => {
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '-n', 'kt-no-such-namespace']);
    expect(r.code).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain('namespace "kt-no-such-namespace" does not exist');
  });

  it('a local port in use creates nothing in the cluster', async () => {
    const holder = await runInLaptop('bash', ['-c', `python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 2340)); s.listen(); time.sleep(15)" & sleep 0.5; PATH=${pluginPath} KUBECONFIG=${cluster.laptopKubeconfig} kubectl kt-connect --mode socks --proxy-port 2340 -n ${ns.name}; echo "exit=$?"; kill %1`], 30_000);
    expect(holder.stdout).toMatch(/exit=[1-9]/);
    expect(oneSentence(holder.stderr)).toContain('port 2340 on 127.0.0.1 is already in use');
    expect(ktObjects(ns.name)).toBe('');
  });

  it('transparent mode without root', async () => {
    const r = await runInLaptop('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `PATH=${pluginPath}`, 'HOME=/tmp', 'kubectl', 'kt-connect', '--mode', 'transparent', '-n', ns.name]);
    expect(r.code).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain('transparent mode needs root');
  });

  it('an image that cannot be pulled names the image and how to choose another, and leaves nothing', async () => {
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2341', '-n', ns.name, '--image', 'localhost/kt-no-such-image:1', '--pod-timeout', '60'], {}, 90_000);
    expect(r.code).not.toBe(0);
    const line = oneSentence(r.stderr);
    expect(line).toContain('localhost/kt-no-such-image:1 cannot be pulled');
    expect(line).toContain('--image, $KT_SHADOW_IMAGE or $KT_IMAGE_REGISTRY, or shadowImage or registry in ~/.kt/config.yaml');
    expect(ktObjects(ns.name)).toBe('');
  });

  it('a missing permission names the verb and the resource, and leaves nothing', async () => {
    const noSecrets = restrictedKubeconfig(ns.name, (y) => y.replace('- apiGroups: [""]\n  resources: [secrets]\n  verbs: [create, delete]\n', ''), 'kt-nosecrets');
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2342', '--kubeconfig', noSecrets], {}, 60_000);
    expect(r.code).not.toBe(0);
    const line = oneSentence(r.stderr);
    expect(line).toContain(`missing permission: cannot create secrets in namespace "${ns.name}"`);
    expect(line).toContain('{apiGroups: [""], resources: [secrets], verbs: [create]}');
    expect(ktObjects(ns.name)).toBe('');
  });
});
