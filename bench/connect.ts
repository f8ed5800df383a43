// Benchmarks for kt-connect against baselines measured in the same run, on the local cluster,
// from the laptop namespace (figures are ratios: the machines are noisy).
//   npm run bench:connect
// 1. time to ready: `kubectl kt-connect` start to its ready banner, against the floor: a bare pod's
//    create-to-Ready time.
// 2. bulk throughput and round-trip latency to the echo pod's TCP port through kt-connect's
//    tunnel (socks mode), against raw `kubectl port-forward` to the same pod.
// 3. DNS lookup latency through transparent mode's resolver, cold and cached.
import { execFileSync } from 'node:child_process';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, runInLaptop, spawnInLaptop } from '../test/e2e/cluster.ts';
import { startPlugin } from '../test/e2e/plugin.ts';

const RUNS = Number(process.env.KT_BENCH_RUNS ?? 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ns = createNamespace('kt-bench');
const results: string[] = [];
try {
  kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
  deployEcho('echo', ns.name);
  const pod = kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']).items[0]!.metadata.name;

  // 1. Floor: a bare pod (the pause image, which is always there) from create to Ready.
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `floor-${i}`;
    const t0 = Date.now();
    kubectl(['run', name, '-n', ns.name, '--image=registry.k8s.io/pause:3.10', '--image-pull-policy=Never', '--restart=Never']);
    kubectl(['wait', '--for=condition=Ready', `pod/${name}`, '-n', ns.name, '--timeout=60s']);
    floor.push(Date.now() - t0);
    kubectl(['delete', 'pod', name, '-n', ns.name, '--grace-period=0', '--force', '--wait=false']);
  }
  const ready: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = Date.now();
    const p = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2400', '-n', ns.name]);
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    ready.push(Date.now() - t0);
    await p.stop('SIGINT');
  }
  results.push(`time to ready: kt-connect ${median(ready)} ms, bare pod create-to-Ready ${median(floor)} ms, overhead ${median(ready) - median(floor)} ms (target <= 1500 ms) [median of ${RUNS}]`);

  // 2. Throughput and latency: tunnel against kubectl port-forward, same pod, same tool.
  const pf = spawnInLaptop(cluster.kubectl, ['--kubeconfig', cluster.laptopKubeconfig, '-n', ns.name, 'port-forward', `pod/${pod}`, '27070:7070']);
  const p = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2401', '-n', ns.name]);
  try {
    await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    await eventually('port-forward', 20_000, async () => ((await runInLaptop('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/27070'])).code === 0 ? true : undefined));
    const podIp = kubectl(['get', 'pod', pod, '-n', ns.name, '-o', 'jsonpath={.status.podIP}']);
    type R = { mibPerSec: number; rttMedianMs: number; rttP99Ms: number };
    const run = async (args: string[]): Promise<R> => {
      const r = await runInLaptop(process.execPath, ['bench/tools/tcp-bench.ts', ...args], 300_000);
      if (r.code !== 0) throw new Error(r.stderr || r.stdout);
      return JSON.parse(r.stdout) as R;
    };
    const base: R[] = [];
    const kt: R[] = [];
    for (let i = 0; i < RUNS; i++) {
      base.push(await run(['direct', '127.0.0.1', '27070']));
      kt.push(await run(['socks', '2401', podIp, '7070']));
    }
    const b = { mib: median(base.map((x) => x.mibPerSec)), rtt: median(base.map((x) => x.rttMedianMs)), p99: median(base.map((x) => x.rttP99Ms)) };
    const k = { mib: median(kt.map((x) => x.mibPerSec)), rtt: median(kt.map((x) => x.rttMedianMs)), p99: median(kt.map((x) => x.rttP99Ms)) };
    results.push(`bulk throughput (64 MiB echoed): kt ${k.mib} MiB/s, kubectl port-forward ${b.mib} MiB/s, ratio ${(k.mib / b.mib).toFixed(2)} (target >= 0.80) [median of ${RUNS}]`);
    results.push(`round trip (1 byte): kt median ${k.rtt} ms p99 ${k.p99} ms, kubectl port-forward median ${b.rtt} ms p99 ${b.p99} ms, added median ${(k.rtt - b.rtt).toFixed(3)} ms (target <= 0.5 ms)`);
  } finally {
    await p.stop('SIGINT');
    pf.kill('SIGTERM');
  }

  // 3. DNS: ten Services, asked for the first time, then again.
  for (let i = 0; i < 10; i++) kubectl(['create', 'service', 'clusterip', `dns-${i}`, '-n', ns.name, '--tcp=80:80']);
  const t = startPlugin('kt-connect', ['--mode', 'transparent', '-n', ns.name]);
  try {
    await t.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    const names = Array.from({ length: 10 }, (_, i) => `dns-${i}.${ns.name}.svc.${cluster.clusterDomain}`);
    const r = await runInLaptop(process.execPath, ['bench/tools/dns-bench.ts', '127.0.0.1', ...names]);
    if (r.code !== 0) throw new Error(r.stderr || r.stdout);
    const d = JSON.parse(r.stdout) as { coldMedianMs: number; cachedMedianMs: number; answered: number };
    results.push(`DNS through transparent mode: cold median ${d.coldMedianMs} ms, cached median ${d.cachedMedianMs} ms (${d.answered}/10 answered)`);
  } finally {
    await t.stop('SIGINT');
  }
} finally {
  ns.remove();
}
const machine = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
console.log(`\nkt-connect benchmarks (${new Date().toISOString()}, ${machine}):`);
for (const line of results) console.log(`- ${line}`);
