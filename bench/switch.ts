// Requests lost at the moments kt moves a Service's traffic, on the local cluster:
//   npm run bench:switch            (KT_BENCH_RUNS=5 by default)
// An in-cluster caller polls the Service every 50 ms, each request on a new connection, across
// each switch: kt-exchange selector mode on and off, scale mode on and off, kt-mesh's first join
// and last leave; and a 20 s keep-alive load (8 pooled connections, back to back) across the last
// mesh leave; then scale mode again with real pods that linger 1 s on SIGTERM (a preStop sleep).
// Each switch is run KT_BENCH_RUNS times; the target is 0 errors in every run. KT_BENCH_ONLY
// picks cases: selector, scale, mesh, keepalive, scale-prestop.
import { startCaller, type Caller, type CallerResult as Result } from '../test/e2e/caller.ts';
import { createNamespace, deployEcho, eventually, kubectl, kubectlJson, spawnInLaptop } from '../test/e2e/cluster.ts';
import { startPlugin, type RunningPlugin } from '../test/e2e/plugin.ts';

const RUNS = Number(process.env.KT_BENCH_RUNS ?? 5);
const POLL_MS = 50;
const KEEPALIVE_S = 20;
// Ports no e2e test uses, so a test running beside the bench never answers in its place.
const LAPTOP_HTTP = 18880;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const ns = createNamespace('kt-bench-sw');
const laptop = spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
  ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(LAPTOP_HTTP), ECHO_TCP_PORT: '17870', ECHO_GRPC_PORT: '19870', POD_NAME: 'laptop',
});
let laptopLog = '';
laptop.stdout!.on('data', (d: Buffer) => { if (laptopLog.length < 4096) laptopLog += d.toString(); });
laptop.stderr!.on('data', (d: Buffer) => { laptopLog += d.toString(); });
laptop.on('exit', (code) => { console.log(`the laptop's echo server exited (${code}): ${laptopLog.slice(-500)}`); process.exitCode = 1; });
const table: Record<string, Result[]> = {};
const note = (what: string, r: Result): void => {
  (table[what] ??= []).push(r);
  const pods = Object.entries(r.pods).map(([p, n]) => `${p.replace(/-[a-z0-9]+-[a-z0-9]+$/, '-*')}:${n}`).join(' ');
  console.log(`  ${what}: ${r.errors.length} errors of ${r.requests} (${pods})${r.errors.length ? ` ${JSON.stringify(r.errors.slice(0, 5))}` : ''}`);
};

let client = '';
const caller = (mode: 'poll' | 'keepalive', maxMs = 180_000): Promise<Caller> =>
  startCaller(ns.name, client, `http://echo.${ns.name}/`, { mode, intervalMs: mode === 'poll' ? POLL_MS : 0, concurrency: 8, maxMs });

/** One switch on and off: the caller runs across each, from 1.5 s before to 2 s after. */
async function onOff(name: string, plugin: string, args: string[]): Promise<void> {
  let c = await caller('poll');
  await sleep(1500);
  const p = startPlugin(plugin, args);
  await p.waitFor(/Press Ctrl-C to stop/, 120_000);
  await sleep(2000);
  note(`${name} on`, await c.stop());
  c = await caller('poll');
  await sleep(1500);
  await stopPlugin(p);
  await sleep(2000);
  note(`${name} off`, await c.stop());
}

async function stopPlugin(p: RunningPlugin): Promise<void> {
  const code = await p.stop('SIGINT', 120_000);
  if (code !== 0) throw new Error(`plugin exited ${code}:\n${p.output()}`);
  const warnings = p.output().split('\n').filter((l) => /warn|could not|nothing listens/i.test(l));
  if (warnings.length > 0) console.log(`  plugin warnings: ${warnings.join(' | ')}`);
}

// Also until the replaced pods are gone: a rollout's old pods still stopping (after the preStop
// patch) cost the next run's caller errors that are not the switch's.
const settle = async (): Promise<void> => {
  kubectl(['rollout', 'status', 'deployment/echo', '-n', ns.name, '--timeout=120s']);
  const want = Number(kubectl(['get', 'deployment/echo', '-n', ns.name, '-o', 'jsonpath={.spec.replicas}']));
  await eventually('only the rolled-out echo pods left', 60_000, () => (kubectlJson<{ items: unknown[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']).items.length === want ? true : undefined));
};

try {
  kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
  deployEcho('echo', ns.name, 2);
  deployEcho('client', ns.name);
  client = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=client']).items[0]!.metadata.name;
  const expose = ['-n', ns.name, '--expose', `${LAPTOP_HTTP}:80`];
  const only = process.env.KT_BENCH_ONLY?.split(',');
  const want = (what: string): boolean => !only || only.includes(what);
  await eventually('the laptop echo server listening', 10_000, () => (laptopLog.includes('echo listening') ? true : undefined));
  for (let run = 1; run <= RUNS; run++) {
    console.log(`run ${run} of ${RUNS}`);
    if (want('selector')) { await onOff('exchange selector', 'kt-exchange', ['echo', ...expose]); await settle(); }
    if (want('scale')) { await onOff('exchange scale', 'kt-exchange', ['deployment/echo', '--mode', 'scale', ...expose]); await settle(); }
    if (want('mesh')) { await onOff('mesh (first join, last leave)', 'kt-mesh', ['echo', ...expose, '--version-mark', 'alice']); await settle(); }
    if (want('keepalive')) {
      // The keep-alive load starts with the mesh up and runs 20 s; the developer leaves after 5 s.
      const p = startPlugin('kt-mesh', ['echo', ...expose, '--version-mark', 'alice']);
      await p.waitFor(/Press Ctrl-C to stop/, 120_000);
      await sleep(1000);
      const c = await caller('keepalive', KEEPALIVE_S * 1000);
      await sleep(5000);
      await stopPlugin(p);
      note(`mesh last leave, ${KEEPALIVE_S} s keep-alive load`, await c.done);
      await settle();
    }
  }
  if (want('scale-prestop')) {
    // Scale mode's start stops the real pods only once callers are no longer sent to them, so
    // echo, which stops accepting at SIGTERM, loses nothing; pods that linger 1 s first (a preStop
    // sleep) must lose nothing either (their slower stop must not open another gap).
    kubectl(['patch', 'deployment/echo', '-n', ns.name, '--type=json', '-p',
      '[{"op":"add","path":"/spec/template/spec/containers/0/lifecycle","value":{"preStop":{"sleep":{"seconds":1}}}}]']);
    await settle();
    for (let run = 1; run <= RUNS; run++) {
      console.log(`run ${run} of ${RUNS} (pods with a 1 s preStop sleep)`);
      await onOff('exchange scale, pods linger 1 s', 'kt-exchange', ['deployment/echo', '--mode', 'scale', ...expose]);
      await settle();
    }
  }
} finally {
  laptop.removeAllListeners('exit');
  laptop.kill('SIGTERM');
  ns.remove();
}

console.log(`\nkt switch benchmark (${new Date().toISOString()}): errors seen by an in-cluster caller, per run (target 0)`);
for (const [what, rs] of Object.entries(table)) {
  const errs = rs.map((r) => r.errors.length);
  console.log(`- ${what}: errors per run [${errs.join(', ')}], total ${errs.reduce((a, b) => a + b, 0)} of ${rs.reduce((a, r) => a + r.requests, 0)} requests`);
}
