// kubectl kt-status: the kt sessions in the cluster, as a table or as a SessionList (schema.ts).
import { bool, str, type Parsed } from '../cli/cli.ts';
import { listSessions } from './sessions.ts';
import { printSessionList, sessionFromCluster, sessionList } from './schema.ts';
import { kubeFromFlags } from '../session/shadow-session.ts';

export async function runStatus(p: Parsed): Promise<number> {
  const kube = kubeFromFlags(p);
  const all = bool(p, 'all-namespaces');
  const { now, sessions } = await listSessions(kube, { allNamespaces: all });
  const out = str(p, 'output');
  if (sessions.length === 0 && (out === undefined || out === 'wide')) {
    // kubectl says this on stderr, so a script reading the table gets an empty one.
    process.stderr.write(all ? 'No kt sessions found.\n' : `No kt sessions found in namespace ${kube.namespace}.\n`);
    return 0;
  }
  process.stdout.write(printSessionList(sessionList(sessions.map(sessionFromCluster), now), out, { noHeaders: bool(p, 'no-headers'), allNamespaces: all }));
  return 0;
}
