// The per-session shadow pod and its Secret: the manifest, creating both, waiting for the pod to
// be ready (with progress, and an explanation from its events when it does not start), deleting.
import { Watch, type CoreV1Event, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import { DEFAULT_CLUSTER_DOMAIN, HEALTH_PATH, ROLE, SESSION_SECRET, SHADOW_DRAIN, SHADOW_ENV, SHADOW_PORT } from '../../contract/index.ts';
import { UserError } from '../cli/errors.ts';
import { apiStatus, call, explain, mergePatch, type Kube } from '../kube/kube.ts';
import type { SessionKeys } from './keys.ts';
import type { Logger } from '../cli/log.ts';
import { annotations, labels, objectName, ownedByPod, type Session } from './session.ts';
import { armRbac, type ArmedRbac, type SelfHealing } from './self-healing.ts';
import { settleAll, step, throwIfInterrupted } from './steps.ts';
import type { ShadowPodLifecycle } from '../tunnel/tunnel.ts';
import { serializeRecoveryPlan } from '../../contract/documents.ts';
import { phase } from '../kube/round-trips.ts';
import { DEFAULT_RESOURCES } from './shadow-flags.ts';

export interface ShadowOptions {
  image: string;
  imagePullSecret?: string | undefined;
  nodeSelector?: Record<string, string> | undefined;
  serviceAccount?: string | undefined;
  /** Extra labels on the pod (exchange and mesh select it by these). */
  extraLabels?: Record<string, string> | undefined;
  resources?: { cpuRequest: string; memoryRequest: string; memoryLimit: string } | undefined;
  clusterDomain?: string | undefined;
  /** Target ports the shadow listens on for remote forwards; any below 1024 needs a sysctl. */
  listenPorts?: number[] | undefined;
  /** Container ports to declare by name: a Service whose targetPort is a name finds them so. */
  namedPorts?: { name: string; containerPort: number }[] | undefined;
  /** Annotations for kt-status (the target). */
  extraAnnotations?: Record<string, string> | undefined;
  /** Undo the session from inside the cluster when the laptop disappears. */
  selfHealing?: SelfHealing | undefined;
}

/** Filled in by createShadow when self-healing is armed for this pod incarnation. */
interface Armed { serviceAccount: string }


export function shadowPodManifest(s: Session, o: ShadowOptions, armed?: Armed): V1Pod {
  const name = objectName(s);
  const r = o.resources ?? DEFAULT_RESOURCES;
  const lowPort = (o.listenPorts ?? []).some((p) => p < 1024);
  // The plan is always carried (kt-clean reads it from here); the watchdog arms only with an account.
  const healing = o.selfHealing ? [
    { name: SHADOW_ENV.recoveryPlan, value: serializeRecoveryPlan(o.selfHealing.plan) },
    { name: SHADOW_ENV.podName, value: name },
    ...(armed ? [{ name: SHADOW_ENV.recoverAfterMs, value: String(o.selfHealing.recoverAfterMs) }] : []),
  ] : [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: s.namespace, labels: { ...labels(s, ROLE.shadow), ...(o.extraLabels ?? {}) }, annotations: { ...annotations(s), ...(o.extraAnnotations ?? {}) } },
    spec: {
      // API access only for self-healing, through an account limited to the session's objects.
      automountServiceAccountToken: !!armed,
      enableServiceLinks: false,
      ...(armed ? { serviceAccountName: armed.serviceAccount } : o.serviceAccount ? { serviceAccountName: o.serviceAccount } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.imagePullSecret ? { imagePullSecrets: [{ name: o.imagePullSecret }] } : {}),
      terminationGracePeriodSeconds: SHADOW_DRAIN.terminationGracePeriodSeconds,
      // Passes the `restricted` Pod Security level.
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
        // Listening below 1024 without root or capabilities: a safe sysctl `restricted` allows.
        ...(lowPort ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] } : {}),
      },
      containers: [{
        name: 'shadow',
        image: o.image,
        imagePullPolicy: 'IfNotPresent',
        env: [
          { name: SHADOW_ENV.session, value: s.id },
          { name: SHADOW_ENV.namespace, value: s.namespace },
          { name: SHADOW_ENV.clusterDomain, value: o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN },
          ...healing,
        ],
        ports: [
          { name: 'ssh', containerPort: SHADOW_PORT.ssh },
          { name: 'dns', containerPort: SHADOW_PORT.dns, protocol: 'UDP' },
          { name: 'dns-tcp', containerPort: SHADOW_PORT.dns },
          { name: 'health', containerPort: SHADOW_PORT.health },
          ...(o.namedPorts ?? []).filter((np) => !['ssh', 'dns', 'dns-tcp', 'health'].includes(np.name)),
        ],
        volumeMounts: [{ name: 'session', mountPath: SESSION_SECRET.mountPath, readOnly: true }],
        // No readiness probe: kt points a Service at the pod only after its own tunnel reached the
        // SSH server and listens there, a stronger check than a probe, which costs up to a whole
        // probe period (1 s, the least) after the process is up. Terminating, the pod leaves its
        // Services' endpoints all the same.
        livenessProbe: { httpGet: { path: HEALTH_PATH.live, port: 'health' }, periodSeconds: 10, failureThreshold: 3 },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        resources: { requests: { cpu: r.cpuRequest, memory: r.memoryRequest }, limits: { memory: r.memoryLimit } },
      }],
      volumes: [{ name: 'session', secret: { secretName: name, defaultMode: 0o440 } }],
    },
  };
}

/** Created before its pod, so without an owner until createShadow's `adopted` (see there). */
export function sessionSecret(s: Session, keys: SessionKeys): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: objectName(s), namespace: s.namespace, labels: labels(s, ROLE.shadow), annotations: annotations(s) },
    type: 'Opaque',
    stringData: {
      [SESSION_SECRET.authorizedKey]: keys.clientPublic,
      [SESSION_SECRET.hostKey]: keys.hostPrivate,
    },
  };
}

/**
 * Creates the Secret, after deleting the one a previous incarnation of the pod may have left (the
 * garbage collector, which would remove it under the new pod, may not have come yet).
 */
async function putSecret(kube: Kube, body: V1Secret): Promise<void> {
  const { name, namespace } = body.metadata as { name: string; namespace: string };
  for (let attempt = 0; ; attempt++) {
    try {
      await kube.core.createNamespacedSecret({ namespace, body });
      return;
    } catch (e) {
      if (apiStatus(e) !== 409 || attempt >= 2) throw e;
    }
    await kube.core.deleteNamespacedSecret({ name, namespace }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
  }
}

export interface CreatedShadow {
  pod: V1Pod;
  /**
   * The owner references of the Secret and the self-healing objects, set while the pod starts
   * (they need its uid, the pod does not need them). Failed, it has already undone the rest.
   */
  adopted: Promise<void>;
}

/**
 * Creates the Secret, the self-healing account and Role, the pod and the RoleBinding, each as soon
 * as what it names exists: one round trip without self-healing, two with it. The Secret is asked
 * for first: a pod whose Secret volume is missing when the kubelet mounts it waits for a retry
 * after a back-off (0.5 s and more).
 */
export async function createShadow(kube: Kube, s: Session, keys: SessionKeys, o: ShadowOptions, log: Logger): Promise<CreatedShadow> {
  const name = objectName(s);
  let rbac: ArmedRbac | undefined;
  let pod: V1Pod | undefined;
  const undo = async (): Promise<void> => {
    await deleteShadow(kube, s).catch(() => undefined);
    await rbac?.remove();
  };
  try {
    await settleAll([
      async () => {
        await step(`create the session Secret ${name}`);
        await call(kube, 'create', 'secrets', () => putSecret(kube, sessionSecret(s, keys)));
      },
      async () => {
        // The pod names the account, which must exist first; the Secret only by the time the
        // kubelet mounts it, after scheduling: asked for just after it, the Secret is there.
        if (o.selfHealing && !o.serviceAccount) rbac = await armRbac(kube, name, labels(s, ROLE.shadow), o.selfHealing.plan, log);
        const body = shadowPodManifest(s, o, rbac);
        await settleAll([
          async () => {
            await step(`create the shadow pod ${name}`);
            pod = await call(kube, 'create', 'pods', () => kube.core.createNamespacedPod({ namespace: s.namespace, body }));
          },
          async () => { await rbac?.bind(); },
        ]);
      },
    ]);
  } catch (e) {
    await undo();
    throw e;
  }
  const owner = { name: pod!.metadata!.name!, uid: pod!.metadata!.uid! };
  const adopted = settleAll([
    async () => {
      await step(`make the session Secret ${name} owned by its pod`);
      await kube.core.patchNamespacedSecret({ name, namespace: s.namespace, body: ownedByPod(owner) }, mergePatch).catch((e: unknown) => {
        // A Role from before kt asked for this: the Secret then goes when kt deletes the pod (on
        // exit, or kt-clean), not with any deletion of the pod.
        if (apiStatus(e) !== 403) throw e;
        log.debug(`the session Secret stays without an owner: ${(e as Error).message.split('\n')[0]}`);
      });
    },
    async () => {
      if (!rbac) return;
      await step('hand the self-healing account to the pod');
      await rbac.adopt(owner);
    },
  ]).catch(async (e: unknown) => {
    await undo();
    throw e;
  });
  adopted.catch(() => undefined);
  return { pod: pod!, adopted };
}

export async function deleteShadow(kube: Kube, s: Session): Promise<void> {
  const name = objectName(s);
  const ignore404 = (e: unknown): void => { if (apiStatus(e) !== 404) throw e; };
  await Promise.all([
    kube.core.deleteNamespacedPod({ name, namespace: s.namespace, gracePeriodSeconds: 0 }).catch(ignore404),
    // Once the pod owns the Secret the garbage collector removes it anyway, but until then (or
    // without the right to make it owned) only this removes it. It may never have been created.
    kube.core.deleteNamespacedSecret({ name, namespace: s.namespace }).catch(ignore404),
  ]);
}

const PULL_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']);

/** Why a pod is not starting, in one sentence, or undefined while it may still start. */
export function diagnose(pod: V1Pod, image: string): string | undefined {
  const cs = pod.status?.containerStatuses?.[0];
  const waiting = cs?.state?.waiting;
  if (waiting?.reason && PULL_FAILURES.has(waiting.reason)) {
    return `the shadow image ${image} cannot be pulled (${waiting.reason}); choose one the cluster can pull with --image, $KT_SHADOW_IMAGE or $KT_IMAGE_REGISTRY, or shadowImage or registry in ~/.kt/config.yaml ('kubectl kt-connect --version' shows which image is used and why).`;
  }
  if (waiting?.reason === 'CreateContainerConfigError' || waiting?.reason === 'CreateContainerError') {
    return `the shadow container cannot be created: ${waiting.message ?? waiting.reason}.`;
  }
  if (waiting?.reason === 'CrashLoopBackOff' || (cs?.restartCount ?? 0) >= 2) {
    return `the shadow container keeps crashing (${cs?.lastState?.terminated?.reason ?? 'exit'} code ${cs?.lastState?.terminated?.exitCode ?? '?'}); see 'kubectl logs -n ${pod.metadata?.namespace} ${pod.metadata?.name}'.`;
  }
  const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
  if (unschedulable) return `the shadow pod cannot be scheduled: ${unschedulable.message ?? 'no node fits'}.`;
  return undefined;
}

/** The event last seen: a list of Events comes in no particular order. */
export function latestEvent(items: readonly CoreV1Event[]): CoreV1Event | undefined {
  const seen = (e: CoreV1Event): number => new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
  return items.reduce<CoreV1Event | undefined>((a, e) => (a && seen(a) >= seen(e) ? a : e), undefined);
}

const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
/** Its container runs: it can take a port-forward (its process may still be starting). */
const isRunning = (pod: V1Pod): boolean => isReady(pod) || !!pod.status?.containerStatuses?.[0]?.state?.running;

/** Waits for the pod to be Ready, logging progress; throws a UserError that says why when it fails. */
export function waitReady(kube: Kube, s: Session, image: string, timeoutMs: number, log: Logger): Promise<V1Pod> {
  return untilPod(kube, s, image, timeoutMs, log, isReady).done;
}

/**
 * Follows the pod until `reached` says so, logging progress; fails with a UserError that says why
 * when it cannot start, or on Ctrl-C. A watch, so the moment comes without a polling interval
 * (and it may start before the pod exists: it then sees it created); polling, for a user who may
 * not watch pods.
 */
export function untilPod(kube: Kube, s: Session, image: string, timeoutMs: number, log: Logger, reached: (pod: V1Pod) => boolean, onSeen?: (pod: V1Pod) => void): { done: Promise<V1Pod>; cancel: () => void } {
  const name = objectName(s);
  const start = Date.now();
  let lastPhase = '';
  let over = false;
  let stopWatch: (() => void) | undefined;
  let settle: { resolve: (p: V1Pod) => void; reject: (e: unknown) => void } | undefined;
  const done = new Promise<V1Pod>((resolve, reject) => { settle = { resolve, reject }; });
  const end = (e: unknown, pod?: V1Pod): void => {
    if (over) return;
    over = true;
    clearInterval(ticker);
    stopWatch?.();
    if (pod) settle!.resolve(pod); else settle!.reject(e);
  };
  const seen = (pod: V1Pod): void => {
    if (over) return;
    onSeen?.(pod);
    if (reached(pod)) { end(undefined, pod); return; }
    const why = diagnose(pod, image);
    if (why) { end(new UserError(why)); return; }
    const phase = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? pod.status?.phase ?? 'Pending';
    if (phase !== lastPhase) { log.progress(`shadow pod ${name}: ${phase}`); lastPhase = phase; }
  };
  const timedOut = async (): Promise<void> => {
    const events = await kube.core.listNamespacedEvent({ namespace: s.namespace, fieldSelector: `involvedObject.name=${name}` }).catch(() => undefined);
    const last = latestEvent(events?.items ?? []);
    end(new UserError(`the shadow pod ${name} was not ready within ${Math.round(timeoutMs / 1000)}s (${lastPhase || 'Pending'}${last ? `; last event: ${last.reason}: ${last.message}` : ''}); raise --pod-timeout or check the cluster.`));
  };
  // Ctrl-C and the time limit, whichever way the pod is followed.
  const ticker = setInterval(() => {
    try { throwIfInterrupted(); } catch (e) { end(e); return; }
    if (Date.now() - start > timeoutMs && !over) void timedOut();
  }, 100);
  const poll = async (): Promise<void> => {
    while (!over) {
      const pod = await kube.core.readNamespacedPod({ name, namespace: s.namespace }).catch((e: unknown) => {
        // Not there yet: following began before the pod was created.
        if (apiStatus(e) === 404 && Date.now() - start < timeoutMs) return undefined;
        throw explain(e, 'get', 'pods', s.namespace, kube.server, kube.contextNamespace);
      });
      if (pod) seen(pod);
      if (!over) await new Promise((r) => setTimeout(r, 250));
    }
  };
  const fallBack = (): void => { if (!over) poll().catch((e: unknown) => end(e)); };
  new Watch(kube.kc).watch(`/api/v1/namespaces/${encodeURIComponent(s.namespace)}/pods`, { fieldSelector: `metadata.name=${name}` },
    (type: string, pod: V1Pod) => {
      if (type === 'DELETED') end(new UserError(`the shadow pod ${name} was deleted while starting.`));
      else if (type === 'ADDED' || type === 'MODIFIED') seen(pod);
    },
    // The watch ended (the API server closes them after a while) or failed: go on by polling.
    () => fallBack(),
  ).then((ctl) => {
    if (over) ctl.abort(); else stopWatch = () => ctl.abort();
  }, () => fallBack());
  return { done, cancel: () => end(new Error('cancelled')) };
}

/**
 * The pod as the tunnel sees it: created once at start, and after a lost connection recreated
 * when it is gone (deleted, evicted) before the tunnel reconnects.
 */
export function shadowPodLifecycle(kube: Kube, s: Session, keys: SessionKeys, o: ShadowOptions, podTimeoutMs: number, log: Logger, onCreated?: () => void): ShadowPodLifecycle {
  const name = objectName(s);
  return {
    async create() {
      log.progress(`creating shadow pod ${name} in namespace ${s.namespace}`);
      // Followed from now, so that seeing it bound and started costs no round trip after the create.
      const bound = Promise.withResolvers<undefined>();
      bound.promise.catch(() => undefined);
      const started = untilPod(kube, s, o.image, podTimeoutMs, log, isRunning, (pod) => { if (pod.spec?.nodeName) bound.resolve(undefined); });
      started.done.then(() => bound.resolve(undefined), (e: unknown) => bound.reject(e));
      let created: CreatedShadow;
      try {
        created = await createShadow(kube, s, keys, o, log);
      } catch (e) {
        started.cancel();
        throw e;
      }
      onCreated?.();
      phase('wait for the shadow pod to be bound to a node');
      try {
        await bound.promise;
      } catch (e) {
        // Its owner references, or their undo, end first (and their failure is the cause).
        const cause = await created.adopted.then(() => undefined, (f: unknown) => f);
        throw cause ?? e;
      }
      log.progress('shadow pod scheduled; connecting over a port-forward');
      return { running: started.done.then(() => undefined), finished: created.adopted };
    },
    async ensure() {
      const pod = await kube.core.readNamespacedPod({ name, namespace: s.namespace }).catch((e: unknown) => {
        if (apiStatus(e) === 404) return undefined;
        throw e;
      });
      if (!pod || pod.metadata?.deletionTimestamp) {
        if (pod) await waitGone(kube, s);
        log.progress(`shadow pod ${name} is gone; recreating it`);
        await (await createShadow(kube, s, keys, o, log)).adopted;
      }
      await waitReady(kube, s, o.image, podTimeoutMs, log);
    },
  };
}

async function waitGone(kube: Kube, s: Session): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const exists = await kube.core.readNamespacedPod({ name: objectName(s), namespace: s.namespace }).then(() => true, (e: unknown) => apiStatus(e) !== 404);
    if (!exists) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
