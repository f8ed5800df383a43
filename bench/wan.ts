// kt-connect over an emulated WAN: toxiproxy between the laptop namespace and the API server
// (bench/tools/wan-link.ts), one profile after another, each against baselines measured in the
// same run over the same link:
//   npm run bench:wan     (KT_BENCH_RUNS, default 3; KT_BENCH_WAN_PROFILES=0,3 picks profiles by index;
//                          KT_BENCH_ONLY=ready measures time to ready alone)
// - time to ready: `kubectl kt-connect`, `kt-exchange` and `kt-mesh` (first developer: it makes the
//   router) to their ready banner, against a bare pod's create-to-Ready (kubectl run + kubectl
//   wait, from the laptop, through the link), with the round trips each start's --debug counts on
//   its critical path. The plugins run as released: one bundle (images/bundle.ts) on the pinned
//   Node, so the source tree's per-file module loading is not counted;
// - a new connection and its first byte, and one-byte round trips on a kept connection, through
//   kt's SOCKS proxy against `kubectl port-forward` to the same pod;
// - download and upload throughput, separately, 16 MiB each, same two paths;
// - DNS through transparent mode's local server, cold and cached (answered on the laptop).
// Figures are medians, and ratios to the baseline: the machine is shared and noisy.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cluster, createNamespace, deployEcho, eventually, kubectl, runInLaptop, spawnInLaptop } from '../test/e2e/cluster.ts';
import { BULK_PORT, deployBulkPod } from './tools/bulk-pod.ts';
import { pluginPath, startPlugin } from '../test/e2e/plugin.ts';
import { WAN_PROFILES, startWanLink, type WanProfile } from './tools/wan-link.ts';

const RUNS = Number(process.env.KT_BENCH_RUNS ?? 3);
const ONLY_READY = process.env.KT_BENCH_ONLY === 'ready';
const BYTES = 16 * 1024 * 1024;
const FIRST_BYTES = 10;
const ROUND_TRIPS = 30;
// Ports of their own in the laptop namespace, clear of the e2e tests' that may run at the same time.
const SOCKS_PORT = 23917;
const PF_PORT = 23918;
const DNS_PORT = 23953;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratio = (a: number, b: number): string => (a / b).toFixed(2);
const hostIp = execFileSync('bash', ['-c', '. test/cluster/versions.sh; printf %s "$LAPTOP_HOST_IP"'], { encoding: 'utf8' });
const binDir = execFileSync('bash', ['bench/toxiproxy.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const wanted = process.env.KT_BENCH_WAN_PROFILES?.split(',');
const profiles: WanProfile[] = WAN_PROFILES.filter((_, i) => !wanted || wanted.includes(String(i)));

// The plugins as released: each one bundle, run by kubectl through a launcher of its own. The
// folder names match what test/e2e/plugin.ts looks for to stop a plugin.
const bundles = mkdtempSync(join(tmpdir(), 'kt-bench-wan-'));
mkdirSync(join(bundles, 'plugins/cmd'), { recursive: true });
for (const plugin of ['kt-connect', 'kt-exchange', 'kt-mesh']) {
  const out = join(bundles, 'plugins/cmd', `${plugin}.cjs`);
  execFileSync(process.execPath, ['images/bundle.ts', `plugins/cmd/${plugin}.ts`, out], { stdio: 'inherit' });
  const launcher = join(bundles, `kubectl-${plugin.replace('-', '_')}`);
  writeFileSync(launcher, `#!/bin/sh\nexec ${resolve(process.execPath)} -- ${out} "$@"\n`);
  chmodSync(launcher, 0o755);
}
const bundlePath = `${bundles}:${pluginPath}`;

const link = await startWanLink({ binDir, laptopKubeconfig: cluster.laptopKubeconfig, listenHost: hostIp });
const ns = createNamespace('kt-bench-wan');
const tables: string[] = [];
try {
  const podIp = deployBulkPod(ns.name);
  for (let i = 0; i < 10; i++) kubectl(['create', 'service', 'clusterip', `dns-${i}`, '-n', ns.name, '--tcp=80:80']);
  deployEcho('echo', ns.name);
  const env = { KUBECONFIG: link.kubeconfig, PATH: bundlePath };
  const laptopKubectl = (args: string[], timeoutMs = 120_000): Promise<void> => runInLaptop(cluster.kubectl, ['--kubeconfig', link.kubeconfig, '-n', ns.name, ...args], timeoutMs)
    .then((r) => { if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`); });
  const client = async <T>(args: string[]): Promise<T> => {
    const r = await runInLaptop(process.execPath, ['bench/tools/wan-client.ts', ...args], 300_000);
    if (r.code !== 0) throw new Error(r.stderr || r.stdout);
    return JSON.parse(r.stdout) as T;
  };

  for (const profile of profiles) {
    await link.apply(profile);
    console.error(`profile ${profile.name}`);
    const rows: [string, string, string, string][] = [];

    // Time to ready, alternated so that drift on the machine hits all alike.
    const floor: number[] = [];
    const starts = [
      { plugin: 'kt-connect', args: ['--mode', 'socks', '--proxy-port', String(SOCKS_PORT)] },
      { plugin: 'kt-exchange', args: ['echo', '--expose', '18380:80'] },
      { plugin: 'kt-mesh', args: ['echo', '--expose', '18381:80', '--version-mark', 'bench'] },
    ].map((s) => ({ ...s, ms: [] as number[], trips: [] as number[] }));
    for (let i = 0; i < RUNS; i++) {
      const name = `floor-${profile.rttMs}-${profile.mbitPerSec}-${i}`;
      const t0 = Date.now();
      await laptopKubectl(['run', name, `--image=${'registry.k8s.io/pause:3.10'}`, '--image-pull-policy=Never', '--restart=Never']);
      await laptopKubectl(['wait', '--for=condition=Ready', `pod/${name}`, '--timeout=60s']);
      floor.push(Date.now() - t0);
      kubectl(['delete', 'pod', name, '-n', ns.name, '--grace-period=0', '--force', '--wait=false']);
      for (const s of starts) {
        const t1 = Date.now();
        const p = startPlugin(s.plugin, [...s.args, '-n', ns.name, '--debug'], env);
        try {
          await p.waitFor(/Press Ctrl-C to (disconnect|stop)/, 120_000);
          s.ms.push(Date.now() - t1);
          const trips = /(\d+) round trips on the critical path/.exec(p.output())?.[1];
          if (trips) s.trips.push(Number(trips));
          // The start's own account, phase by phase, for reading the table (stderr only).
          console.error(p.output().split('\n').filter((l) => /round trips on the critical path|debug: {3}/.test(l)).join('\n'));
        } finally {
          await p.stop('SIGINT', 60_000);
        }
      }
    }
    const bare = median(floor);
    for (const s of starts) {
      const trips = s.trips.length > 0 ? `, ${median(s.trips)} round trips` : '';
      rows.push([`time to ready, ${s.plugin}`, `${median(s.ms)} ms${trips}`, `${bare} ms (bare pod create-to-Ready)`, `+${median(s.ms) - bare} ms`]);
    }
    if (ONLY_READY) { tables.push(table(profile, rows)); console.error(tables[tables.length - 1]); continue; }

    // The data path: one kt session and one port-forward, both to the bulk pod, both open throughout.
    const pf = spawnInLaptop(cluster.kubectl, ['--kubeconfig', link.kubeconfig, '-n', ns.name, 'port-forward', 'pod/bulk', `${PF_PORT}:${BULK_PORT}`]);
    const kt = startPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', String(SOCKS_PORT), '-n', ns.name], env);
    try {
      await kt.waitFor(/Press Ctrl-C to disconnect/, 120_000);
      await eventually('port-forward', 30_000, async () => ((await runInLaptop('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${PF_PORT}`])).code === 0 ? true : undefined));
      const direct = ['direct', '127.0.0.1', String(PF_PORT)];
      const socks = ['socks', String(SOCKS_PORT), podIp, String(BULK_PORT)];
      type Lat = { medianMs: number; p99Ms: number };
      type Bulk = { mibPerSec: number };
      const fbK = await client<Lat>(['first-byte', String(FIRST_BYTES), ...socks]);
      const fbP = await client<Lat>(['first-byte', String(FIRST_BYTES), ...direct]);
      rows.push(['new connection + first byte', `${fbK.medianMs} ms`, `${fbP.medianMs} ms`, ratio(fbK.medianMs, fbP.medianMs)]);
      const rtK = await client<Lat>(['rtt', String(ROUND_TRIPS), ...socks]);
      const rtP = await client<Lat>(['rtt', String(ROUND_TRIPS), ...direct]);
      rows.push(['kept connection round trip p50 / p99', `${rtK.medianMs} / ${rtK.p99Ms} ms`, `${rtP.medianMs} / ${rtP.p99Ms} ms`, ratio(rtK.medianMs, rtP.medianMs)]);
      for (const way of ['download', 'upload'] as const) {
        const k: number[] = [];
        const b: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          k.push((await client<Bulk>([way, String(BYTES), ...socks])).mibPerSec);
          b.push((await client<Bulk>([way, String(BYTES), ...direct])).mibPerSec);
        }
        rows.push([`${way} (16 MiB)`, `${median(k)} MiB/s`, `${median(b)} MiB/s`, ratio(median(k), median(b))]);
      }
    } finally {
      await kt.stop('SIGINT');
      pf.kill('SIGTERM');
    }

    // DNS: transparent mode with its DNS server on a port of its own, so resolv.conf stays as is.
    // One transparent session per machine: while an e2e test holds it, this row says so.
    const t = startPlugin('kt-connect', ['--mode', 'transparent', '--dns-port', String(DNS_PORT), '-n', ns.name], env);
    try {
      const started = await t.waitFor(/Press Ctrl-C to disconnect/, 120_000).then(() => true, () => false);
      if (!started) {
        rows.push(['DNS lookup, cold / cached', 'not measured', '', `transparent mode did not start: ${t.output().trim().split('\n').pop() ?? ''}`]);
      } else {
        const names = Array.from({ length: 10 }, (_, i) => `dns-${i}.${ns.name}.svc.${cluster.clusterDomain}`);
        const r = await runInLaptop(process.execPath, ['bench/tools/dns-bench.ts', `127.0.0.1:${DNS_PORT}`, ...names]);
        if (r.code !== 0) throw new Error(r.stderr || r.stdout);
        const d = JSON.parse(r.stdout) as { coldMedianMs: number; cachedMedianMs: number; answered: number };
        rows.push(['DNS lookup, cold / cached', `${d.coldMedianMs} / ${d.cachedMedianMs} ms`, '', `${d.answered}/10 answered`]);
      }
    } finally {
      await t.stop('SIGINT');
    }

    tables.push(table(profile, rows));
    console.error(tables[tables.length - 1]);
  }
} finally {
  ns.remove();
  await link.stop();
  rmSync(bundles, { recursive: true, force: true });
}

function table(profile: WanProfile, rows: string[][]): string {
  return [
    `#### ${profile.name}${profile.rttMs === 0 && profile.mbitPerSec === 0 ? ' (the proxy, no toxics)' : ''}`,
    '',
    '| measure | kt | baseline (`kubectl port-forward` unless said) | kt - or / baseline |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
}
const machine = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
console.log(`\nkt over an emulated WAN (${new Date().toISOString()}, ${machine}, toxiproxy ${binDir.split('toxiproxy-').pop()}, median of ${RUNS}):\n`);
console.log(tables.join('\n'));
