// Finding kt sessions in the cluster: every object kt created carries the session label, so a
// session is the set of objects sharing it. Its state is judged by the cluster's clock (the
// heartbeat's managedFields time against the API server's Date header) and, for sessions started
// on this machine, by whether their process is still alive.
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { ANNOTATION, LABEL, ROLE, SHADOW_ENV, STALE_AFTER_MS, type RecoveryPlan } from '../../contract/index.ts';
import { lastHeartbeat } from '../session/heartbeat.ts';
import { call, clusterNow, type Kube } from '../kube/kube.ts';
import { listLocalSessions, processAlive, type LocalSession } from '../session/local-state.ts';
import { allKtSelector } from '../session/session.ts';
import { parseRecoveryPlan } from '../../contract/documents.ts';

export type SessionState = 'healthy' | 'stale' | 'orphaned';

export interface ClusterSession {
  id: string;
  kind: string;
  namespace: string;
  user: string;
  target: string;
  createdAt: number;
  lastHeartbeat: number;
  ageMs: number;
  heartbeatAgeMs: number;
  state: SessionState;
  /** connect: its mode (from the local record); exchange: selector or scale. */
  mode?: string;
  objects: { kind: string; name: string; namespace: string }[];
  /** What the session changed, from its shadow pod (see RecoveryPlan). */
  plans: RecoveryPlan[];
  /** Plans found but not readable by this kt (a newer contract, a damaged pod): why, one each. */
  planErrors: string[];
}

export interface ListOptions {
  allNamespaces: boolean;
  staleAfterMs?: number;
}

function key(o: KubernetesObject): string | undefined {
  return o.metadata?.labels?.[LABEL.session];
}

export async function listSessions(kube: Kube, o: ListOptions): Promise<{ now: number; sessions: ClusterSession[] }> {
  const now = await clusterNow(kube);
  const pods: V1Pod[] = o.allNamespaces
    ? (await call(kube, 'list', 'pods', () => kube.core.listPodForAllNamespaces({ labelSelector: allKtSelector }), undefined)).items
    : (await call(kube, 'list', 'pods', () => kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: allKtSelector }))).items;
  return { now, sessions: sessionsFromPods(pods, now, listLocalSessions(), o.staleAfterMs) };
}

/**
 * Sessions from kt's pods (objects in, sessions out): `now` is the cluster's clock, `local` this
 * machine's session records (a session whose process is gone is orphaned at once).
 */
export function sessionsFromPods(pods: readonly V1Pod[], now: number, localRecords: readonly LocalSession[], staleAfterMs = STALE_AFTER_MS, alive: (pid: number) => boolean = processAlive): ClusterSession[] {
  const local = new Map(localRecords.map((s) => [s.id, s]));
  const staleAfter = staleAfterMs;
  const byId = new Map<string, ClusterSession>();
  for (const pod of pods) {
    const id = key(pod);
    if (!id) continue;
    const ns = pod.metadata!.namespace!;
    let s = byId.get(`${ns}/${id}`);
    if (!s) {
      const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : now;
      s = {
        id, namespace: ns,
        kind: pod.metadata?.annotations?.[ANNOTATION.kind] ?? 'unknown',
        user: pod.metadata?.annotations?.[ANNOTATION.user] ?? 'unknown',
        target: pod.metadata?.annotations?.[ANNOTATION.target] ?? '-',
        createdAt: created, lastHeartbeat: 0, ageMs: now - created, heartbeatAgeMs: 0, state: 'healthy', objects: [], plans: [], planErrors: [],
      };
      byId.set(`${ns}/${id}`, s);
    }
    s.objects.push({ kind: 'Pod', name: pod.metadata!.name!, namespace: ns });
    const rawPlan = pod.spec?.containers[0]?.env?.find((e) => e.name === SHADOW_ENV.recoveryPlan)?.value;
    if (rawPlan) {
      try { s.plans.push(parseRecoveryPlan(rawPlan)); } catch (e) { s.planErrors.push(`pod/${pod.metadata!.name}: ${(e as Error).message}`); }
    }
    if (pod.metadata?.labels?.[LABEL.role] === ROLE.shadow) s.lastHeartbeat = Math.max(s.lastHeartbeat, lastHeartbeat(pod));
  }
  for (const s of byId.values()) {
    s.heartbeatAgeMs = Math.max(0, now - s.lastHeartbeat);
    const rec = local.get(s.id);
    if (rec?.mode) s.mode = rec.mode;
    else if (s.kind === 'exchange') s.mode = s.target.startsWith('deployment/') ? 'scale' : 'selector';
    if (rec && !alive(rec.pid)) s.state = 'orphaned';
    else if (s.heartbeatAgeMs > staleAfter) s.state = 'stale';
  }
  return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt);
}
