// Where a process's CPU went, from a V8 .cpuprofile (node --cpu-prof): the functions with the
// most self time and their share of the busy (non-idle) time, and the same summed per area (ssh2's
// cipher, ssh2's packet handling, the port-forward client, ws, streams, TLS and sockets, GC).
//   node bench/tools/cpuprofile-top.ts FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** The area a function belongs to, from where it is defined. */
export function area(f: CallFrame): string {
  const u = f.url;
  if (f.functionName === '(garbage collector)') return 'garbage collection';
  if (f.functionName === '(program)') return 'V8/native outside JS (program)';
  if (/ssh2\/lib\/protocol\/crypto/.test(u)) return 'ssh2 cipher and MAC';
  if (/ssh2\/lib/.test(u)) return 'ssh2 packets and channels';
  if (/plugins\/tunnel\/(spdy|port-forward)/.test(u)) return 'kt port-forward client (SPDY, framing)';
  if (/node_modules\/ws\//.test(u)) return 'ws (WebSocket framing)';
  if (/node:internal\/crypto/.test(u)) return 'node:crypto (ssh2 AES-GCM, random padding)';
  if (/node:internal\/tls|node:tls|_tls/.test(u)) return 'TLS (node:tls)';
  if (/node:internal\/streams|node:stream/.test(u)) return 'node streams';
  if (/node:net|node:internal\/(net|stream_base_commons)/.test(u)) return 'sockets';
  if (/node:internal\/buffer|node:buffer/.test(u)) return 'Buffer';
  if (u.startsWith('node:')) return 'other Node internals';
  if (u === '') return `native: ${f.functionName || '(anonymous)'}`;
  if (/\/(plugins|runtime|contract)\//.test(u)) return 'kt (other)';
  return 'other';
}

export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    busy += us;
    const file = f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(plugins|runtime|contract)\//, '$1/');
    const key = `${f.functionName || '(anonymous)'}  ${file}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = area(f);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us: number): string => `${((us / busy) * 100).toFixed(1)}%`.padStart(6);
  const ms = (us: number): string => `${(us / 1000).toFixed(0)} ms`.padStart(9);
  const rows = (m: Map<string, number>, n: number): string[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${pct(us)} ${ms(us)}  ${k}`);
  return [
    `busy (non-idle) time ${(busy / 1e6).toFixed(2)} s`,
    '', 'self time by area', ...rows(areas, 20),
    '', `top ${top} functions by self time`, ...rows(fn, top),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top] = process.argv.slice(2);
  if (!file) { console.error('usage: node bench/tools/cpuprofile-top.ts FILE.cpuprofile [TOP]'); process.exit(2); }
  console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(top ?? 25)));
}
