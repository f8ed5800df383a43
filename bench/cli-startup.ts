// Start-up time of standalone plugin binaries: `BIN --help` run N times each, interleaved so both
// see the same machine load, median and p90 reported, the first binary being the baseline.
//   node bench/cli-startup.ts BASELINE_BIN OTHER_BIN... [--runs 30] [--args "--help"]
// Used to check that a CLI change costs a release binary no more than 10% at start-up.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string', default: '30' }, args: { type: 'string', default: '--help' } },
});
if (positionals.length < 1) {
  process.stderr.write('usage: node bench/cli-startup.ts BASELINE_BIN OTHER_BIN... [--runs 30] [--args "--help"]\n');
  process.exit(2);
}
const runs = Number(values.runs);
const args = values.args.split(' ').filter(Boolean);
const times = new Map<string, number[]>(positionals.map((b) => [b, []]));

function once(bin: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return ms;
}

for (const bin of positionals) once(bin); // warm the page cache
for (let i = 0; i < runs; i++) for (const bin of positionals) times.get(bin)!.push(once(bin));

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const base = pct(times.get(positionals[0]!)!, 0.5);
process.stdout.write(`${'binary'.padEnd(48)} median ms   p90 ms   vs baseline (${runs} runs each, interleaved)\n`);
for (const [bin, xs] of times) {
  const med = pct(xs, 0.5);
  process.stdout.write(`${bin.padEnd(48)} ${med.toFixed(1).padStart(9)} ${pct(xs, 0.9).toFixed(1).padStart(8)}   ${(med / base).toFixed(3)}x\n`);
}
