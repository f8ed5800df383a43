// What the laptop's own configuration looks like, as one string: kt must leave it exactly so after
// every session, whatever way the session ended.
import { readdirSync } from 'node:fs';
import { runInLaptop } from './cluster.ts';

/** iptables, routes, resolv.conf, hosts, any extra files, and the names in kt's state folder. */
export async function laptopState(o: { files?: string[]; stateDir?: string } = {}): Promise<string> {
  const parts = await Promise.all([
    runInLaptop('iptables-save', []),
    runInLaptop('ip', ['route']),
    runInLaptop('cat', ['/etc/resolv.conf']),
    runInLaptop('cat', ['/etc/hosts']),
    ...(o.files ?? []).map((f) => runInLaptop('cat', [f])),
  ]);
  // A table with no rules at all (all policies ACCEPT) is the same as no table: iptables cannot
  // delete a table once something created it.
  const rules = parts[0]!.stdout.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '')
    .split(/(?=^\*)/m).filter((t) => /^-[AN] /m.test(t)).join('');
  const state = o.stateDir ? [readdirSync(o.stateDir).sort().join(',')] : [];
  return [rules, ...parts.slice(1).map((p) => p.stdout), ...state].join('\n----\n');
}
