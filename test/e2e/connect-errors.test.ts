// Bad input to kt-connect: one clear sentence, a non-zero exit, and nothing left in the cluster.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, kubectl, runInLaptop } from './cluster.ts';
import { pluginPath, runPlugin, startPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

function ktObjects(ns: string): string {
  return kubectl(['get', 'pods,secrets', '-n', ns, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
}

function oneSentence(stderr: string, plugin = 'kt-connect'): string {
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('['));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${plugin}: .+[.;)]`));
  expect(lines[0]).not.toMatch(/HTTP-Code|Headers|fetch failed/);
  return lines[0]!;
}

/** The laptop's kubeconfig with another server address and, optionally, another CA. */
function kubeconfigWith(name: string, server: string, caPem?: string): string {
  let text = readFileSync(cluster.laptopKubeconfig, 'utf8').replace(/server: \S+/, `server: ${server}`);
  if (caPem) text = text.replace(/certificate-authority(-data)?: \S+/, `certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`);
  const file = join(tmpdir(), `kt-errors-${name}.kubeconfig`);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** A CA the API server's certificate was not signed by. */
function otherCa(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kt-ca-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=kt-other-ca'], { stdio: 'ignore' });
  return readFileSync(join(dir, 'c.pem'), 'utf8');
}

// Every plugin with arguments that would otherwise work: only the API server is wrong.
const EVERY_PLUGIN: [string, string[]][] = [
  ['kt-connect', ['--mode', 'socks', '--proxy-port', '2343']],
  ['kt-status', []],
  ['kt-clean', ['--dry-run']],
  ['kt-exchange', ['echo', '--expose', '18080:80']],
  ['kt-mesh', ['echo', '--expose', '18080:80']],
  ['kt-preview', ['kt-errors-preview', '--expose', '18080']],
];

/** Runs every plugin at once against `kubeconfig` (after `setup`, which may start a listener as $L). */
async function everyPluginFails(kubeconfig: string, expected: RegExp, setup = ''): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kt-errors-'));
  const script = EVERY_PLUGIN.map(([plugin, args]) => `(kubectl ${plugin} --kubeconfig ${kubeconfig} ${args.join(' ')} 2>${dir}/${plugin}.err; echo "${plugin} exit=$?") & pids="$pids $!"`).join('\n');
  const r = await runInLaptop('bash', ['-c', [
    'L=""', setup, `export PATH=${pluginPath}`, script, 'wait $pids', '[ -z "$L" ] || kill $L',
    `for p in ${EVERY_PLUGIN.map(([p]) => p).join(' ')}; do echo "== $p"; cat ${dir}/$p.err; done`,
  ].join('\n')], 90_000);
  for (const [plugin] of EVERY_PLUGIN) {
    expect(r.stdout, r.stdout).toMatch(new RegExp(`${plugin} exit=[1-9]`));
    const err = r.stdout.split(`== ${plugin}\n`)[1]!.split('\n== ')[0]!;
    expect(oneSentence(err, plugin)).toMatch(expected);
  }
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
    const noSecrets = restrictedKubeconfig(ns.name, (y) => y.replace('- apiGroups: [""]\n  resources: [secrets]\n  verbs: [create, patch, delete]\n', ''), 'kt-nosecrets');
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2342', '--kubeconfig', noSecrets], {}, 60_000);
    expect(r.code).not.toBe(0);
    const line = oneSentence(r.stderr);
    expect(line).toContain(`missing permission: cannot create secrets in namespace "${ns.name}"`);
    expect(line).toContain('{apiGroups: [""], resources: [secrets], verbs: [create]}');
    expect(ktObjects(ns.name)).toBe('');
  });

  it('a Role without the port-forward is refused before the shadow pod exists', async () => {
    const noTunnel = restrictedKubeconfig(ns.name, (y) => y.replace('- apiGroups: [""]\n  resources: [pods/portforward]\n  verbs: [get, create]\n', ''), 'kt-notunnel');
    const r = await runPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2348', '--kubeconfig', noTunnel], {}, 60_000);
    expect(r.code).not.toBe(0);
    const line = oneSentence(r.stderr);
    expect(line).toContain(`missing permission: cannot get pods/portforward in namespace "${ns.name}"`);
    expect(r.stderr).not.toContain('creating shadow pod');
    expect(ktObjects(ns.name)).toBe('');
  });

  it('an API server that refuses connections: every plugin names it and the cause', async () => {
    const kc = kubeconfigWith('refused', 'https://127.0.0.1:2344');
    await everyPluginFails(kc, /: cannot reach the API server https:\/\/127\.0\.0\.1:2344: the connection was refused/);
    expect(ktObjects(ns.name)).toBe('');
  });

  // The laptop namespace reaches no DNS server: there the resolver says "try again", not "not found".
  it('an API server whose name does not resolve', async () => {
    const kc = kubeconfigWith('unresolvable', 'https://kt-no-such-cluster.invalid:6443');
    await everyPluginFails(kc, /: cannot reach the API server https:\/\/kt-no-such-cluster\.invalid:6443: the name "kt-no-such-cluster\.invalid" (does not resolve|could not be resolved)/);
  });

  it('an API server that accepts and never answers times out', async () => {
    const kc = kubeconfigWith('silent', 'https://127.0.0.1:2345');
    const listener = `python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 2345)); s.listen(64); time.sleep(60)" & L=$!; sleep 0.5`;
    await everyPluginFails(kc, /: cannot reach the API server https:\/\/127\.0\.0\.1:2345: the connection timed out/, listener);
  });

  it('an API server whose certificate the kubeconfig\'s CA did not sign', async () => {
    const server = `https://${cluster.nodeIp}:${cluster.apiPort}`;
    const kc = kubeconfigWith('wrong-ca', server, otherCa());
    await everyPluginFails(kc, new RegExp(`: cannot reach the API server ${server.replaceAll('.', '\\.')}: TLS verification failed: its certificate is not signed by the kubeconfig's certificate authority`));
    expect(ktObjects(ns.name)).toBe('');
  });

  it('a namespace-scoped user who mistypes -n: one sentence, no HTTP dump, nothing created', async () => {
    const kc = restrictedKubeconfig(ns.name, undefined, 'kt-typo');
    const typo = `${ns.name}x`;
    for (const [plugin, args] of [['kt-connect', ['--mode', 'socks', '--proxy-port', '2346']], ['kt-exchange', ['echo', '--expose', '18080:80']], ['kt-preview', ['p', '--expose', '18080']], ['kt-mesh', ['echo', '--expose', '18080:80']]] as const) {
      const r = await runPlugin(plugin, [...args, '--kubeconfig', kc, '-n', typo]);
      expect(r.code).not.toBe(0);
      expect(oneSentence(r.stderr, plugin)).toBe(`${plugin}: you may not create pods in namespace "${typo}": it does not exist or no Role of yours covers it; is -n right? (the context's namespace is "${ns.name}").`);
    }
    for (const plugin of ['kt-status', 'kt-clean']) {
      const r = await runPlugin(plugin, ['--kubeconfig', kc, '-n', typo]);
      expect(r.code).not.toBe(0);
      expect(oneSentence(r.stderr, plugin)).toContain(`missing permission: cannot list pods in namespace "${typo}" (403 Forbidden) (is -n right? the context's namespace is "${ns.name}"); kt needs the rule {apiGroups: [""], resources: [pods], verbs: [list]}`);
    }
    expect(ktObjects(ns.name)).toBe('');
  });

  it('a Role from before patch on secrets still connects, and leaves nothing', async () => {
    const withoutPatch = (y: string): string => y.replace('  resources: [secrets]\n  verbs: [create, patch, delete]\n', '  resources: [secrets]\n  verbs: [create, delete]\n');
    const documented = readFileSync('plugins/rbac/kt-developer.yaml', 'utf8');
    expect(withoutPatch(documented), 'the edit applies').not.toBe(documented);
    const older = restrictedKubeconfig(ns.name, withoutPatch, 'kt-olderrole');
    const p = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2349', '--kubeconfig', older, '--debug']);
    try {
      await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
      expect(p.output()).toContain('the session Secret stays without an owner');
    } finally {
      expect(await p.stop('SIGINT')).toBe(0);
    }
    expect(ktObjects(ns.name)).toBe('');
  });

  it('self-healing that cannot be armed names the right really missing', async () => {
    deployEcho('echo', ns.name);
    const kc = restrictedKubeconfig(ns.name, (y) => y.replace('resources: [roles, rolebindings]', 'resources: [roles]'), 'kt-norb');
    const p = startPlugin('kt-exchange', ['echo', '--expose', '18081:80', '--kubeconfig', kc]);
    try {
      const m = await p.waitFor(/warning: self-healing is off: [^\n]*/, 120_000);
      expect(m[0]).toBe(`warning: self-healing is off: you may not create rolebindings, patch rolebindings, delete rolebindings in namespace "${ns.name}", so if this laptop disappears the cluster stays changed until someone runs kubectl kt-clean`);
    } finally {
      await p.stop('SIGINT');
    }
  });
});
