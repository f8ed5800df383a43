// Benchmarks for kt-exchange, against baselines measured in the same run on the local cluster:
//   npm run bench:exchange
// 1. an in-cluster caller's request latency (sequential keep-alive HTTP) and bulk TCP throughput
//    through the exchange to the laptop, against the same caller calling a pod directly;
// 2. time from the command to the first in-cluster request arriving on the laptop.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cluster, createNamespace, deployEcho, eventually, kubectl, kubectlJson, spawnInLaptop } from '../test/e2e/cluster.ts';
import { startPlugin } from '../test/e2e/plugin.ts';

const REQUESTS = Number(process.env.KT_BENCH_REQUESTS ?? 500);
const BULK_MIB = Number(process.env.KT_BENCH_MIB ?? 32);
const ns = createNamespace('kt-bench-ex');
const results: string[] = [];
const laptop = spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
  ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: '18280', ECHO_TCP_PORT: '17270', ECHO_GRPC_PORT: '19290', POD_NAME: 'laptop',
});
try {
  kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
  deployEcho('echo', ns.name);
  deployEcho('client', ns.name);
  const pods = kubectlJson<{ items: { metadata: { name: string; labels: Record<string, string> }; status: { podIP: string } }[] }>(['get', 'pods', '-n', ns.name]).items;
  const client = pods.find((p) => p.metadata.labels.app === 'client')!.metadata.name;
  const echoIp = pods.find((p) => p.metadata.labels.app === 'echo')!.status.podIP;
  const script = readFileSync('bench/tools/incluster-load.js', 'utf8');
  type R = { p50: number; p99: number; mibps: number };
  const load = (url: string, host: string, port: number): R =>
    JSON.parse(kubectl(['exec', '-n', ns.name, client, '--', 'node', '-e', script, url, host, String(port), String(REQUESTS), String(BULK_MIB)])) as R;

  const direct = load(`http://${echoIp}:8080/`, echoIp, 7070);

  // Time to first request: the caller asks every 50 ms, on a new connection each time, from before
  // the command starts, and prints the time it first reaches the laptop (the pod and this process
  // share the machine's clock). A kept-alive connection opened before the exchange stays with the
  // pod it was opened to until it closes: that is how Service routing works, not kt.
  const poller = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-n', ns.name, client, '--', 'node', '-e',
    "setInterval(() => require('http').get('http://echo/', { agent: false, timeout: 1000 }, (r) => { let b = ''; r.on('data', (d) => { b += d; }); r.on('end', () => { if (JSON.parse(b).pod === 'laptop') { console.log('first ' + Date.now()); process.exit(0); } }); }).on('error', (e) => console.log(String(e))), 50); setTimeout(() => process.exit(1), 120000);"]);
  let polled = '';
  poller.stdout.on('data', (d: Buffer) => { polled += d.toString(); });
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', '18280:80,17270:7070']);
  await p.waitFor(/Press Ctrl-C to stop/, 120_000);
  const ready = Date.now() - t0;
  poller.stderr.on('data', (d: Buffer) => { polled += d.toString(); });
  const firstAt = await eventually(`first request on the laptop (poller said: ${polled.slice(-300)})`, 60_000, () => {
    const m = /first (\d+)/.exec(polled);
    return m ? Number(m[1]) : undefined;
  });
  const firstRequest = firstAt - t0;
  const viaKt = load('http://echo/', 'echo', 7070);
  await p.stop('SIGINT');

  results.push(`time to exchange: ready banner ${ready} ms after the command; first in-cluster request on the laptop ${firstRequest} ms after it`);
  results.push(`latency (sequential keep-alive HTTP, ${REQUESTS} requests): through the exchange p50 ${viaKt.p50} ms p99 ${viaKt.p99} ms; pod direct p50 ${direct.p50} ms p99 ${direct.p99} ms; ratio p50 ${(viaKt.p50 / direct.p50).toFixed(1)}x`);
  results.push(`throughput (${BULK_MIB} MiB TCP echo): through the exchange ${viaKt.mibps} MiB/s; pod direct ${direct.mibps} MiB/s; ratio ${(viaKt.mibps / direct.mibps).toFixed(2)}`);
} finally {
  laptop.kill('SIGTERM');
  ns.remove();
}
console.log(`\nkt-exchange benchmarks (${new Date().toISOString()}):`);
for (const r of results) console.log(`- ${r}`);
