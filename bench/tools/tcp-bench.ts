// Bulk throughput and round-trip latency against a TCP echo server, reached directly or through a
// SOCKS5 proxy. Run inside the laptop namespace by bench/connect.ts:
//   node tcp-bench.ts direct HOST PORT | socks PROXY_PORT HOST PORT
// Prints {"mibPerSec":…, "rttMedianMs":…, "rttP99Ms":…}.
import { connect, type Socket } from 'node:net';
import { socksConnect } from '../../test/e2e/tools/socks-client.ts';

const args = process.argv.slice(2);
const open = (): Promise<Socket> => (args[0] === 'socks'
  ? socksConnect(Number(args[1]), args[2]!, Number(args[3]))
  : new Promise((resolve, reject) => { const s = connect(Number(args[2]), args[1]!, () => resolve(s)); s.setNoDelay(true); s.once('error', reject); }));

const BULK = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 7);

async function bulk(): Promise<number> {
  const s = await open();
  let got = 0;
  const t0 = performance.now();
  const done = new Promise<void>((resolve) => s.on('data', (d: Buffer) => { got += d.length; if (got >= BULK) resolve(); }));
  let sent = 0;
  while (sent < BULK) {
    if (!s.write(CHUNK)) await new Promise((r) => s.once('drain', r));
    sent += CHUNK.length;
  }
  await done;
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  // Each byte crosses the link twice (there and echoed back): count the payload once.
  return BULK / 1024 / 1024 / secs;
}

async function latency(n = 300): Promise<number[]> {
  const s = await open();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => { s.once('data', () => resolve()); s.write('x'); });
    samples.push(performance.now() - t0);
  }
  s.destroy();
  return samples.sort((a, b) => a - b);
}

await latency(30); // warm-up
const lat = await latency();
const mib = await bulk();
console.log(JSON.stringify({
  mibPerSec: Number(mib.toFixed(1)),
  rttMedianMs: Number(lat[Math.floor(lat.length / 2)]!.toFixed(3)),
  rttP99Ms: Number(lat[Math.floor(lat.length * 0.99)]!.toFixed(3)),
}));
process.exit(0);
