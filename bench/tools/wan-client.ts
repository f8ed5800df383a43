// Connection costs and one-way throughput to bench/tools/bulk-server.js in a pod, reached directly
// (a `kubectl port-forward`) or through kt-connect's SOCKS proxy. Run inside the laptop namespace
// by bench/wan.ts:
//   node wan-client.ts MEASURE N direct HOST PORT | MEASURE N socks PROXY_PORT HOST PORT
// MEASURE: first-byte (N new connections, one byte each way), rtt (N one-byte round trips on one
// connection), download or upload (N bytes). Prints {"medianMs":…, "p99Ms":…} or {"mibPerSec":…}.
import { connect, type Socket } from 'node:net';
import { socksConnect } from '../../test/e2e/tools/socks-client.ts';

const [measure, countArg, via, ...target] = process.argv.slice(2);
const count = Number(countArg);
const open = (): Promise<Socket> => (via === 'socks'
  ? socksConnect(Number(target[0]), target[1]!, Number(target[2]))
  : new Promise((resolve, reject) => { const s = connect(Number(target[1]), target[0]!, () => resolve(s)); s.once('error', reject); }));

const reply = (s: Socket): Promise<Buffer> => new Promise((resolve, reject) => {
  s.once('data', resolve);
  s.once('error', reject);
});
const quantile = (xs: number[], q: number): number => Number([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!.toFixed(2));
const header = (mode: 'D' | 'U', n: number): Buffer => {
  const b = Buffer.alloc(9);
  b.write(mode);
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
};

let out: Record<string, number>;
if (measure === 'first-byte' || measure === 'rtt') {
  const samples: number[] = [];
  const kept = measure === 'rtt' ? await open() : undefined;
  kept?.setNoDelay(true);
  if (kept) { kept.write('x'); await reply(kept); } // warm-up
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const s = kept ?? await open();
    s.setNoDelay(true);
    s.write('x');
    await reply(s);
    samples.push(performance.now() - t0);
    if (!kept) s.destroy();
  }
  kept?.destroy();
  out = { medianMs: quantile(samples, 0.5), p99Ms: quantile(samples, 0.99), samples: samples.length };
} else if (measure === 'download' || measure === 'upload') {
  const s = await open();
  const t0 = performance.now();
  if (measure === 'download') {
    let got = 0;
    s.write(header('D', count));
    await new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => { got += d.length; });
      s.once('end', () => (got === count ? resolve() : reject(new Error(`got ${got} of ${count} bytes`))));
      s.once('error', reject);
    });
  } else {
    const chunk = Buffer.alloc(256 * 1024, 7);
    const ack = reply(s);
    s.write(header('U', count));
    for (let sent = 0; sent < count; sent += chunk.length) {
      const piece = count - sent >= chunk.length ? chunk : chunk.subarray(0, count - sent);
      if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
    }
    await ack;
  }
  out = { mibPerSec: Number((count / 1024 / 1024 / ((performance.now() - t0) / 1000)).toFixed(2)) };
  s.destroy();
} else {
  throw new Error(`unknown measure ${String(measure)}`);
}
console.log(JSON.stringify(out));
process.exit(0);
