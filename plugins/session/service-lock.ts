// Who holds a Service or Deployment kt changed. A lock names its session; it is live while that
// session's shadow pod exists and its heartbeat is fresh by the cluster's clock, so a crashed
// session never blocks anyone for longer than the staleness limit.
import { ANNOTATION, LABEL, MANAGED_BY, STALE_AFTER_MS, type Lock } from '../../contract/index.ts';
import { parseLock } from '../../contract/recovery.ts';
import { UserError } from '../cli/errors.ts';
import { lastHeartbeat } from './heartbeat.ts';
import { clusterNow, type Kube } from '../kube/kube.ts';
import { formatDuration } from '../cli/duration.ts';

export async function lockIsLive(kube: Kube, lock: Lock): Promise<boolean> {
  const pods = await kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: `${LABEL.managedBy}=${MANAGED_BY},${LABEL.session}=${lock.session}` });
  if (pods.items.length === 0) return false;
  const now = await clusterNow(kube);
  return pods.items.some((p) => now - lastHeartbeat(p) < STALE_AFTER_MS);
}

/** Refuses when someone else's live session holds the object; returns a stale lock, if any. */
export async function checkLock(kube: Kube, what: string, annotations: Record<string, string> | undefined): Promise<Lock | undefined> {
  const lock = parseLock(annotations);
  if (!lock) return undefined;
  if (await lockIsLive(kube, lock)) {
    const now = await clusterNow(kube);
    throw new UserError(`${what} is already ${lock.kind === 'mesh' ? 'meshed' : 'exchanged'} by ${lock.user} (session ${lock.session}, for ${formatDuration(now - lock.since)}); try again when they are done.`);
  }
  return lock;
}

export function lockAnnotation(lock: Lock): Record<string, string> {
  return { [ANNOTATION.lock]: JSON.stringify(lock) };
}
