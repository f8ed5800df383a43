// kubectl kt-clean: removes what stale or orphaned sessions left behind, in the cluster and on this
// machine, and never touches a live session of anyone.
import type { Options } from '../cli/cli.ts';
import type { CLEAN_FLAGS } from './flags.ts';
import { apiStatus, type Kube } from '../kube/kube.ts';
import { localCleaners } from './local-cleanup.ts';
import { listLocalSessions, processAlive, removeLocalSession } from '../session/local-state.ts';
import { createLogger } from '../cli/log.ts';
import { parseLock, runRecovery } from '../../contract/recovery.ts';
import type { RecoveryStep } from '../../contract/index.ts';
import { recoveryApi, appsApi } from '../kube/recovery-api.ts';
import { lockIsLive } from '../session/service-lock.ts';
import { formatDuration } from '../cli/duration.ts';
import { listSessions, type ClusterSession } from './sessions.ts';
import { kubeFromFlags } from '../session/shadow-session.ts';


async function deletePod(kube: Kube, name: string, namespace: string): Promise<void> {
  await kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
  await kube.core.deleteNamespacedSecret({ name, namespace }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
}


export async function runClean(o: Options<typeof CLEAN_FLAGS>): Promise<number> {
  const log = createLogger({ debug: o.debug });
  const dryRun = o.dryRun;
  const olderThan = o.olderThan;
  const kube = kubeFromFlags(o);
  const { sessions } = await listSessions(kube, { allNamespaces: o.allNamespaces, ...(olderThan !== undefined ? { staleAfterMs: olderThan } : {}) });
  let actions = 0;
  // Local changes first: they are found through the local records removed below.
  for (const undo of localCleaners()) {
    const done = await undo(dryRun);
    for (const line of done) { process.stdout.write(`${line}\n`); actions++; }
  }
  for (const s of sessions) {
    if (s.state === 'healthy') {
      log.debug(`session ${s.id} (${s.kind}, ${s.user}) is live: heartbeat ${formatDuration(s.heartbeatAgeMs)} ago; left alone`);
      continue;
    }
    const r = await cleanSession(kube, s, dryRun);
    for (const line of r.done) { process.stdout.write(`${line}\n`); actions++; }
    for (const w of r.warnings) log.warn(w);
  }
  // Services and Deployments still held by sessions whose pods are gone altogether.
  actions += await releaseDeadLocks(kube, dryRun, new Set(sessions.filter((x) => x.state === 'healthy').map((x) => x.id)));
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
 * Undoes one stale or orphaned session, as kt-clean does (kt-dashboard's clean action runs this
 * too): its recovery plans first, then its pods and their Secrets, then its local record. What was
 * (or, dry, would be) done comes back one sentence each; a plan that cannot be read or fully run
 * keeps the pods, and so the plan, for a later try.
 */
export async function cleanSession(kube: Kube, s: ClusterSession, dryRun: boolean): Promise<{ done: string[]; warnings: string[] }> {
  const done: string[] = [];
  const warnings: string[] = [];
  const verb = dryRun ? 'would delete' : 'deleted';
  const why = s.state === 'orphaned' ? 'its process on this machine is gone' : `no heartbeat for ${formatDuration(s.heartbeatAgeMs)}`;
  // A plan this kt cannot read (or a step it cannot run) is never skipped: the pod that carries it
  // stays, so a kt that knows it (or the shadow's watchdog) can still undo the session.
  if (s.planErrors.length > 0) {
    for (const e of s.planErrors) warnings.push(`session ${s.id} of ${s.user}: cannot read what it changed (${e}); left it for a kt release that can`);
    return { done, warnings };
  }
  let undoFailed = false;
  // Undo what the session changed (its plan travels in its shadow pod) before removing the pod.
  for (const plan of s.plans) {
    if (dryRun) {
      for (const step of plan.steps) done.push(`would ${describeStep(step)} (session ${s.id} of ${s.user}: ${why})`);
      continue;
    }
    const r = await runRecovery(plan, recoveryApi(kube));
    for (const d of r.done) done.push(`${d} (session ${s.id} of ${s.user}: ${why})`);
    for (const f of r.failed) warnings.push(`could not undo for session ${s.id}: ${f}`);
    undoFailed ||= r.failed.length > 0;
  }
  if (undoFailed) {
    warnings.push(`session ${s.id}: its shadow pod is kept, with its plan, until the rest can be undone; run kubectl kt-clean again`);
    return { done, warnings };
  }
  for (const o of s.objects) {
    if (!dryRun) await deletePod(kube, o.name, o.namespace);
    done.push(`${verb} ${o.kind.toLowerCase()}/${o.name} and its secret in namespace ${o.namespace} (session ${s.id} of ${s.user}, ${s.kind}: ${why})`);
  }
  if (!dryRun) removeLocalSession(s.id);
  return { done, warnings };
}

function describeStep(step: RecoveryStep): string {
  switch (step.op) {
    case 'restore-selector': return `restore the selector of service/${step.service}`;
    case 'restore-replicas': return `scale deployment/${step.deployment} back`;
    case 'delete': return `delete ${step.kind.toLowerCase()}/${step.name}`;
    case 'remove-route': return `remove the session's routes from configmap/${step.configMap}`;
    case 'unmesh-if-idle': return `restore service/${step.service} and remove its router if no developer is left`;
  }
}

async function releaseDeadLocks(kube: Kube, dryRun: boolean, live: Set<string>): Promise<number> {
  let n = 0;
  const svcs = await kube.core.listNamespacedService({ namespace: kube.namespace }).catch(() => undefined);
  for (const svc of svcs?.items ?? []) {
    const lock = parseLock(svc.metadata?.annotations);
    if (!lock || live.has(lock.session) || await lockIsLive(kube, lock)) continue;
    const plan = { session: lock.session, namespace: kube.namespace, steps: [{ op: 'restore-selector' as const, service: svc.metadata!.name! }] };
    if (!dryRun) await runRecovery(plan, recoveryApi(kube));
    process.stdout.write(`${dryRun ? 'would restore' : 'restored'} the selector of service/${svc.metadata!.name} (left by session ${lock.session} of ${lock.user}, whose pods are gone)\n`);
    n++;
  }
  const deps = await appsApi(kube).listNamespacedDeployment({ namespace: kube.namespace }).catch(() => undefined);
  for (const d of deps?.items ?? []) {
    const lock = parseLock(d.metadata?.annotations);
    if (!lock || live.has(lock.session) || await lockIsLive(kube, lock)) continue;
    const plan = { session: lock.session, namespace: kube.namespace, steps: [{ op: 'restore-replicas' as const, deployment: d.metadata!.name! }] };
    if (!dryRun) await runRecovery(plan, recoveryApi(kube));
    process.stdout.write(`${dryRun ? 'would scale' : 'scaled'} deployment/${d.metadata!.name} back (left by session ${lock.session} of ${lock.user}, whose pods are gone)\n`);
    n++;
  }
  return n;
}
