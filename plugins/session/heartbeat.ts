// The heartbeat: a periodic annotation update on the session's objects by a dedicated field
// manager. The API server stamps each update's time in managedFields with its own clock, which is
// what kt-status and kt-clean read, so a skewed laptop clock never makes a live session look dead.
import type { KubernetesObject } from '@kubernetes/client-node';
import { HEARTBEAT_ANNOTATION, HEARTBEAT_FIELD_MANAGER, HEARTBEAT_INTERVAL_MS } from '../../contract/index.ts';
import { mergePatch, type Kube } from '../kube/kube.ts';
import type { Logger } from '../cli/log.ts';

export type Beat = () => Promise<unknown>;

export function podBeat(kube: Kube, name: string, namespace: string): Beat {
  let n = 0;
  return () => kube.core.patchNamespacedPod(
    { name, namespace, fieldManager: HEARTBEAT_FIELD_MANAGER, body: { metadata: { annotations: { [HEARTBEAT_ANNOTATION]: `${Date.now()}-${n++}` } } } },
    mergePatch,
  );
}

/** Starts beating every interval; returns a stop function. Failures are logged at debug level. */
export function startHeartbeat(beats: Beat[], log: Logger, intervalMs = HEARTBEAT_INTERVAL_MS): () => void {
  const beat = (): void => {
    for (const b of beats) b().catch((e: unknown) => log.debug(`heartbeat failed: ${(e as Error).message}`));
  };
  beat();
  const t = setInterval(beat, intervalMs);
  t.unref();
  return () => clearInterval(t);
}

/** The cluster time of the last heartbeat, else of creation. */
export function lastHeartbeat(obj: KubernetesObject): number {
  const entries = obj.metadata?.managedFields ?? [];
  let t = obj.metadata?.creationTimestamp ? new Date(obj.metadata.creationTimestamp).getTime() : 0;
  for (const m of entries) {
    if (m.manager === HEARTBEAT_FIELD_MANAGER && m.time) t = Math.max(t, new Date(m.time).getTime());
  }
  return t;
}
