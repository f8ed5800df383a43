// kt-exchange, kt-preview, kt-status and kt-clean end to end: the plugins run from the laptop
// namespace with the echo server on the laptop; an in-cluster client pod calls the Services.
import { load } from 'js-yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { restrictedKubeconfig } from './rbac.ts';
import { createNamespace, deployEcho, echoManifest, eventually, kubectl, kubectlJson, spawnInLaptop } from './cluster.ts';
import { runPlugin, trackedPlugins } from './plugin.ts';
import { startCaller } from './caller.ts';

// Plugins a failed test leaves running are stopped after it, so one failure does not cascade.
const plugins = trackedPlugins();
const startPlugin = plugins.start;
afterEach(plugins.stopStragglers);

const LAPTOP_HTTP = 18180;
const LAPTOP_TCP = 17170;

describe('kt-exchange, kt-preview, self-healing', () => {
  const ns = createNamespace('kt-exch');
  let client = '';
  let laptopEcho: ChildProcess;

  /** Runs JavaScript in the in-cluster client pod. */
  const inCluster = (js: string): string => kubectl(['exec', '-n', ns.name, client, '--', 'node', '-e', js]).trim();
  const whoAnswers = (url: string): string =>
    inCluster(`fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then(r => r.json()).then(j => console.log(j.pod)).catch(e => console.log('ERR ' + (e.cause?.code ?? e.message)))`);
  const tcpEcho = (host: string, port: number): string =>
    inCluster(`const s = require('net').connect(${port}, ${JSON.stringify(host)}); s.setTimeout(5000, () => { console.log('timeout'); process.exit(1); }); s.on('data', d => { console.log(String(d)); s.destroy(); }); s.on('error', e => console.log('ERR ' + e.code)); s.write('ping-tcp');`);
  const selector = (svc = 'echo'): string => kubectl(['get', 'service', svc, '-n', ns.name, '-o', 'jsonpath={.spec.selector}']);
  const ktObjects = (): string => kubectl(['get', 'pods,secrets,serviceaccounts,roles,rolebindings,services', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    deployEcho('client', ns.name);
    client = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=client']).items[0]!.metadata.name;
    laptopEcho = spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
      ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(LAPTOP_HTTP), ECHO_TCP_PORT: String(LAPTOP_TCP), ECHO_GRPC_PORT: '19190', POD_NAME: 'laptop',
    });
    // A Service answers once kube-proxy has programmed its endpoints, a moment after the rollout.
    await eventually('the echo Service answers in the cluster', 30_000, () => (/^echo-/.test(whoAnswers('http://echo/')) ? true : undefined));
  });
  afterAll(() => {
    laptopEcho.kill('SIGTERM');
    ns.remove();
  });

  it('sends the Service to the laptop on two ports at once, and Ctrl-C gives it back', async () => {
    const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80,${LAPTOP_TCP}:tcp`]);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(selector()).toContain('kt.dev/exchange');
    expect(whoAnswers('http://echo/exchanged')).toBe('laptop');
    expect(tcpEcho('echo', 7070)).toBe('ping-tcp');

    const st = await runPlugin('kt-status', ['-n', ns.name]);
    expect(st.stdout).toMatch(/exchange\s+service\/echo\s+\S+\s+\S+\s+\S+ ago\s+healthy/);

    expect(await p.stop('SIGINT')).toBe(0);
    expect(selector()).toBe('{"app":"echo"}');
    expect(kubectl(['get', 'service', 'echo', '-n', ns.name, '-o', 'jsonpath={.metadata.annotations}'])).not.toContain('kt.dev/');
    expect(whoAnswers('http://echo/back')).toMatch(/^echo-/);
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('says ready only once an in-cluster caller reaches the laptop, and hands back without losing a request (3 runs)', async () => {
    for (let run = 1; run <= 3; run++) {
      const c = await startCaller(ns.name, client, 'http://echo/', { mode: 'poll', intervalMs: 50 });
      const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`]);
      await p.waitFor(/Press Ctrl-C to stop/, 120_000);
      const bannerAt = Date.now();
      expect(p.output()).toContain('connections opened before now (keep-alive, gRPC) stay with the real pods; --recycle-pods moves them');
      await new Promise((r) => setTimeout(r, 1000));
      expect(await p.stop('SIGINT')).toBe(0);
      const r = await c.stop();
      console.log(`ready check, run ${run}: the first request the laptop answered started ${r.first.laptop! - bannerAt} ms after the banner was read; ${r.errors.length} errors of ${r.requests} across the switch on and off`);
      // A request started after the banner never reaches a real pod; one started within a poll
      // interval after it reaches the laptop.
      expect(r.first.laptop).toBeDefined();
      expect(r.first.laptop! - bannerAt).toBeLessThan(150);
      expect(r.errors).toEqual([]);
      expect(selector()).toBe('{"app":"echo"}');
    }
  });

  it('keep-alive callers stay with the real pods, and --recycle-pods moves them to the laptop', async () => {
    for (const recycle of [false, true]) {
      const c = await startCaller(ns.name, client, 'http://echo/', { mode: 'keepalive', intervalMs: 50, maxMs: 90_000 });
      await new Promise((r) => setTimeout(r, 1000));
      const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`, ...(recycle ? ['--recycle-pods'] : [])]);
      await p.waitFor(/Press Ctrl-C to stop/, 120_000);
      expect(p.output()).toContain(recycle ? 'the real pods are restarting, so kept-alive callers reconnect here' : 'stay with the real pods; --recycle-pods moves them');
      const bannerAt = Date.now();
      // Long enough for the restarted pods to close their connections (echo's grace is 2 s).
      await new Promise((r) => setTimeout(r, recycle ? 15_000 : 8000));
      expect(await p.stop('SIGINT')).toBe(0);
      const r = await c.stop();
      console.log(`keep-alive caller, ${recycle ? 'with' : 'without'} --recycle-pods: ${JSON.stringify(r.pods)}, ${r.errors.length} errors${r.first.laptop ? `, first on the laptop ${r.first.laptop - bannerAt} ms after the banner` : ''}`);
      if (recycle) expect(r.pods.laptop ?? 0).toBeGreaterThan(0);
      else expect(r.pods.laptop ?? 0).toBe(0);
      kubectl(['rollout', 'status', 'deployment/echo', '-n', ns.name, '--timeout=60s']);
      expect(whoAnswers('http://echo/back')).toMatch(/^echo-/);
    }
  });

  it('refuses a second exchange of the same Service, naming who holds it', async () => {
    const first = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`]);
    await first.waitFor(/Press Ctrl-C to stop/, 120_000);
    const second = await runPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`]);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/service\/echo is already exchanged by \S+ \(session [0-9a-f]{10}, for \d+s\)/);

    // A reset while exchanged (what kubectl apply or a Helm upgrade does) is pointed back.
    kubectl(['apply', '-f', '-'], echoManifest('echo', ns.name));
    await first.waitFor(/was reset while exchanged; pointed it back/, 30_000);
    await eventually('pointed back', 15_000, () => (whoAnswers('http://echo/after-reset') === 'laptop' ? true : undefined));
    expect(await first.stop('SIGINT')).toBe(0);
    expect(selector()).toBe('{"app":"echo"}');
  });

  it('refuses callers at once when nothing listens on the laptop, and says so', async () => {
    const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', '18999:80']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    const t0 = Date.now();
    expect(whoAnswers('http://echo/nobody')).toMatch(/^ERR /);
    expect(Date.now() - t0).toBeLessThan(4000);
    await p.waitFor(/nothing listens on localhost:18999/, 10_000);
    await p.stop('SIGINT');
  });

  it('restores itself after the plugin is SIGKILLed, within the grace period plus 30 s (with only the documented Role)', async () => {
    const p = startPlugin('kt-exchange', ['echo', '--kubeconfig', restrictedKubeconfig(ns.name), '--expose', `${LAPTOP_HTTP}:80`, '--recover-after', '15s']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(p.output()).not.toContain('self-healing is off');
    expect(whoAnswers('http://echo/x')).toBe('laptop');
    const t0 = Date.now();
    await p.stop('SIGKILL');
    await eventually('the Service restored by the cluster', 45_000, () => (selector() === '{"app":"echo"}' ? true : undefined));
    await eventually('no kt objects', 45_000 - (Date.now() - t0), () => (ktObjects() === '' ? true : undefined));
    const took = Date.now() - t0;
    console.log(`self-healing: Service restored and kt objects gone ${took} ms after SIGKILL (grace 15 s)`);
    expect(took).toBeLessThan(45_000);
    expect(whoAnswers('http://echo/healed')).toMatch(/^echo-/);
  });

  it('scale mode scales the Deployment to zero and restores its replica count', async () => {
    kubectl(['scale', 'deployment/echo', '-n', ns.name, '--replicas=2']);
    kubectl(['rollout', 'status', 'deployment/echo', '-n', ns.name, '--timeout=60s']);
    const p = startPlugin('kt-exchange', ['deployment/echo', '--mode', 'scale', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`]);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(kubectl(['get', 'deployment', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.replicas}'])).toBe('0');
    await eventually('laptop answers', 20_000, () => (whoAnswers('http://echo/scaled') === 'laptop' ? true : undefined));
    expect(await p.stop('SIGINT')).toBe(0);
    expect(kubectl(['get', 'deployment', 'echo', '-n', ns.name, '-o', 'jsonpath={.spec.replicas}'])).toBe('2');
    // The shadow went only once the real pods were Ready and in the Service's endpoints.
    expect(p.output()).toContain("scaled deployment/echo back to 2 (its pods Ready and in service/echo's endpoints)");
    expect(kubectl(['get', 'deployment', 'echo', '-n', ns.name, '-o', 'jsonpath={.status.readyReplicas}'])).toBe('2');
    await eventually('real pods answer', 30_000, () => (/^echo-/.test(whoAnswers('http://echo/')) ? true : undefined));
  });

  it('scale mode heals itself after a SIGKILL: the shadow goes only once the real pods are Ready (with only the documented Role)', async () => {
    const field = (path: string): string => kubectl(['get', 'deployment', 'echo', '-n', ns.name, '-o', `jsonpath={${path}}`]);
    const replicas = field('.spec.replicas');
    const p = startPlugin('kt-exchange', ['deployment/echo', '--mode', 'scale', '--kubeconfig', restrictedKubeconfig(ns.name, (y) => y, 'kt-dev-scale'), '--expose', `${LAPTOP_HTTP}:80`, '--recover-after', '10s']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    expect(p.output()).not.toContain('self-healing is off');
    const shadow = `kt-exchange-${p.output().match(/session ([0-9a-f]{10})/)![1]!}`;
    await p.stop('SIGKILL');
    let readyAt = 0;
    await eventually('the shadow gone', 60_000, () => {
      if (!readyAt && field('.spec.replicas') === replicas && field('.status.readyReplicas') === replicas) readyAt = Date.now();
      return kubectl(['get', 'pods', '-n', ns.name, '-o', 'name']).includes(`pod/${shadow}`) ? undefined : true;
    });
    const goneAt = Date.now();
    console.log(`scale-mode self-healing: real pods Ready ${readyAt ? `${goneAt - readyAt} ms before the shadow was seen gone` : 'not before the shadow was gone'}`);
    expect(readyAt).toBeGreaterThan(0);
    expect(field('.spec.replicas')).toBe(replicas);
    expect(field('.metadata.annotations')).not.toContain('kt.dev/');
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });

  it('kt-preview publishes the laptop as a new Service, reachable by name, gone after exit', async () => {
    const p = startPlugin('kt-preview', ['mine', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:8080`]);
    await p.waitFor(/Press Ctrl-C to remove it/, 120_000);
    expect(whoAnswers(`http://mine.${ns.name}:8080/preview`)).toBe('laptop');
    const st = await runPlugin('kt-status', ['-n', ns.name, '-o', 'json']);
    const list = JSON.parse(st.stdout) as { kind: string; items: { spec: { type: string; target: string }; status: { state: string } }[] };
    expect(list.kind).toBe('SessionList');
    expect(list.items).toContainEqual(expect.objectContaining({ spec: expect.objectContaining({ type: 'preview', target: 'service/mine' }), status: expect.objectContaining({ state: 'healthy' }) }));
    // -o yaml is the same SessionList, parsed back.
    const asYaml = load((await runPlugin('kt-status', ['-n', ns.name, '-o', 'yaml'])).stdout) as typeof list & { apiVersion: string };
    expect(asYaml.apiVersion).toBe('kt.dev/v1');
    expect(asYaml.items.map((i) => i.spec)).toEqual(list.items.map((i) => i.spec));
    const taken = await runPlugin('kt-preview', ['echo', '-n', ns.name, '--expose', '18181']);
    expect(taken.stderr).toContain('service "echo" already exists');
    expect(await p.stop('SIGINT')).toBe(0);
    expect(kubectl(['get', 'services', '-n', ns.name, '-o', 'name'])).not.toContain('service/mine');
  });

  it('a killed preview is removed by the cluster itself', async () => {
    const p = startPlugin('kt-preview', ['gone', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:8080`, '--recover-after', '10s']);
    await p.waitFor(/Press Ctrl-C to remove it/, 120_000);
    const t0 = Date.now();
    await p.stop('SIGKILL');
    await eventually('preview removed', 40_000, () => (kubectl(['get', 'services', '-n', ns.name, '-o', 'name']).includes('service/gone') ? undefined : true));
    await eventually('no kt objects', 40_000, () => (ktObjects() === '' ? true : undefined));
    expect(Date.now() - t0).toBeLessThan(40_000);
  });

  it('kt-status marks a killed session orphaned; kt-clean --dry-run lists exactly what kt-clean then does', async () => {
    const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`, '--recover-after', '10m']);
    await p.waitFor(/Press Ctrl-C to stop/, 120_000);
    const id = p.output().match(/session ([0-9a-f]{10})/)![1]!;
    await p.stop('SIGKILL');
    const st = await runPlugin('kt-status', ['-n', ns.name]);
    expect(st.stdout).toMatch(new RegExp(`${id}\\s+exchange\\s+service/echo\\s+.*orphaned`));
    const dry = await runPlugin('kt-clean', ['--dry-run', '-n', ns.name]);
    const wanted = [`would restore the selector of service/echo (session ${id}`, `would delete pod/kt-exchange-${id}`];
    for (const w of wanted) expect(dry.stdout).toContain(w);
    expect(selector()).toContain('kt.dev/exchange');
    const clean = await runPlugin('kt-clean', ['-n', ns.name]);
    expect(clean.stdout).toContain(`restored the selector of service/echo (session ${id}`);
    expect(clean.stdout).toContain(`deleted pod/kt-exchange-${id}`);
    expect(selector()).toBe('{"app":"echo"}');
    await eventually('no kt objects', 30_000, () => (ktObjects() === '' ? true : undefined));
  });
});

describe('kt-exchange and kt-preview bad input', () => {
  const ns = createNamespace('kt-exbad');
  beforeAll(async () => {
    deployEcho('echo', ns.name);
    kubectl(['create', 'service', 'clusterip', 'noselector', '-n', ns.name, '--tcp=80:80']);
    kubectl(['patch', 'service', 'noselector', '-n', ns.name, '--type=json', '-p=[{"op":"remove","path":"/spec/selector"}]']);
    // A second Service over the same pods: scale mode must refuse the Deployment.
    kubectl(['create', 'service', 'clusterip', 'echo-b', '-n', ns.name, '--tcp=81:8080']);
    kubectl(['patch', 'service', 'echo-b', '-n', ns.name, '-p', '{"spec":{"selector":{"app":"echo"}}}']);
  });
  afterAll(() => ns.remove());

  const cases: [string, string[], RegExp][] = [
    ['an unknown Service', ['kt-exchange', 'nope', '--expose', '8080'], /service "nope" does not exist/],
    ['a Service without a selector', ['kt-exchange', 'noselector', '--expose', '8080:80'], /service\/noselector has no selector/],
    ['a Deployment with several Services in scale mode', ['kt-exchange', 'deployment/echo', '--mode', 'scale', '--expose', '8080'], /several Services select the pods of deployment\/echo|scale mode would take over every Service/],
    ['a port the Service does not have', ['kt-exchange', 'echo', '--expose', '8080:81'], /service\/echo has no port "81" \(its ports: http 80->http/],
    ['a malformed --expose', ['kt-exchange', 'echo', '--expose', '80a80'], /--expose: local port "80a80" is not a port number/],
    ['a missing --expose', ['kt-exchange', 'echo'], /--expose is required/],
    ['a preview name that is not a Service name', ['kt-preview', 'Not_A_Name', '--expose', '8080'], /"Not_A_Name" is not a valid Service name/],
  ];
  it.each(cases)('%s: one sentence, non-zero exit, nothing changed', async (_what, args, message) => {
    const [plugin, ...rest] = args as [string, ...string[]];
    const before = kubectl(['get', 'services,deployments', '-n', ns.name, '-o', 'yaml']).replace(/resourceVersion: .*/g, '');
    const r = await runPlugin(plugin, [...rest, '-n', ns.name]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
    expect(kubectl(['get', 'services,deployments', '-n', ns.name, '-o', 'yaml']).replace(/resourceVersion: .*/g, '')).toBe(before);
  });
});
