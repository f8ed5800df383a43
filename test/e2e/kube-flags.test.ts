// kubectl's generic flags, each with a real effect on the API server, run from the laptop as a
// user would: --as/--as-group/--as-uid through an impersonator who may only impersonate, --token,
// --server with --certificate-authority, --insecure-skip-tls-verify and --tls-server-name,
// --context/--cluster/--user picking entries of a kubeconfig with several, --request-timeout, -v;
// and a mistyped subcommand that creates nothing.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, kubectl, runInLaptop } from './cluster.ts';
import { laptopEnv, runPlugin, startPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

const ns = createNamespace('kt-flags');
const dir = mkdtempSync(join(tmpdir(), 'kt-flags-'));
const admin = readFileSync(cluster.kubeconfig, 'utf8');
const server = /server: (\S+)/.exec(admin)![1]!;
const caFile = join(dir, 'ca.crt');
const clusterRole = `kt-flags-impersonate-${ns.name}`;
// Names of identities that exist only as impersonation targets.
const someone = `kt-someone-${ns.name}`;
const [group1, group2] = [`kt-g1-${ns.name}`, `kt-g2-${ns.name}`];
let devToken = '';
let kubeconfig = '';

const status = (args: string[]): ReturnType<typeof runPlugin> => runPlugin('kt-status', ['--kubeconfig', kubeconfig, ...args]);
const oneLine = (s: string): void => { expect(s.trim().split('\n')).toHaveLength(1); };
const empty = `No kt sessions found in namespace ${ns.name}.`;

beforeAll(() => {
  writeFileSync(caFile, Buffer.from(/certificate-authority-data: (\S+)/.exec(admin)![1]!, 'base64'));
  // kt-dev: a ServiceAccount bound to the documented Role.
  devToken = /token: (\S+)/.exec(readFileSync(restrictedKubeconfig(ns.name), 'utf8'))![1]!;
  // The Role, bound to a group too (what --as-group must reach).
  kubectl(['create', 'rolebinding', 'kt-dev-group', '-n', ns.name, '--role=kt-dev', `--group=${group2}`]);
  // kt-imp may do nothing but impersonate: kt-dev (a Role in the namespace), and a user, two
  // groups and one uid (a ClusterRole: users, groups and uids are cluster-scoped).
  kubectl(['create', 'serviceaccount', 'kt-imp', '-n', ns.name]);
  kubectl(['create', 'role', 'kt-imp', '-n', ns.name, '--verb=impersonate', '--resource=serviceaccounts', '--resource-name=kt-dev']);
  kubectl(['create', 'rolebinding', 'kt-imp', '-n', ns.name, '--role=kt-imp', `--serviceaccount=${ns.name}:kt-imp`]);
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole },
    rules: [
      { apiGroups: [''], resources: ['users'], verbs: ['impersonate'], resourceNames: [someone] },
      { apiGroups: [''], resources: ['groups'], verbs: ['impersonate'], resourceNames: [group1, group2] },
      { apiGroups: ['authentication.k8s.io'], resources: ['uids'], verbs: ['impersonate'], resourceNames: ['uid-allowed'] },
    ],
  }));
  kubectl(['create', 'clusterrolebinding', clusterRole, `--clusterrole=${clusterRole}`, `--serviceaccount=${ns.name}:kt-imp`]);
  const impToken = kubectl(['create', 'token', 'kt-imp', '-n', ns.name, '--duration=1h']).trim();
  const ca = /certificate-authority-data: (\S+)/.exec(admin)![1]!;
  // Several of each; the current context reaches nothing.
  kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config',
    'clusters:',
    `- name: real`, '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${ca}`,
    `- name: no-ca`, '  cluster:', `    server: ${server}`,
    // Nothing listens on port 1 of the laptop's loopback.
    `- name: nowhere`, '  cluster:', '    server: https://127.0.0.1:1', `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: dev`, '  user:', `    token: ${devToken}`,
    `- name: imp`, '  user:', `    token: ${impToken}`,
    `- name: nobody`, '  user:', '    token: not-a-token',
    'contexts:',
    `- name: dev`, '  context:', '    cluster: real', '    user: dev', `    namespace: ${ns.name}`,
    `- name: imp`, '  context:', '    cluster: real', '    user: imp', `    namespace: ${ns.name}`,
    `- name: broken`, '  context:', '    cluster: nowhere', '    user: nobody', `    namespace: ${ns.name}`,
    `- name: no-ca`, '  context:', '    cluster: no-ca', '    user: nobody', `    namespace: ${ns.name}`,
    'current-context: broken', '',
  ].join('\n'), { mode: 0o600 });
});

afterAll(() => {
  kubectl(['delete', 'clusterrolebinding', clusterRole, '--ignore-not-found']);
  kubectl(['delete', 'clusterrole', clusterRole, '--ignore-not-found']);
  ns.remove();
});

describe('kubectl generic flags', () => {
  it('--context, --cluster and --user pick entries of a kubeconfig with several', async () => {
    const broken = await status([]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/cannot reach the API server https:\/\/127\.0\.0\.1:1/);
    const ctx = await status(['--context', 'dev']);
    expect(ctx.stderr.trim()).toBe(empty);
    expect(ctx.code).toBe(0);
    const picked = await status(['--cluster', 'real', '--user', 'dev']);
    expect(picked.stderr.trim()).toBe(empty);
    expect(picked.code).toBe(0);
    const unknown = await status(['--user', 'carol']);
    expect(unknown.stderr.trim()).toBe('kt-status: user "carol" is not in the kubeconfig (it has: dev, imp, nobody).');
  });

  it('--token authenticates as its owner', async () => {
    const bad = await status(['--context', 'dev', '--token', 'not-a-token']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/rejected the credentials \(401 Unauthorized\)/);
    oneLine(bad.stderr);
    const good = await status(['--cluster', 'real', '--token', devToken]);
    expect(good.stderr.trim()).toBe(empty);
    expect(good.code).toBe(0);
  });

  it('--server, --certificate-authority, --insecure-skip-tls-verify and --tls-server-name reach and verify the API server', async () => {
    const moved = await status(['--server', server, '--token', devToken]);
    expect(moved.stderr.trim()).toBe(empty);
    expect(moved.code).toBe(0);
    const unverified = await status(['--context', 'no-ca', '--token', devToken]);
    expect(unverified.code).toBe(1);
    expect(unverified.stderr).toMatch(/TLS verification failed: its certificate is not signed by the kubeconfig's certificate authority/);
    oneLine(unverified.stderr);
    for (const flags of [['--certificate-authority', caFile], ['--insecure-skip-tls-verify']]) {
      const r = await status(['--context', 'no-ca', '--token', devToken, ...flags]);
      expect(r.stderr.trim(), flags.join(' ')).toBe(empty);
    }
    const named = await status(['--context', 'dev', '--tls-server-name', 'kubernetes.default']);
    expect(named.stderr.trim()).toBe(empty);
    const misnamed = await status(['--context', 'dev', '--tls-server-name', 'not-the-api.example']);
    expect(misnamed.code).toBe(1);
    expect(misnamed.stderr).toMatch(/TLS verification failed/);
    oneLine(misnamed.stderr);
  });

  it('--as really impersonates: the impersonator alone is refused, as the ServiceAccount it works', async () => {
    const alone = await status(['--context', 'imp']);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/missing permission: cannot list pods in namespace/);
    oneLine(alone.stderr);
    const as = await status(['--context', 'imp', '--as', `system:serviceaccount:${ns.name}:kt-dev`]);
    expect(as.stderr.trim()).toBe(empty);
    expect(as.code).toBe(0);
    const notAllowed = await status(['--context', 'imp', '--as', `system:serviceaccount:${ns.name}:default`]);
    expect(notAllowed.code).toBe(1);
    expect(notAllowed.stderr).toMatch(/cannot impersonate serviceaccounts/);
    oneLine(notAllowed.stderr);
  });

  it('--as-group sends each group (the Role is bound to the second), --as-uid is checked by the API server', async () => {
    const groups = await status(['--context', 'imp', '--as', someone, '--as-group', group1, '--as-group', group2]);
    expect(groups.stderr.trim()).toBe(empty);
    expect(groups.code).toBe(0);
    const onlyFirst = await status(['--context', 'imp', '--as', someone, '--as-group', group1]);
    expect(onlyFirst.stderr).toMatch(/missing permission: cannot list pods/);
    const uid = await status(['--context', 'imp', '--as', someone, '--as-group', group2, '--as-uid', 'uid-allowed']);
    expect(uid.stderr.trim()).toBe(empty);
    const otherUid = await status(['--context', 'imp', '--as', someone, '--as-group', group2, '--as-uid', 'uid-other']);
    expect(otherUid.code).toBe(1);
    expect(otherUid.stderr).toMatch(/cannot impersonate uids/);
    oneLine(otherUid.stderr);
  });

  it('--request-timeout 1ms times out in one sentence; -v 6 prints the requests', async () => {
    const r = await status(['--context', 'dev', '--request-timeout', '1ms']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`kt-status: the API server ${server} did not answer within --request-timeout; give it longer (e.g. --request-timeout 30s) or leave the flag out.`);
    const ok = await status(['--context', 'dev', '--request-timeout', '30']);
    expect(ok.code).toBe(0);
    const verbose = await status(['--context', 'dev', '-v', '6']);
    expect(verbose.code).toBe(0);
    expect(verbose.stderr).toMatch(new RegExp(`debug: GET ${server}/api/v1/namespaces/${ns.name}/pods`));
  });
});

describe('a session as someone else', () => {
  it('kt-connect --as runs the whole session as the ServiceAccount: pod, port-forward WebSocket, tunnel, undo', async () => {
    const p = startPlugin('kt-connect', ['--kubeconfig', kubeconfig, '--context', 'imp', '--as', `system:serviceaccount:${ns.name}:kt-dev`, '--mode', 'socks', '--proxy-port', '23311']);
    try {
      await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
      // The impersonator itself may not create pods nor port-forward: every request, the
      // port-forward's WebSocket included, went as the ServiceAccount.
      expect(kubectl(['get', 'pods', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toMatch(/^pod\//);
    } finally {
      expect(await p.stop('SIGINT')).toBe(0);
    }
    expect(kubectl(['get', 'pods', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
  }, 180_000);
});

describe("completion through kubectl's own __complete", () => {
  // kubectl 1.26+ completes `kubectl kt-exchange <TAB>` by running kubectl_complete-kt_exchange from
  // PATH; plugins/bin holds those helpers, as krew users link them.
  const complete = async (words: string[]): Promise<string[]> => {
    const env = laptopEnv();
    const r = await runInLaptop('env', [`PATH=${env.PATH}`, `HOME=${env.HOME ?? '/root'}`, 'kubectl', '__complete', ...words]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim().split('\n');
  };

  beforeAll(() => {
    kubectl(['create', 'service', 'clusterip', 'kt-compl-svc', '-n', ns.name, '--tcp=80:8080']);
    kubectl(['create', 'deployment', 'kt-compl-app', '-n', ns.name, '--image=registry.invalid/none:1', '--replicas=0']);
  });

  it('positional arguments: Services, deployment/NAME, as the restricted user of the context given', async () => {
    const first = await complete(['kt-exchange', '--kubeconfig', kubeconfig, '--context', 'dev', '']);
    expect(first).toContain('kt-compl-svc');
    expect(first).toContain('deployment/');
    expect(first.at(-1)).toMatch(/^:\d+$/);
    const deployments = await complete(['kt-exchange', '--kubeconfig', kubeconfig, '--context', 'dev', 'deployment/']);
    expect(deployments).toContain('deployment/kt-compl-app');
    expect(await complete(['kt-mesh', '--kubeconfig', kubeconfig, '--context', 'dev', 'kt-compl'])).toEqual(['kt-compl-svc', ':4']);
  });

  it('flag values: namespaces, contexts, workloads for --env-from, choices', async () => {
    expect(await complete(['kt-status', '--kubeconfig', kubeconfig, '--context', ''])).toEqual(['broken', 'dev', 'imp', 'no-ca', ':4']);
    expect(await complete(['kt-connect', '--kubeconfig', kubeconfig, '--context', 'dev', '--env-from', 'deployment/kt'])).toEqual(['deployment/kt-compl-app', ':4']);
    expect(await complete(['kt-connect', '--mode', 'h'])).toEqual(['hosts', ':4']);
    expect(await complete(['kt-connect', 'completion', 'p'])).toEqual(['powershell', ':4']);
  });
});

describe('mistakes and pipes', () => {
  it('a mistyped subcommand suggests the right one, exits 2 and creates nothing', async () => {
    const r = await runPlugin('kt-connect', ['--kubeconfig', kubeconfig, '--context', 'dev', 'statuss']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("kt-connect: unknown command \"statuss\" for kt-connect; did you mean status? see 'kubectl kt-connect --help'.");
    expect(kubectl(['get', 'pods,secrets,serviceaccounts', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
  });

  it('a pipe that closes early cuts nothing and crashes nothing', async () => {
    const env = laptopEnv();
    const cmd = `kubectl kt-status --kubeconfig ${kubeconfig} --context dev -o json`;
    const r = await runInLaptop('env', [`PATH=${env.PATH}`, `HOME=${env.HOME ?? '/root'}`, 'bash', '-c', `${cmd} | head -c 10; echo " exit=\${PIPESTATUS[0]}"; ${cmd} | cat | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).kind))'`]);
    expect(r.stdout).toMatch(/^\{\n {2}"apiVe exit=0\nSessionList\n$/);
    expect(r.stderr).toBe('');
  });
});
