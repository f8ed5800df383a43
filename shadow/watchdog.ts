// Self-healing: when no laptop has been connected for the grace period (the plugin was killed, the
// laptop sleeps, its network dropped), the shadow undoes its session's changes to the cluster with
// its narrowly scoped ServiceAccount, then deletes its own pod; the Secret and the ServiceAccount
// go with it (they are owned by the pod). A laptop that comes back in time cancels nothing: it
// simply counts as connected again.
import type { RecoveryPlan } from '../contract/index.ts';
import { isKnownStep } from '../contract/documents.ts';
import { runRecovery, type RecoveryApi } from '../contract/recovery.ts';
import type { Logger } from '../runtime/log.ts';

export interface WatchdogOptions {
  plan: RecoveryPlan;
  podName: string;
  recoverAfterMs: number;
  connections: () => number;
  api: RecoveryApi;
  log: Logger;
  /** How often to look; default 1 s. */
  tickMs?: number;
  now?: () => number;
}

export function startWatchdog(o: WatchdogOptions): { stop(): void } {
  const now = o.now ?? Date.now;
  let lastConnected = now();
  let recovering = false;
  const tick = async (): Promise<void> => {
    if (recovering) return;
    if (o.connections() > 0) { lastConnected = now(); return; }
    const idle = now() - lastConnected;
    if (idle < o.recoverAfterMs) return;
    recovering = true;
    o.log.warn('no laptop connected for the grace period: restoring the cluster', { idleMs: idle, steps: o.plan.steps.length });
    // A step this shadow does not know fails (runRecovery reports it); the pod, which carries the
    // plan, then stays, so that kt-clean run by a kt that knows the step can still finish it.
    const unknown = o.plan.steps.filter((s) => !isKnownStep(s));
    const steps = unknown.length > 0 ? o.plan.steps : [...o.plan.steps, { op: 'delete' as const, kind: 'Pod' as const, name: o.podName }];
    const { done, failed } = await runRecovery({ ...o.plan, steps }, o.api);
    for (const d of done) o.log.info(d);
    for (const f of failed) o.log.error(`recovery step failed: ${f}`);
    // Whatever failed is retried on the next tick (a deleted pod never gets there); a step that is
    // unknown stays unknown, so once only those fail the watchdog stops and leaves the pod.
    if (failed.length > unknown.length) recovering = false;
    else if (unknown.length > 0) o.log.error('self-healing incomplete: this pod stays, with its recovery plan, for kubectl kt-clean', { unknownSteps: unknown.map((s) => s.op) });
  };
  const timer = setInterval(() => { void tick(); }, o.tickMs ?? 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
