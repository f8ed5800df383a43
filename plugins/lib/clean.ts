// kubectl kt-clean: removes what stale or orphaned sessions left behind, in the cluster and on this
// machine, and never touches a live session of anyone.
import { bool, str, type Parsed } from './cli.ts';
import { UserError } from './errors.ts';
import { apiStatus, type Kube } from './kube.ts';
import { listLocalSessions, processAlive, removeLocalSession } from './local-state.ts';
import { createLogger } from './log.ts';
import { formatDuration, listSessions } from './sessions.ts';
import { kubeFromFlags } from './shadow-session.ts';

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UserError(`"${text}" is not a duration; use e.g. 90s, 5m or 1h.`, 2);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

async function deletePod(kube: Kube, name: string, namespace: string): Promise<void> {
  await kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
  await kube.core.deleteNamespacedSecret({ name, namespace }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
}

export async function runClean(p: Parsed): Promise<number> {
  const log = createLogger({ debug: bool(p, 'debug') });
  const dryRun = bool(p, 'dry-run');
  const olderThan = str(p, 'older-than');
  const kube = kubeFromFlags(p);
  const { sessions } = await listSessions(kube, { allNamespaces: bool(p, 'all-namespaces'), ...(olderThan ? { staleAfterMs: parseDuration(olderThan) } : {}) });
  const verb = dryRun ? 'would delete' : 'deleted';
  let actions = 0;
  // Local changes first: they are found through the local records removed below.
  for (const undo of await localUndoers()) {
    const done = await undo(dryRun);
    for (const line of done) { process.stdout.write(`${line}\n`); actions++; }
  }
  for (const s of sessions) {
    if (s.state === 'healthy') {
      log.debug(`session ${s.id} (${s.kind}, ${s.user}) is live: heartbeat ${formatDuration(s.heartbeatAgeMs)} ago; left alone`);
      continue;
    }
    const why = s.state === 'orphaned' ? 'its process on this machine is gone' : `no heartbeat for ${formatDuration(s.heartbeatAgeMs)}`;
    for (const o of s.objects) {
      if (!dryRun) await deletePod(kube, o.name, o.namespace);
      process.stdout.write(`${verb} ${o.kind.toLowerCase()}/${o.name} and its secret in namespace ${o.namespace} (session ${s.id} of ${s.user}, ${s.kind}: ${why})\n`);
      actions++;
    }
    if (!dryRun) removeLocalSession(s.id);
  }
  // Records of sessions whose process died and whose cluster objects are already gone.
  const clusterIds = new Set(sessions.map((s) => s.id));
  for (const rec of listLocalSessions()) {
    if (processAlive(rec.pid) || clusterIds.has(rec.id)) continue;
    if (!dryRun) removeLocalSession(rec.id);
    process.stdout.write(`${dryRun ? 'would remove' : 'removed'} the local record of session ${rec.id} (process ${rec.pid} is gone)\n`);
    actions++;
  }
  if (actions === 0) process.stdout.write('nothing to clean.\n');
  return 0;
}

/**
 * Local changes of dead sessions (iptables chains, resolver, hosts file), each module undoing its
 * own; listed here so kt-clean finds them all.
 */
async function localUndoers(): Promise<((dryRun: boolean) => Promise<string[]>)[]> {
  const { localCleaners } = await import('./local-cleanup.ts');
  return localCleaners();
}
