// CPU per byte on the laptop: the kt-connect process against `kubectl port-forward` for the same
// bytes to the same pod, download and upload separately, on the local cluster (no emulated link).
//   npm run bench:cpu      (KT_BENCH_RUNS, default 3; KT_BENCH_MIB, default 256 per transfer)
// Each transfer's CPU is the process's user + system time (all threads, /proc/PID/stat) before
// and after it, per GiB moved; throughput is reported beside it as the regression guard.
// KT_BENCH_PROFILE=DIR also runs one more kt-connect per direction under `node --cpu-prof`, writes
// the .cpuprofile files to DIR and prints where the time went (bench/tools/cpuprofile-top.ts).
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cluster, createNamespace, eventually, runInLaptop, spawnInLaptop } from '../test/e2e/cluster.ts';
import { BULK_PORT, deployBulkPod } from './tools/bulk-pod.ts';
import { pluginPid, startPlugin, type RunningPlugin } from '../test/e2e/plugin.ts';
import { summarize } from './tools/cpuprofile-top.ts';

const RUNS = Number(process.env.KT_BENCH_RUNS ?? 3);
const BYTES = Number(process.env.KT_BENCH_MIB ?? 256) * 1024 * 1024;
const PROFILE_DIR = process.env.KT_BENCH_PROFILE;
// Ports of their own in the laptop namespace, clear of the e2e tests' and bench:wan's.
const SOCKS_PORT = 23927;
const PF_PORT = 23928;
const GIB = 1024 ** 3;
const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** User + system CPU seconds of a process, all its threads. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

type Direction = 'download' | 'upload';
interface Sample { cpuPerGiB: number; mibPerSec: number }

const ns = createNamespace('kt-bench-cpu');
const lines: string[] = [];
let pf: ReturnType<typeof spawnInLaptop> | undefined;
let kt: RunningPlugin | undefined;
try {
  const podIp = deployBulkPod(ns.name);
  const transfer = async (d: Direction, via: string[]): Promise<number> => {
    const r = await runInLaptop(process.execPath, ['bench/tools/wan-client.ts', d, String(BYTES), ...via], 600_000);
    if (r.code !== 0) throw new Error(r.stderr || r.stdout);
    return (JSON.parse(r.stdout) as { mibPerSec: number }).mibPerSec;
  };
  const measure = async (pid: number, d: Direction, via: string[]): Promise<Sample> => {
    const c0 = cpuSeconds(pid);
    const mibPerSec = await transfer(d, via);
    return { cpuPerGiB: ((cpuSeconds(pid) - c0) * GIB) / BYTES, mibPerSec };
  };
  const startKt = async (env: Record<string, string> = {}): Promise<{ plugin: RunningPlugin; pid: number }> => {
    const plugin = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', String(SOCKS_PORT), '-n', ns.name], env);
    await plugin.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    return { plugin, pid: pluginPid(plugin.proc.pid!)! };
  };

  pf = spawnInLaptop(cluster.kubectl, ['--kubeconfig', cluster.laptopKubeconfig, '-n', ns.name, 'port-forward', 'pod/bulk', `${PF_PORT}:${BULK_PORT}`]);
  await eventually('port-forward', 20_000, async () => ((await runInLaptop('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${PF_PORT}`])).code === 0 ? true : undefined));
  const pfPid = pluginPid(pf.pid!, (c) => c.includes('port-forward'))!;
  const started = await startKt();
  kt = started.plugin;
  const direct = ['direct', '127.0.0.1', String(PF_PORT)];
  const socks = ['socks', String(SOCKS_PORT), podIp, String(BULK_PORT)];
  // Warm-up: the first bytes through each path pay for JIT compilation.
  await transfer('download', direct);
  await transfer('download', socks);
  const results: Record<Direction, { kt: Sample[]; pf: Sample[] }> = { download: { kt: [], pf: [] }, upload: { kt: [], pf: [] } };
  for (let i = 0; i < RUNS; i++) {
    for (const d of ['download', 'upload'] as const) {
      results[d].pf.push(await measure(pfPid, d, direct));
      results[d].kt.push(await measure(started.pid, d, socks));
      console.error(`run ${i + 1} ${d}: kt ${JSON.stringify(results[d].kt.at(-1))}, port-forward ${JSON.stringify(results[d].pf.at(-1))}`);
    }
  }
  await kt.stop('SIGINT');
  kt = undefined;

  lines.push(`CPU per GiB on the laptop, ${BYTES / 1024 / 1024} MiB per transfer, median of ${RUNS} (LAN, this machine)`, '');
  lines.push('| direction | kt-connect CPU-s/GiB | kubectl port-forward CPU-s/GiB | kt / port-forward | kt MiB/s | port-forward MiB/s | throughput kt / port-forward |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const d of ['download', 'upload'] as const) {
    const k = { cpu: median(results[d].kt.map((s) => s.cpuPerGiB)), mib: median(results[d].kt.map((s) => s.mibPerSec)) };
    const b = { cpu: median(results[d].pf.map((s) => s.cpuPerGiB)), mib: median(results[d].pf.map((s) => s.mibPerSec)) };
    lines.push(`| ${d} | ${k.cpu.toFixed(2)} | ${b.cpu.toFixed(2)} | ${(k.cpu / b.cpu).toFixed(2)} | ${k.mib} | ${b.mib} | ${(k.mib / b.mib).toFixed(2)} |`);
  }

  if (PROFILE_DIR) {
    for (const d of ['download', 'upload'] as const) {
      const dir = join(PROFILE_DIR, d);
      mkdirSync(dir, { recursive: true });
      const p = await startKt({ NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
      kt = p.plugin;
      for (let i = 0; i < RUNS; i++) await transfer(d, socks);
      await kt.stop('SIGINT');
      kt = undefined;
      const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).sort().at(-1);
      if (!file) { lines.push('', `${d}: no profile written`); continue; }
      lines.push('', `## ${d}: kt-connect under --cpu-prof, ${RUNS} x ${BYTES / 1024 / 1024} MiB (${file})`, '');
      lines.push(summarize(JSON.parse(readFileSync(file, 'utf8')) as Parameters<typeof summarize>[0], 25));
    }
  }
} finally {
  if (kt) await kt.stop('SIGINT');
  pf?.kill('SIGTERM');
  ns.remove();
}
console.log(lines.join('\n'));
