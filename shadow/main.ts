// The shadow process: the one Node process in the per-session shadow pod.
//   node shadow/main.ts            (bundled in the image: node /app/shadow.cjs)
// Configuration: see contract/index.ts (SHADOW_ENV, SESSION_SECRET, SHADOW_PORT) and, for local runs
// and tests, the overrides in shadow/config.ts (KT_SSH_PORT, KT_DNS_PORT, KT_HEALTH_PORT,
// KT_SESSION_DIR, KT_RESOLV_CONF, KT_LISTEN_HOST).
//
// Importing this module only exports startShadow; it runs when it is the process's entry point.
import { errorMessage, type Logger } from '../runtime/log.ts';
import { isEntryPoint, runService } from '../runtime/process.ts';
import { SHADOW_DRAIN, SHADOW_ENV, type RecoveryPlan } from '../contract/index.ts';
import { parseRecoveryPlan } from '../contract/documents.ts';
import { inClusterRequest, recoveryApiFor } from '../runtime/kube-api.ts';
import { startShadow } from './shadow.ts';
import type { ShadowHandle } from './shadow.ts';
import { startWatchdog } from './watchdog.ts';

export { startShadow } from './shadow.ts';
export type { ShadowHandle, ShadowOptions } from './shadow.ts';


// No top-level await: the image runs this bundled as CommonJS.
if (isEntryPoint(import.meta.url)) {
  void runService('shadow', async (log) => {
    const shadow = await startShadow();
    startSelfHealing(shadow, log);
    // SIGTERM: forwarded callers finish first (the pod leaves the endpoints as it terminates).
    return { close: async () => { await shadow.drain(SHADOW_DRAIN.lingerMs, SHADOW_DRAIN.graceMs); await shadow.close(); } };
  }, SHADOW_DRAIN.deadlineMs);
}

/** Starts the watchdog when the pod was given a recovery plan (see contract RecoveryPlan). */
function startSelfHealing(shadow: ShadowHandle, log: Logger): void {
  const rawPlan = process.env[SHADOW_ENV.recoveryPlan];
  const after = Number(process.env[SHADOW_ENV.recoverAfterMs]);
  const podName = process.env[SHADOW_ENV.podName];
  if (!rawPlan || !podName || !Number.isFinite(after) || after <= 0) return;
  let plan: RecoveryPlan;
  try {
    plan = parseRecoveryPlan(rawPlan);
  } catch (err) {
    log.error('self-healing disabled: the recovery plan breaks the contract', { error: errorMessage(err) });
    return;
  }
  void inClusterRequest().then((req) => {
    startWatchdog({ plan, podName, recoverAfterMs: after, connections: () => shadow.connections(), api: recoveryApiFor(req), log });
    log.info('self-healing armed', { recoverAfterMs: after, steps: plan.steps.length });
  }, (err: unknown) => log.error('self-healing disabled: no in-cluster API access', { error: errorMessage(err) }));
}
