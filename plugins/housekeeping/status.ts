// kubectl kt-status: a table (or JSON) of the kt sessions in the cluster.
import { bool, str, type Parsed } from '../cli/cli.ts';
import { formatDuration } from '../cli/duration.ts';
import { listSessions } from './sessions.ts';
import { kubeFromFlags } from '../session/shadow-session.ts';

export async function runStatus(p: Parsed): Promise<number> {
  const kube = kubeFromFlags(p);
  const all = bool(p, 'all-namespaces');
  const { now, sessions } = await listSessions(kube, { allNamespaces: all });
  const out = str(p, 'output');
  if (out === 'json') {
    process.stdout.write(`${JSON.stringify({ clusterTime: new Date(now).toISOString(), sessions }, null, 2)}\n`);
    return 0;
  }
  if (sessions.length === 0) {
    process.stdout.write(all ? 'No kt sessions found.\n' : `No kt sessions found in namespace ${kube.namespace}.\n`);
    return 0;
  }
  const wide = out === 'wide';
  const header = [...(all ? ['NAMESPACE'] : []), 'SESSION', 'KIND', 'TARGET', 'USER', 'AGE', 'HEARTBEAT', 'STATE', ...(wide ? ['OBJECTS'] : [])];
  const rows = sessions.map((s) => [
    ...(all ? [s.namespace] : []), s.id, s.kind, s.target, s.user, formatDuration(s.ageMs), `${formatDuration(s.heartbeatAgeMs)} ago`, s.state,
    ...(wide ? [s.objects.map((o) => `${o.kind.toLowerCase()}/${o.name}`).join(',')] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()}\n`);
  return 0;
}
