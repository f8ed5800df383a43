// kubectl kt-status: the kt sessions in the cluster, as a table or as a SessionList (schema.ts).
import type { Options } from '../cli/cli.ts';
import type { STATUS_FLAGS } from './flags.ts';
import { listSessions } from './sessions.ts';
import { printSessionList, sessionFromCluster, sessionList } from './schema.ts';
import { kubeFromFlags } from '../session/shadow-session.ts';


export async function runStatus(o: Options<typeof STATUS_FLAGS>): Promise<number> {
  const kube = kubeFromFlags(o);
  const all = o.allNamespaces;
  const { now, sessions } = await listSessions(kube, { allNamespaces: all });
  const out = o.output;
  if (sessions.length === 0 && (out === undefined || out === 'wide')) {
    // kubectl says this on stderr, so a script reading the table gets an empty one.
    process.stderr.write(all ? 'No kt sessions found.\n' : `No kt sessions found in namespace ${kube.namespace}.\n`);
    return 0;
  }
  process.stdout.write(printSessionList(sessionList(sessions.map(sessionFromCluster), now), out, { noHeaders: o.noHeaders, allNamespaces: all }));
  return 0;
}
