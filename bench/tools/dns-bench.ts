// DNS lookup latency on the laptop's resolver address, cold (a name asked for the first time,
// so every cache on the way misses) and cached (the same names again). Run inside the laptop
// namespace by bench/connect.ts and bench/wan.ts:  node dns-bench.ts SERVER[:PORT] NAME...
// Prints {"coldMedianMs":…, "cachedMedianMs":…, "answered":N}.
import { createSocket } from 'node:dgram';

const [serverArg, ...names] = process.argv.slice(2);
const [server, port = '53'] = serverArg!.split(':');

function query(name: string, id: number): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

const sock = createSocket('udp4');
let nextId = 1;
function ask(name: string): Promise<{ ms: number; answers: number }> {
  const id = nextId++;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 5000);
    const onMsg = (m: Buffer): void => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off('message', onMsg);
      resolve({ ms: performance.now() - t0, answers: m.readUInt16BE(6) });
    };
    sock.on('message', onMsg);
    sock.send(query(name, id), Number(port), server);
  });
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cold: number[] = [];
const cached: number[] = [];
let answered = 0;
for (const n of names) {
  const r = await ask(n);
  cold.push(r.ms);
  if (r.answers > 0) answered++;
}
for (let round = 0; round < 5; round++) for (const n of names) cached.push((await ask(n)).ms);
console.log(JSON.stringify({ coldMedianMs: Number(median(cold).toFixed(3)), cachedMedianMs: Number(median(cached).toFixed(3)), answered, names: names.length }));
sock.close();
