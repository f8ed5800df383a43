// The laptop process runs like the pod: --env-file, --mount and -- COMMAND for kt-exchange,
// kt-mesh, and kt-connect and kt-preview with --env-from, end to end, as a user bound only to the
// documented Role. The Deployment's container
// has every kind of env source and a ConfigMap (items), a Secret and a downwardAPI volume; it
// declares PATH, HOME and NODE_VERSION itself, so what `env` shows in the container is exactly
// what Kubernetes built from the spec, plus HOSTNAME.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, eventually, kubectl, objectsAsWritten } from './cluster.ts';
import { runPlugin, startPlugin as startPluginRaw, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

const running: RunningPlugin[] = [];
const stateDir = mkdtempSync(join(tmpdir(), 'kt-podenv-state-'));
const work = mkdtempSync(join(tmpdir(), 'kt-podenv-'));
const startPlugin = (plugin: string, args: string[], env: Record<string, string> = {}): RunningPlugin => {
  const p = startPluginRaw(plugin, args, { KT_STATE_DIR: stateDir, ...env });
  running.push(p);
  return p;
};
afterEach(async () => {
  for (const p of running.splice(0)) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.stop('SIGINT');
});

const manifest = (ns: string): string => `
apiVersion: v1
kind: Service
metadata: { name: db, namespace: ${ns} }
spec: { ports: [{ name: pg, port: 5432 }, { name: metrics, port: 9187, protocol: UDP }] }
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: ${ns} }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80, targetPort: http }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: app-config, namespace: ${ns} }
data:
  LEVEL: debug
  URL: http://db:5432/app
  QUOTES: "it's \\"quoted\\" and \\\\ $HOME $(LEVEL)"
  MULTI: "line one\\nline two"
---
apiVersion: v1
kind: ConfigMap
metadata: { name: app-flags, namespace: ${ns} }
data: { MODE: fast, COLOR: blue }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: app-files, namespace: ${ns} }
data:
  config.yaml: "version: 1\\n"
  unused.txt: not mounted
---
apiVersion: v1
kind: Secret
metadata: { name: app-secret, namespace: ${ns} }
stringData:
  PASSWORD: "p@ss w$rd'\\""
  TOKEN: t0ken
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: ${ns} }
spec:
  replicas: 1
  selector: { matchLabels: { app: api } }
  template:
    metadata:
      labels: { app: api, tier: backend }
      annotations: { note: "hello" }
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      securityContext: { runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: RuntimeDefault } }
      containers:
      - name: sidecar
        image: ${cluster.echoImage}
        imagePullPolicy: Never
        env: [{ name: ECHO_HTTP_PORT, value: "8081" }, { name: ECHO_GRPC_PORT, value: "9091" }, { name: ECHO_TCP_PORT, value: "7071" }]
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
      - name: app
        image: ${cluster.echoImage}
        imagePullPolicy: Never
        ports: [{ name: http, containerPort: 8080 }]
        readinessProbe: { httpGet: { path: /healthz, port: http }, periodSeconds: 1 }
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
        resources: { requests: { cpu: 50m, memory: 32Mi }, limits: { cpu: 500m, memory: 256Mi } }
        envFrom:
        - configMapRef: { name: app-config }
        - configMapRef: { name: app-flags }
          prefix: FLAG_
        - secretRef: { name: app-secret }
          prefix: S_
        - configMapRef: { name: not-there, optional: true }
        env:
        - { name: PATH, value: /usr/local/bin:/bin:/usr/bin }
        - { name: HOME, value: /home/node }
        - { name: NODE_VERSION, value: "image's own" }
        - { name: LEVEL, value: info }
        - { name: COMBINED, value: "$(LEVEL)-$(FLAG_MODE)-$$(LEVEL)-$(DB_SERVICE_HOST)-$(NOT_DEFINED)-$(LATER)" }
        - name: FROM_CM
          valueFrom: { configMapKeyRef: { name: app-config, key: URL } }
        - name: FROM_SECRET
          valueFrom: { secretKeyRef: { name: app-secret, key: PASSWORD } }
        - name: OPTIONAL_KEY
          valueFrom: { configMapKeyRef: { name: app-config, key: nope, optional: true } }
        - name: OPTIONAL_SECRET
          valueFrom: { secretKeyRef: { name: no-secret, key: x, optional: true } }
        - name: POD_NAME
          valueFrom: { fieldRef: { fieldPath: metadata.name } }
        - name: POD_IP
          valueFrom: { fieldRef: { fieldPath: status.podIP } }
        - name: NODE_NAME
          valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
        - name: HOST_IP
          valueFrom: { fieldRef: { fieldPath: status.hostIP } }
        - name: SA
          valueFrom: { fieldRef: { fieldPath: spec.serviceAccountName } }
        - name: TIER
          valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } }
        - name: CPU_MILLIS
          valueFrom: { resourceFieldRef: { resource: limits.cpu, divisor: 1m } }
        - name: MEM_REQUEST_MI
          valueFrom: { resourceFieldRef: { resource: requests.memory, divisor: 1Mi } }
        - { name: LATER, value: late }
        volumeMounts:
        - { name: config, mountPath: /etc/app }
        - { name: secret, mountPath: /etc/secret, readOnly: true }
        - { name: podinfo, mountPath: /etc/podinfo }
        - { name: scratch, mountPath: /tmp/scratch }
      volumes:
      - name: config
        configMap: { name: app-files, items: [{ key: config.yaml, path: conf/config.yaml }] }
      - name: secret
        secret: { secretName: app-secret, defaultMode: 0440 }
      - name: podinfo
        downwardAPI: { items: [{ path: labels, fieldRef: { fieldPath: metadata.labels } }, { path: name, fieldRef: { fieldPath: metadata.name } }] }
      - name: scratch
        emptyDir: {}
`;

/** A dotenv file read by the usual rules (bare, 'single' or "escaped" values). */
function readDotenv(text: string): Record<string, string> {
  const read = (line: string): [string, string] => {
    const i = line.indexOf('=');
    const raw = line.slice(i + 1);
    if (raw.startsWith("'")) return [line.slice(0, i), raw.slice(1, -1)];
    if (raw.startsWith('"')) return [line.slice(0, i), raw.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r' } as Record<string, string>)[c] ?? c)];
    return [line.slice(0, i), raw];
  };
  return Object.fromEntries(text.trimEnd().split('\n').map(read));
}

/** `-- sh -c` programs print their environment with this, and the test reads it back with printedEnv. */
const PRINT_ENV = 'node -e "console.log(\'ENV \' + JSON.stringify(process.env))"';
const printedEnv = (output: string): Record<string, string> => JSON.parse(/^ENV (.*)$/m.exec(output)![1]!) as Record<string, string>;

/** An existing empty --mount directory with a mode of its own, which kt must give back. */
function emptyDir(path: string, mode: number): string {
  mkdirSync(path);
  chmodSync(path, mode);
  return path;
}

describe('the laptop process runs like the pod', () => {
  const ns = createNamespace('kt-podenv');
  let kubeconfig = '';
  let n = 0;
  const fresh = (name: string): string => join(work, `${++n}-${name}`);

  /** What the running container sees, without HOSTNAME (the runtime's, not the spec's). */
  const podEnv = (): Record<string, string> => {
    const out = kubectl(['exec', '-n', ns.name, 'deploy/api', '-c', 'app', '--', 'node', '-e', 'process.stdout.write(JSON.stringify(process.env))']);
    const { HOSTNAME: _h, ...env } = JSON.parse(out) as Record<string, string>;
    return env;
  };
  /**
   * The mounted files under dir are the container's, byte for byte, with the Secret's mode. The
   * kubelet brings a ConfigMap edit (the first test makes one) into the pod up to a minute or
   * more later, while kt has it at once: a file that differs is asked again until the pod has it.
   */
  const expectFilesAsInPod = async (dir: string): Promise<void> => {
    const inPod = (path: string): string => kubectl(['exec', '-n', ns.name, 'deploy/api', '-c', 'app', '--', 'cat', path]);
    for (const f of ['/etc/app/conf/config.yaml', '/etc/secret/PASSWORD', '/etc/secret/TOKEN', '/etc/podinfo/labels', '/etc/podinfo/name']) {
      const local = readFileSync(join(dir, f), 'utf8');
      const seen = await eventually(`the pod's ${f} as kt wrote it`, 120_000, () => { const x = inPod(f); return x === local ? x : undefined; }).catch(() => inPod(f));
      expect(local, f).toBe(seen);
    }
    expect(statSync(join(dir, 'etc/secret/PASSWORD')).mode & 0o777).toBe(0o440);
  };
  const ktObjects = (): string => kubectl(['get', 'pods,services,deployments,configmaps,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();

  beforeAll(() => {
    kubectl(['apply', '-f', '-'], manifest(ns.name));
    kubectl(['rollout', 'status', 'deployment/api', '-n', ns.name, '--timeout=120s']);
    kubeconfig = restrictedKubeconfig(ns.name);
  });
  afterAll(() => ns.remove());

  it('kt-exchange --env-file (json) equals the container\'s env; --mount brings the volumes, follows a ConfigMap edit within 5 s; Ctrl-C leaves nothing', async () => {
    const envFile = fresh('api.json');
    const dir = fresh('mnt');
    const p = startPlugin('kt-exchange', ['api', '--kubeconfig', kubeconfig, '--expose', '18380:80', '--env-file', envFile, '--env-format', 'json', '--mount', dir]);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    const expected: Record<string, string> = { ...podEnv(), KT_MOUNT: dir };
    expect(JSON.parse(readFileSync(envFile, 'utf8'))).toEqual(expected);
    expect(expected.COMBINED).toMatch(/^info-fast-\$\(LEVEL\)-10\.\d+\.\d+\.\d+-\$\(NOT_DEFINED\)-\$\(LATER\)$/);
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    await expectFilesAsInPod(dir);
    expect(existsSync(join(dir, 'etc/app/unused.txt'))).toBe(false);
    expect(existsSync(join(dir, 'tmp/scratch'))).toBe(false);
    expect(p.output()).toMatch(/volume scratch is not under .*: an emptyDir is scratch space/);
    expect(p.output()).not.toContain('t0ken');

    const t0 = Date.now();
    kubectl(['patch', 'configmap', 'app-files', '-n', ns.name, '--type', 'merge', '-p', '{"data":{"config.yaml":"version: 2\\n"}}']);
    await eventually('the mounted file follows the ConfigMap', 5000, () => (readFileSync(join(dir, 'etc/app/conf/config.yaml'), 'utf8') === 'version: 2\n' ? true : undefined));
    console.log(`--mount: the ConfigMap edit reached the file ${Date.now() - t0} ms later`);

    expect(await p.stop('SIGINT')).toBe(0);
    expect(existsSync(envFile)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('kt-exchange -- sh -c: the program sees the same values and files, the session ends with it, and kt exits with its code', async () => {
    const envFile = fresh('api.env');
    const dir = fresh('mnt');
    const p = startPlugin('kt-exchange', ['api', '--kubeconfig', kubeconfig, '--expose', '18380:80', '--env-file', envFile, '--mount', dir, '--',
      'sh', '-c', `cp "$0" "$0.copy"; ${PRINT_ENV}; echo "FILE $(cat "$KT_MOUNT/etc/app/conf/config.yaml")"; exit 7`, envFile]);
    expect(await p.exited).toBe(7);
    const env = printedEnv(p.output());
    const pod = podEnv();
    for (const [k, v] of Object.entries(pod)) expect(env[k], k).toBe(v);
    expect(env.KT_MOUNT).toBe(dir);
    expect(p.output()).toMatch(/^FILE version: \d$/m);
    // The dotenv file, read by the usual rules, holds the same values.
    expect(readDotenv(readFileSync(`${envFile}.copy`, 'utf8'))).toEqual({ ...pod, KT_MOUNT: dir });
    expect(existsSync(envFile)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('kt-mesh --env-file (sh): a shell that sources it has the container\'s env; Ctrl-C reaches -- COMMAND first', async () => {
    const envFile = fresh('api.sh');
    const marker = fresh('got-signal');
    const p = startPlugin('kt-mesh', ['api', '--kubeconfig', kubeconfig, '--expose', '18381:80', '--version-mark', 'podenv', '--env-file', envFile, '--env-format', 'sh', '--',
      'sh', '-c', `trap 'echo "$KT_MOUNT:$S_TOKEN" > ${marker}; exit 3' INT TERM; echo child-ready; while :; do sleep 0.1; done`]);
    await p.waitFor(/child-ready/, 180_000);
    const sourced = JSON.parse(execFileSync('sh', ['-c', `. ${envFile}; node -e 'process.stdout.write(JSON.stringify(process.env))'`], { encoding: 'utf8', env: {} })) as Record<string, string>;
    const pod = podEnv();
    for (const [k, v] of Object.entries(pod)) expect(sourced[k], k).toBe(v);
    expect(await p.stop('SIGINT')).toBe(3);
    expect(readFileSync(marker, 'utf8')).toBe(':t0ken\n');
    expect(existsSync(envFile)).toBe(false);
    await eventually('no kt objects', 60_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('after a SIGKILL, kt-clean removes the env file and the mounted files', async () => {
    const envFile = fresh('killed.env');
    const dir = fresh('mnt');
    const p = startPlugin('kt-exchange', ['api', '--kubeconfig', kubeconfig, '--expose', '18380:80', '--env-file', envFile, '--mount', dir]);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    await p.stop('SIGKILL');
    expect(existsSync(envFile) && existsSync(dir)).toBe(true);
    const r = await runPlugin('kt-clean', ['--kubeconfig', kubeconfig], { KT_STATE_DIR: stateDir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`removed the env file ${envFile}`);
    expect(r.stdout).toContain(`removed the mounted files under ${dir}`);
    expect(existsSync(envFile)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await eventually('no kt objects', 60_000, () => (ktObjects() === '' ? true : undefined));
    expect(kubectl(['get', 'service', 'api', '-n', ns.name, '-o', 'jsonpath={.spec.selector}'])).toBe('{"app":"api"}');
  });

  it('a Role without get secrets: one sentence and nothing created; with --env-optional the session goes on without them', async () => {
    const noSecrets = restrictedKubeconfig(ns.name, (y) => y.replace('  resources: [secrets]\n  verbs: [get, watch]\n', '  resources: [secrets]\n  verbs: [watch]\n'), 'kt-nosecrets');
    const before = objectsAsWritten(ns.name, 'pods,services,deployments,configmaps');
    const envFile = fresh('denied.env');
    const r = await runPlugin('kt-exchange', ['api', '--kubeconfig', noSecrets, '--expose', '18380:80', '--env-file', envFile], { KT_STATE_DIR: stateDir });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/^kt-exchange: you may not read secret\/app-secret, secret\/no-secret in namespace "kt-podenv-\w+", which service\/api \(container app\) uses; kt needs the rule get secrets .*--env-optional/);
    expect(objectsAsWritten(ns.name, 'pods,services,deployments,configmaps')).toBe(before);
    expect(existsSync(envFile)).toBe(false);

    const p = startPlugin('kt-exchange', ['api', '--kubeconfig', noSecrets, '--expose', '18380:80', '--env-file', envFile, '--env-optional']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(p.output()).toMatch(/warning: you may not read secret\/app-secret.* going on without the pod's environment and files \(--env-optional\)/);
    expect(existsSync(envFile)).toBe(false);
    expect(await p.stop('SIGINT')).toBe(0);
  });
  it('kt-connect --env-from deployment/NAME -- sh -c (socks): the program gets the pod\'s env, its files and the proxy variables, reaches a Service through the proxy, and kt exits with its code; --keep-env-file keeps the file', async () => {
    const envFile = fresh('connect.env');
    const dir = fresh('mnt');
    const p = startPlugin('kt-connect', ['--kubeconfig', kubeconfig, '--mode', 'socks', '--proxy-port', '2341', '--env-from', 'deployment/api', '--container', 'app', '--env-file', envFile, '--keep-env-file', '--mount', dir, '--',
      'sh', '-c', `${PRINT_ENV}; echo "FILE $(cat "$KT_MOUNT/etc/secret/TOKEN")"; echo "CALLED $(curl -sS -m 10 http://api/connect-run)"; exit 9`]);
    expect(await p.exited, p.output()).toBe(9);
    const env = printedEnv(p.output());
    const pod = podEnv();
    for (const [k, v] of Object.entries(pod)) expect(env[k], k).toBe(v);
    expect(env).toMatchObject({ KT_MOUNT: dir, ALL_PROXY: 'socks5h://127.0.0.1:2341', HTTP_PROXY: 'http://127.0.0.1:2341', https_proxy: 'http://127.0.0.1:2341' });
    expect(p.output()).toMatch(/^FILE t0ken$/m);
    expect(p.output()).toMatch(/^CALLED .*"pod":"api-/m);
    // The env file is the pod's alone (the proxy variables are for the program kt runs), and
    // --keep-env-file leaves it, still 0600.
    expect(readDotenv(readFileSync(envFile, 'utf8'))).toEqual({ ...pod, KT_MOUNT: dir });
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    rmSync(envFile);
    // Secret values show only where the program printed them itself, never in kt's own lines.
    expect(p.output().split('\n').filter((l) => l.includes('p@ss')).map((l) => l.slice(0, 4))).toEqual(['ENV ']);
    expect(existsSync(dir)).toBe(false);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('kt-connect --env-from pod/NAME --debug: the env file (json) equals the pod\'s env, no Secret value in the log; an existing empty --mount directory is 0700 during the session and gets its mode back after Ctrl-C', async () => {
    const pod = kubectl(['get', 'pods', '-n', ns.name, '-l', 'app=api,app.kubernetes.io/managed-by!=kt', '--field-selector', 'status.phase=Running', '-o', 'jsonpath={.items[0].metadata.name}']).trim();
    const envFile = fresh('connect.json');
    const dir = emptyDir(fresh('mnt'), 0o755);
    const p = startPlugin('kt-connect', ['--kubeconfig', kubeconfig, '--mode', 'socks', '--proxy-port', '2342', '--env-from', `pod/${pod}`, '--container', 'app', '--env-file', envFile, '--env-format', 'json', '--mount', dir, '--debug']);
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    expect(JSON.parse(readFileSync(envFile, 'utf8'))).toEqual({ ...podEnv(), KT_MOUNT: dir });
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await expectFilesAsInPod(dir);
    expect(await p.stop('SIGINT')).toBe(0);
    // Not even --debug logs a Secret's value.
    expect(p.output()).toMatch(/] debug: /);
    expect(p.output()).not.toMatch(/t0ken|p@ss/);
    expect(existsSync(envFile)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).mode & 0o7777).toBe(0o755);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('kt-preview --env-from deployment/NAME -- a server: the cluster calls the previewed Service and gets the pod\'s values and files; Ctrl-C reaches the server first, kt exits with its code', async () => {
    const envFile = fresh('preview.env');
    const dir = fresh('mnt');
    const marker = fresh('preview-signal');
    const server = `const fs = require('fs');
      require('http').createServer((q, r) => r.end(JSON.stringify({ secret: process.env.FROM_SECRET, combined: process.env.COMBINED, file: fs.readFileSync(process.env.KT_MOUNT + '/etc/podinfo/name', 'utf8') }))).listen(18390, () => console.log('server-ready'));
      process.on('SIGINT', () => { fs.writeFileSync(${JSON.stringify(marker)}, 'SIGINT ' + process.env.S_TOKEN); process.exit(4); });`;
    const p = startPlugin('kt-preview', ['api-preview', '--kubeconfig', kubeconfig, '--expose', '18390:80', '--env-from', 'deployment/api', '--container', 'app', '--env-file', envFile, '--mount', dir, '--', 'node', '-e', server]);
    await p.waitFor(/server-ready/, 120_000);
    expect(readDotenv(readFileSync(envFile, 'utf8'))).toEqual({ ...podEnv(), KT_MOUNT: dir });
    await expectFilesAsInPod(dir);
    const pod = podEnv();
    const fetched = kubectl(['exec', '-n', ns.name, 'deploy/api', '-c', 'app', '--', 'node', '-e', `fetch('http://api-preview.${ns.name}/').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    const name = kubectl(['exec', '-n', ns.name, 'deploy/api', '-c', 'app', '--', 'cat', '/etc/podinfo/name']);
    expect(JSON.parse(fetched)).toEqual({ secret: pod.FROM_SECRET, combined: pod.COMBINED, file: name });
    expect(await p.stop('SIGINT')).toBe(4);
    expect(readFileSync(marker, 'utf8')).toBe('SIGINT t0ken');
    expect(existsSync(envFile)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('after a SIGKILL of kt-connect and kt-preview with --env-from, kt-clean removes their env files and mounted files (an existing directory gets its mode back) and their objects', async () => {
    const connectEnv = fresh('killed-connect.env');
    const connectDir = emptyDir(fresh('mnt'), 0o751);
    const previewEnv = fresh('killed-preview.env');
    const previewDir = fresh('mnt');
    const c = startPlugin('kt-connect', ['--kubeconfig', kubeconfig, '--mode', 'socks', '--proxy-port', '2343', '--env-from', 'deployment/api', '--container', 'app', '--env-file', connectEnv, '--mount', connectDir]);
    const v = startPlugin('kt-preview', ['api-preview', '--kubeconfig', kubeconfig, '--expose', '18391:80', '--env-from', 'deployment/api', '--container', 'app', '--env-file', previewEnv, '--mount', previewDir]);
    await Promise.all([c.waitFor(/Press Ctrl-C to disconnect/, 120_000), v.waitFor(/Press Ctrl-C to remove it/, 120_000)]);
    await Promise.all([c.stop('SIGKILL'), v.stop('SIGKILL')]);
    expect([connectEnv, previewEnv, join(connectDir, 'etc/app/conf/config.yaml'), join(previewDir, 'etc/app/conf/config.yaml')].map(existsSync)).toEqual([true, true, true, true]);
    const r = await runPlugin('kt-clean', ['--kubeconfig', kubeconfig], { KT_STATE_DIR: stateDir });
    expect(r.code, r.stderr).toBe(0);
    for (const f of [connectEnv, previewEnv]) expect(r.stdout).toContain(`removed the env file ${f}`);
    for (const d of [connectDir, previewDir]) expect(r.stdout).toContain(`removed the mounted files under ${d}`);
    expect(existsSync(connectEnv) || existsSync(previewEnv) || existsSync(previewDir)).toBe(false);
    expect(readdirSync(connectDir)).toEqual([]);
    expect(statSync(connectDir).mode & 0o7777).toBe(0o751);
    await eventually('no kt objects', 60_000, () => (ktObjects() === '' ? true : undefined));
  });
});
