// What every kt command that deploys a shadow does first: load kubeconfig, check the namespace,
// create per-session keys and the shadow pod, connect the tunnel, start the heartbeat, record the
// session locally, and register how to undo each step. Ctrl-C at any point undoes what was done.
import type { KUBE_FLAGS, Values } from '../cli/cli.ts';
import type { SHADOW_FLAGS } from './shadow-flags.ts';
import { UserError } from '../cli/errors.ts';
import { podBeat, startHeartbeat } from './heartbeat.ts';
import { generateSessionKeys } from './keys.ts';
import { apiStatus, checkMayCreatePods, explain, makeKube, type Kube } from '../kube/kube.ts';
import { kubeOptions, loadKube } from '../kube/kubeconfig.ts';
import { Lifecycle } from './lifecycle.ts';
import { removeLocalSession, writeLocalSession, type LocalSession } from './local-state.ts';
import { createLogger, type Logger } from '../cli/log.ts';
import { newSession, objectName, type Session, type SessionKind } from './session.ts';
import { shadowOptions } from './shadow-flags.ts';
import { deleteShadow, shadowPodLifecycle, waitReady, type ShadowOptions } from './shadow-pod.ts';
import { requireRights, SHADOW_RIGHTS, type Right } from '../kube/rights.ts';
import { settleAll, step } from './steps.ts';
import { portForwardTo, Tunnel } from '../tunnel/tunnel.ts';
import { phase } from '../kube/round-trips.ts';

export interface ShadowSession {
  kube: Kube;
  session: Session;
  tunnel: Tunnel;
  life: Lifecycle;
  log: Logger;
  /** Resolves when the user asks the session to end (Ctrl-C, SIGTERM, SIGHUP). */
  signal: Promise<NodeJS.Signals>;
  /**
   * Resolves once the API says the shadow pod is Ready. The tunnel connects as soon as its SSH
   * server answers, which can be up to a second sooner, but a Service pointed at the pod lists it
   * only once it is Ready: pointed earlier, the Service would have no ready endpoint for a moment
   * and its callers would be refused. Wait for this first.
   */
  podReady: Promise<void>;
  /** Updates the local session record (shown by `status`). */
  record(details: Record<string, unknown>, mode?: string): void;
  /**
   * Someone may reset what the session changed (kubectl apply, a Helm upgrade): every 2 s until the
   * session ends, `reapply` puts it back and resolves true when it had to, which is reported.
   */
  guard(reapply: () => Promise<boolean>, whenReset: string): void;
  /** Waits for Ctrl-C (or SIGTERM, SIGHUP), undoes everything, says so; resolves with exit code 0. */
  runUntilSignal(undoing: string, done: string): Promise<number>;
}

export function kubeFromFlags(o: Values<typeof KUBE_FLAGS>): Kube {
  const loaded = loadKube(kubeOptions(o));
  return makeKube(loaded.kc, loaded.namespace, loaded.context, loaded.server, loaded.contextNamespace);
}

/**
 * Fails with one sentence when the namespace does not exist, or when a user who may not read it may
 * not create pods there. Asked once per kube: a plugin that checks first and then starts its
 * session does not wait for the answer twice.
 */
export function checkNamespace(kube: Kube): Promise<void> {
  let p = namespaceChecks.get(kube);
  if (!p) { p = askNamespace(kube); namespaceChecks.set(kube, p); }
  return p;
}

const namespaceChecks = new WeakMap<Kube, Promise<void>>();

async function askNamespace(kube: Kube): Promise<void> {
  try {
    await kube.core.readNamespace({ name: kube.namespace });
  } catch (e) {
    const code = apiStatus(e);
    if (code === 404) throw new UserError(`namespace "${kube.namespace}" does not exist.`);
    if (code === 403) return checkMayCreatePods(kube);
    throw explain(e, 'get', 'namespaces', kube.namespace, kube.server);
  }
}

export interface StartOptions {
  kind: SessionKind;
  /** Shadow pod settings that depend on the session (its labels, recovery plan...). */
  customize?: (session: Session) => Partial<ShadowOptions>;
  /** Called before anything is created in the cluster: validate, reserve local ports here. */
  preflight?: (kube: Kube, log: Logger) => Promise<void>;
  /** An already loaded kube, so validation and the session share one. */
  kube?: Kube;
  /** Rights beyond the shadow's own, checked before anything is created. */
  rights?: readonly Right[];
  /** Recorded from the start, so a second session can see what this one is (kt-connect's mode). */
  mode?: string;
  /**
   * Changes that need the shadow pod to exist (it carries the recovery plan) but not to run: made
   * while it starts and the tunnel connects. Each registers its undo on `life` before it is made.
   */
  alongside?: (session: Session, life: Lifecycle) => Promise<void>;
}

export async function startShadowSession(flags: Values<typeof KUBE_FLAGS> & Values<typeof SHADOW_FLAGS>, o: StartOptions): Promise<ShadowSession> {
  const log = createLogger({ debug: flags.debug });
  const kube = o.kube ?? kubeFromFlags(flags);
  const timeout = flags.podTimeout;
  const shadowFlags = shadowOptions(flags);
  const life = new Lifecycle(log);
  const signal = life.waitForSignal();

  phase('check the namespace and rights');
  // Asked at once, said in order: a namespace that does not exist comes before a missing right.
  const namespaceOk = checkNamespace(kube);
  const rightsOk = requireRights(kube, [...SHADOW_RIGHTS, ...(o.rights ?? [])]);
  rightsOk.catch(() => undefined);
  await namespaceOk;
  await rightsOk;
  await o.preflight?.(kube, log);
  phase('create the shadow pod');

  const session = newSession(o.kind, kube.namespace);
  const podCreated = Promise.withResolvers<undefined>();
  podCreated.promise.catch(() => undefined);
  const shadow: ShadowOptions = { ...shadowFlags, ...(o.customize?.(session) ?? {}) };
  const keys = generateSessionKeys();
  const tunnel = new Tunnel({
    pod: shadowPodLifecycle(kube, session, keys, shadow, timeout, log, () => podCreated.resolve(undefined)),
    openStream: portForwardTo(kube, session.namespace, objectName(session)),
    keys,
    log,
  });
  const local: LocalSession = {
    id: session.id, kind: o.kind, pid: process.pid, namespace: kube.namespace, context: kube.context, server: kube.server,
    startedAt: Date.now(), updatedAt: Date.now(), details: {}, ...(o.mode ? { mode: o.mode } : {}),
  };
  // The local record comes first and goes last: while anything of the session exists, kt-clean
  // can find it through this record even if this process dies.
  life.defer('remove the local session record', () => removeLocalSession(session.id));
  await step('record the session on this machine');
  writeLocalSession(local);
  life.defer(`delete the shadow pod ${objectName(session)}`, async () => {
    log.progress(`deleting shadow pod ${objectName(session)}`);
    await deleteShadow(kube, session);
  });

  // Crashes still undo what they can.
  const onCrash = (e: unknown): void => {
    log.warn(`unexpected error: ${(e as Error)?.stack ?? String(e)}`);
    void life.close().finally(() => process.exit(1));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  life.defer('close the tunnel', () => tunnel.close());
  // Both are waited for before a failure of either is said, so the undo finds all they made.
  const started = tunnel.start();
  started.catch((e: unknown) => podCreated.reject(e));
  await settleAll([
    () => started,
    async () => {
      if (!o.alongside) return;
      await podCreated.promise;
      await o.alongside(session, life);
    },
  ]);
  // Followed from now, beside whatever the plugin does next (see podReady).
  const podReady = waitReady(kube, session, shadow.image, timeout, log).then(() => undefined);
  podReady.catch(() => undefined);
  phase(`${o.kind}: after the tunnel`);
  const stopBeat = startHeartbeat([podBeat(kube, objectName(session), kube.namespace)], log);
  life.defer('stop the heartbeat', stopBeat);

  const record = (details: Record<string, unknown>, mode?: string): void => {
    local.details = { ...local.details, ...details };
    if (mode) local.mode = mode;
    local.updatedAt = Date.now();
    try { writeLocalSession(local); } catch { /* best effort */ }
  };
  const snapshot = setInterval(() => record({ tunnel: tunnel.health() }), 2000);
  snapshot.unref();
  life.defer('stop the status snapshots', () => clearInterval(snapshot));
  record({ tunnel: tunnel.health(), pod: objectName(session) });
  const runUntilSignal = async (undoing: string, done: string): Promise<number> => {
    const sig = await signal;
    log.progress(`${sig}: ${undoing}`);
    await life.close();
    log.info(done);
    return 0;
  };
  const guard = (reapply: () => Promise<boolean>, whenReset: string): void => {
    const t = setInterval(() => {
      void reapply().then((changed) => { if (changed) log.warn(whenReset); }, (e: unknown) => log.debug(`guard: ${(e as Error).message}`));
    }, 2000);
    t.unref();
    life.defer('stop guarding', () => clearInterval(t));
  };
  return { kube, session, tunnel, life, log, signal, podReady, record, guard, runUntilSignal };
}
