// kt-mesh end to end: two developers (two plugin processes with their own marks and their own
// echo servers on the laptop) mesh one Service at once; an in-cluster client calls it. The
// developers are users bound to exactly the documented Role (plugins/rbac/kt-developer.yaml), in a
// namespace that enforces the `restricted` Pod Security level: the router and all are created
// with that Role alone.
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, spawnInLaptop } from './cluster.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

const probeScript = readFileSync('test/e2e/tools/incluster-probe.js', 'utf8');
const pooledScript = readFileSync('test/e2e/tools/incluster-pooled.js', 'utf8');
const freshScript = readFileSync('test/e2e/tools/incluster-fresh.js', 'utf8');
const A = { http: 18380, grpc: 19380, tcp: 17380, name: 'laptop-a', mark: 'alice' };
const B = { http: 18480, grpc: 19480, tcp: 17480, name: 'laptop-b', mark: 'bob' };

describe('kt-mesh with two developers', () => {
  const ns = createNamespace('kt-mesh', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  let client = '';
  const laptops: ChildProcess[] = [];
  let devA: RunningPlugin;
  let devB: RunningPlugin;
  /** The documented Role's user, as KUBECONFIG for every plugin run here. */
  let asDeveloper: Record<string, string> = {};
  /** An in-cluster caller whose pooled keep-alive connection was opened before anyone meshed. */
  let pooled: ChildProcess;
  let pooledOut = '';

  type Probe = { pod?: string; status?: number; error?: string; messages?: number; grpcStatus?: string; grpcMessage?: string; body?: string };
  const probe = (kind: string, port: number, headers: Record<string, string> = {}): Probe =>
    JSON.parse(kubectl(['exec', '-n', ns.name, client, '--', 'node', '-e', probeScript, kind, 'echo', String(port), JSON.stringify(headers)])) as Probe;
  const selector = (): string => kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.selector}']);
  const meshObjects = (): string => kubectl(['get', 'pods,services,deployments,configmaps,serviceaccounts,roles,rolebindings,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    deployEcho('client', ns.name);
    client = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=client']).items[0]!.metadata.name;
    asDeveloper = { KUBECONFIG: restrictedKubeconfig(ns.name) };
    pooled = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-i', '-n', ns.name, client, '--', 'node', '-e', pooledScript, 'echo', '80', JSON.stringify({ 'kt-version': A.mark }), '20']);
    pooled.stdout!.on('data', (d: Buffer) => { pooledOut += d.toString(); });
    await eventually('the pooled caller connected', 30_000, () => (pooledOut.includes('ready') ? true : undefined));
    for (const d of [A, B]) {
      laptops.push(spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
        ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(d.http), ECHO_GRPC_PORT: String(d.grpc), ECHO_TCP_PORT: String(d.tcp), POD_NAME: d.name,
      }));
    }
    devA = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${A.http}:80,${A.grpc}:grpc`, '--version-mark', A.mark, '--recover-after', '10s'], asDeveloper);
    await devA.waitFor(/Press Ctrl-C to stop/, 180_000);
    devB = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${B.http}:80,${B.grpc}:grpc`, '--version-mark', B.mark, '--recover-after', '10s'], asDeveloper);
    await devB.waitFor(/Press Ctrl-C to stop/, 180_000);
  });
  afterAll(async () => {
    for (const d of [devA, devB]) if (d && d.proc.exitCode === null) await d.stop('SIGINT');
    if (pooled && pooled.exitCode === null) pooled.kill('SIGTERM');
    for (const l of laptops) l.kill('SIGTERM');
    ns.remove();
  });

  it('a keep-alive connection opened before the mesh stays with the real pods, marked requests too; a new connection is routed', async () => {
    const done = new Promise((r) => pooled.on('exit', r));
    pooled.stdin!.write('go\n');
    await done;
    const result = JSON.parse(pooledOut.slice(pooledOut.indexOf('{'))) as { pods: Record<string, number>; connections: number; reused: number };
    console.log(`mesh: 20 requests marked "${A.mark}" on a keep-alive connection opened before the mesh: ${JSON.stringify(result)}`);
    expect(result.connections).toBe(1);
    expect(result.reused).toBe(20);
    expect(result.pods).toEqual({ 'echo-*': 20 });
    expect(probe('http', 80, { 'kt-version': A.mark }).pod).toBe(A.name);
    expect(devA.output()).toContain('established connections stay with the pod they were opened to');
  });

  it('routes HTTP by header and by baggage; everything else goes to the real pods', () => {
    expect(probe('http', 80).pod).toMatch(/^echo-/);
    expect(probe('http', 80, { 'kt-version': 'alice' }).pod).toBe(A.name);
    expect(probe('http', 80, { 'kt-version': 'bob' }).pod).toBe(B.name);
    expect(probe('http', 80, { 'kt-version': 'carol' }).pod).toMatch(/^echo-/);
    expect(probe('http', 80, { baggage: 'userId=7,kt-version=bob;ttl=3' }).pod).toBe(B.name);
    expect(devA.output()).toContain('header "kt-version: alice"');
  });

  it('routes WebSocket, gRPC unary and gRPC streaming by the header too, trailers intact', () => {
    expect(probe('ws', 80, { 'kt-version': 'bob' }).pod).toBe(B.name);
    expect(probe('ws', 80).pod).toMatch(/^echo-/);
    const unary = probe('grpc', 9090, { 'kt-version': 'alice' });
    expect(unary).toMatchObject({ pod: A.name, grpcStatus: '0' });
    expect(probe('grpc', 9090).pod).toMatch(/^echo-/);
    expect(probe('grpc-stream', 9090, { 'kt-version': 'bob' })).toMatchObject({ pod: B.name, messages: 4, grpcStatus: '0' });
  });

  it('refuses a mark another developer holds, creating nothing', async () => {
    const r = await runPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', '18580:80', '--version-mark', 'alice'], asDeveloper);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/version "alice" of service\/echo is already taken by \S+ \(session [0-9a-f]{10}\)/);
  });

  it('raw TCP ports pass through to the real pods', () => {
    const out = kubectl(['exec', '-n', ns.name, client, '--', 'node', '-e',
      "const s = require('net').connect(7070, 'echo'); s.on('data', d => { console.log(String(d)); s.destroy(); }); s.write('tcp-through');"]).trim();
    expect(out).toBe('tcp-through');
  });

  it('developer B leaves under steady load: A and the real pods are unaffected, no request fails', async () => {
    const sets = [{}, { 'kt-version': 'alice' }, { 'kt-version': 'bob' }];
    const proc = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-n', ns.name, client, '--', 'node', '-e', probeScript, 'load', 'echo', '80', JSON.stringify(sets), '6']);
    let out = '';
    proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const done = new Promise((r) => proc.on('exit', r));
    await new Promise((r) => setTimeout(r, 2000));
    expect(await devB.stop('SIGINT')).toBe(0);
    await done;
    const [none, a, b] = JSON.parse(out) as { ok: number; failed: number; pods: Record<string, number> }[];
    console.log(`mesh under load while B left: ${JSON.stringify({ none, a, b })}`);
    expect(none!.failed).toBe(0);
    expect(a!.failed).toBe(0);
    expect(b!.failed).toBe(0);
    expect(Object.keys(none!.pods)).toEqual(['echo-*']);
    expect(Object.keys(a!.pods)).toEqual([A.name]);
    expect(Object.keys(b!.pods).sort()).toEqual(['echo-*', B.name].sort());
    expect(probe('http', 80, { 'kt-version': 'bob' }).pod).toMatch(/^echo-/);
    expect(probe('http', 80, { 'kt-version': 'alice' }).pod).toBe(A.name);
  });

  it('a SIGKILLed developer\'s route disappears by itself within the grace period plus 30 s', async () => {
    const t0 = Date.now();
    await devA.stop('SIGKILL');
    await eventually('route gone and Service restored', 40_000, () => (selector() === '{"app":"echo"}' ? true : undefined));
    console.log(`mesh: route of the killed developer gone and the Service restored ${Date.now() - t0} ms after SIGKILL (grace 10 s)`);
    expect(probe('http', 80, { 'kt-version': 'alice' }).pod).toMatch(/^echo-/);
    await eventually('nothing left', 40_000, () => (meshObjects() === '' ? true : undefined));
  });

  it('the last developer leaves under keep-alive load: no request fails, then the selector is as before and the router and helper Service are gone', async () => {
    const a2 = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${A.http}:80`, '--version-mark', A.mark], asDeveloper);
    await a2.waitFor(/Press Ctrl-C to stop/, 180_000);
    expect(selector()).toContain('kt.dev/router');
    // Keep-alive callers (4 per header set, bounded to 16 s) while the last one leaves: the
    // Service moves back, its endpoints leave the router, the router drains, then goes.
    const sets = [{}, { 'kt-version': A.mark }];
    const proc = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-n', ns.name, client, '--', 'node', '-e', probeScript, 'load', 'echo', '80', JSON.stringify(sets), '16']);
    let out = '';
    proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const done = new Promise((r) => proc.on('exit', r));
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now();
    expect(await a2.stop('SIGINT', 60_000)).toBe(0);
    const leftMs = Date.now() - t0;
    expect(selector()).toBe('{"app":"echo"}');
    expect(kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.metadata.annotations}'])).not.toContain('kt.dev/');
    await done;
    const [none, marked] = JSON.parse(out) as { ok: number; failed: number; pods: Record<string, number> }[];
    console.log(`mesh: last developer left in ${leftMs} ms under keep-alive load: ${JSON.stringify({ none, marked })}`);
    expect(a2.output()).not.toMatch(/still listed the router|not finished draining|could not (read its endpoints|let the router drain)/);
    expect(none!.failed).toBe(0);
    expect(marked!.failed).toBe(0);
    expect(Object.keys(none!.pods)).toEqual(['echo-*']);
    expect(Object.keys(marked!.pods).sort()).toEqual(['echo-*', A.name].sort());
    await eventually('router and helper Service gone', 30_000, () => (meshObjects() === '' ? true : undefined));
  });
});

// The banner comes only once a NEW connection to the Service goes through the router: kube-proxy
// applies the Service's new endpoints a moment after its selector changes, and a keep-alive
// connection opened in that moment would stay with the real pods for its whole life. A caller
// in the cluster opens fresh keep-alive connections the instant the banner is printed; each one's
// first request, marked, must reach the laptop. Several runs, each a first developer (the Service
// is pointed at the router) and then a second one (it already is; the route must be loaded).
describe('kt-mesh says routed only once a new connection goes through the router', () => {
  const ns = createNamespace('kt-meshsw', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  const C = { http: 18860, grpc: 19860, tcp: 17860, name: 'laptop-c', mark: 'carol' };
  const D = { http: 18960, grpc: 19960, tcp: 17960, name: 'laptop-d', mark: 'dave' };
  const RUNS = 3;
  const laptops: ChildProcess[] = [];
  let asDeveloper: Record<string, string> = {};
  let fresh: ChildProcess;
  let freshOut = '';
  let answers = 0;
  const running: RunningPlugin[] = [];

  /** Fresh keep-alive connections with these headers, opened at once by the in-cluster caller. */
  const freshConnections = async (headers: Record<string, string>): Promise<{ first: string[]; pods: Record<string, number>; reused: number }> => {
    const want = ++answers;
    fresh.stdin!.write(`${JSON.stringify(headers)}\n`);
    const line = await eventually('the fresh caller answered', 60_000, () => freshOut.split('\n').filter((l) => l.startsWith('{'))[want - 1]);
    return JSON.parse(line) as { first: string[]; pods: Record<string, number>; reused: number };
  };
  const objects = (): string => kubectl(['get', 'pods,services,deployments,configmaps', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    deployEcho('client', ns.name);
    const client = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=client']).items[0]!.metadata.name;
    asDeveloper = { KUBECONFIG: restrictedKubeconfig(ns.name) };
    // 5 fresh connections of 4 requests each, per line.
    fresh = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-i', '-n', ns.name, client, '--', 'node', '-e', freshScript, 'echo', '80', '5', '4']);
    fresh.stdout!.on('data', (d: Buffer) => { freshOut += d.toString(); });
    await eventually('the fresh caller started', 30_000, () => (freshOut.includes('ready') ? true : undefined));
    for (const d of [C, D]) {
      laptops.push(spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
        ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(d.http), ECHO_GRPC_PORT: String(d.grpc), ECHO_TCP_PORT: String(d.tcp), POD_NAME: d.name,
      }));
    }
  });
  afterAll(async () => {
    for (const d of running) if (d.proc.exitCode === null) await d.stop('SIGINT', 60_000);
    if (fresh && fresh.exitCode === null) fresh.stdin!.end();
    for (const l of laptops) l.kill('SIGTERM');
    ns.remove();
  });

  it(`in ${RUNS} runs, right after each banner a fresh keep-alive connection with the mark reaches the laptop on its first request`, async () => {
    const seen: string[] = [];
    type Answer = Awaited<ReturnType<typeof freshConnections>>;
    const results: { first: Answer; second: Answer; warned: boolean }[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const devC = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${C.http}:80`, '--version-mark', C.mark], asDeveloper);
      running.push(devC);
      await devC.waitFor(/waiting until new connections/, 180_000);
      const waitC = Date.now();
      await devC.waitFor(/Press Ctrl-C to stop/, 60_000);
      const waitedC = Date.now() - waitC;
      const first = await freshConnections({ 'kt-version': C.mark });
      const devD = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${D.http}:80`, '--version-mark', D.mark], asDeveloper);
      running.push(devD);
      await devD.waitFor(/waiting until new connections/, 180_000);
      const waitD = Date.now();
      await devD.waitFor(/Press Ctrl-C to stop/, 60_000);
      const waitedD = Date.now() - waitD;
      const second = await freshConnections({ 'kt-version': D.mark });
      seen.push(`run ${run}: first developer (waited ${waitedC} ms for new connections to go through the router) ${JSON.stringify(first)}, second developer (waited ${waitedD} ms) ${JSON.stringify(second)}`);
      results.push({ first, second, warned: /not confirmed|could not confirm|still listed pods other than the router/.test(devC.output() + devD.output()) });
      expect(await devD.stop('SIGINT')).toBe(0);
      expect(await devC.stop('SIGINT', 60_000)).toBe(0);
      await eventually('nothing of the mesh left', 60_000, () => (objects() === '' ? true : undefined));
    }
    console.log(`mesh: fresh keep-alive connections right after the banner:\n${seen.join('\n')}`);
    for (const r of results) {
      expect(r.first.first).toEqual(Array(5).fill(C.name));
      expect(r.first.pods).toEqual({ [C.name]: 20 });
      expect(r.second.first).toEqual(Array(5).fill(D.name));
      expect(r.second.pods).toEqual({ [D.name]: 20 });
      expect(r.warned).toBe(false);
    }
  });
});

describe('kt-mesh --mode manual', () => {
  const ns = createNamespace('kt-meshman');
  beforeAll(() => deployEcho('echo', ns.name));
  afterAll(() => ns.remove());

  it('adds only a pod with the real pods\' labels plus version, and says what to write Istio rules for', async () => {
    const p = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', '18680:80', '--mode', 'manual', '--version-mark', 'dave']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(p.output()).toContain('label version: dave');
    const labels = kubectl(['get', 'pods', '-n', ns.name, '-l', 'kt.dev/role=shadow', '-o', 'jsonpath={.items[0].metadata.labels}']);
    expect(labels).toContain('"app":"echo"');
    expect(labels).toContain('"version":"dave"');
    expect(kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.selector}'])).toBe('{"app":"echo"}');
    expect(await p.stop('SIGINT')).toBe(0);
    expect(kubectl(['get', 'pods,services,configmaps', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
  });
});

describe('kt-mesh bad input', () => {
  const ns = createNamespace('kt-meshbad');
  beforeAll(() => deployEcho('echo', ns.name));
  afterAll(() => ns.remove());
  const cases: [string, string[], RegExp][] = [
    ['an unknown Service', ['nope', '--expose', '8080'], /service "nope" does not exist/],
    ['a non-HTTP port', ['echo', '--expose', '17070:7070'], /port 7070 \(tcp\) is not HTTP/],
    ['a malformed mark', ['echo', '--expose', '8080:80', '--version-mark', 'x:bad value'], /--version-mark: "bad value" is not a usable version/],
  ];
  it.each(cases)('%s: one sentence, non-zero exit, nothing changed', async (_w, args, message) => {
    const r = await runPlugin('kt-mesh', [...args, '-n', ns.name]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(kubectl(['get', 'pods,services,configmaps', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
    expect(kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.selector}'])).toBe('{"app":"echo"}');
  });

  // The Role, one right short: the error names that right, and everything is undone.
  const short: [string, string, string, string, RegExp][] = [
    ['create on deployments', 'kt-nodeploy', 'resources: [deployments]\n  verbs: [get, list, create, patch, delete]', 'resources: [deployments]\n  verbs: [get, list, patch, delete]', /missing permission: cannot create deployments in namespace/],
    ['watch on configmaps', 'kt-nowatch', 'resources: [configmaps]\n  verbs: [get, list, watch, create, patch, delete]', 'resources: [configmaps]\n  verbs: [get, list, create, patch, delete]', /the router's Role would grant watch configmaps/],
  ];
  it.each(short)('a Role without %s: that right is named, nothing is left', async (_w, sa, from, to, message) => {
    const kubeconfig = restrictedKubeconfig(ns.name, (y) => { expect(y).toContain(from); return y.replace(from, to); }, sa);
    const r = await runPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', '18780:80', '--version-mark', 'erin'], { KUBECONFIG: kubeconfig });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('configmaps (');
    expect(kubectl(['get', 'pods,services,deployments,configmaps,serviceaccounts,roles,rolebindings', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
    expect(kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.selector}'])).toBe('{"app":"echo"}');
  });
});
