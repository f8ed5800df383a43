// kubectl kt-exchange: every call to a Service lands on the laptop. Selector mode points the
// Service at the session's shadow pod (the original selector kept in an annotation); scale mode
// scales the Deployment to zero and gives the shadow its pod labels. Either way the change is
// undone on exit, by the shadow's watchdog when the laptop disappears, or by kt-clean.
import type { V1Deployment, V1Pod, V1Service } from '@kubernetes/client-node';
import { ANNOTATION, ROUTES_KEY, SELECT_LABEL, meshNames, type Lock, type RecoveryPlan } from '../../contract/index.ts';
import { parseLock, parseTable, replaceSelectorPatch, runRecovery } from '../../contract/recovery.ts';
import type { Options } from '../cli/cli.ts';
import type { EXCHANGE_FLAGS } from './flags.ts';
import { UserError } from '../cli/errors.ts';
import { parseExpose, resolveExpose, type ResolvedPort } from '../inbound/expose.ts';
import { forwardPorts } from '../inbound/forward.ts';
import { apiStatus, call, clusterNow, mergePatch, prefetchRights, type Kube } from '../kube/kube.ts';
import { SHADOW_RIGHTS } from '../kube/rights.ts';
import { RBAC_OBJECT_RIGHTS } from '../session/self-healing.ts';
import { createLogger } from '../cli/log.ts';
import { appsApi, recoveryApi } from '../kube/recovery-api.ts';
import { checkLock, lockAnnotation } from '../session/service-lock.ts';
import { checkNamespace, kubeFromFlags, startShadowSession } from '../session/shadow-session.ts';
import { objectName } from '../session/session.ts';
import { ExchangeSwitch, recycleTargets } from './switch.ts';
import { step } from '../session/steps.ts';
import { checkPodEnvFlags, preparePodEnv, runCommand } from '../podenv/podenv.ts';
import { phase, reportCriticalPath } from '../kube/round-trips.ts';


interface Target {
  svc: V1Service;
  deployment?: V1Deployment;
  pods: V1Pod[];
}

const selectorString = (sel: Record<string, string>): string => Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** `svc`, `service/svc`, `svc/svc` or `deployment/NAME`, resolved to the Service (and Deployment). */
async function resolveTarget(kube: Kube, arg: string, mode: string): Promise<Target> {
  const [kind, name] = arg.includes('/') ? arg.split('/', 2) as [string, string] : ['service', arg];
  const apps = appsApi(kube);
  const ns = kube.namespace;
  let svc: V1Service | undefined;
  let deployment: V1Deployment | undefined;
  if (kind === 'service' || kind === 'svc' || kind === 'services') {
    svc = await kube.core.readNamespacedService({ namespace: ns, name }).catch((e: unknown) => {
      if (apiStatus(e) === 404) throw new UserError(`service "${name}" does not exist in namespace "${ns}".`);
      throw e;
    });
  } else if (kind === 'deployment' || kind === 'deploy' || kind === 'deployments') {
    deployment = await apps.readNamespacedDeployment({ namespace: ns, name }).catch((e: unknown) => {
      if (apiStatus(e) === 404) throw new UserError(`deployment "${name}" does not exist in namespace "${ns}".`);
      throw e;
    });
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    const svcs = (await call(kube, 'list', 'services', () => kube.core.listNamespacedService({ namespace: ns }))).items
      .filter((s) => s.spec?.selector && Object.keys(s.spec.selector).length > 0 && matches(s.spec.selector, labels));
    if (svcs.length === 0) throw new UserError(`no Service selects the pods of deployment/${name}; exchange a Service instead.`);
    if (svcs.length > 1) throw new UserError(`several Services select the pods of deployment/${name} (${svcs.map((s) => s.metadata!.name).join(', ')}); name the one to exchange.`);
    svc = svcs[0]!;
  } else {
    throw new UserError(`"${arg}" is not a Service or deployment/NAME.`, 2);
  }
  const selector = svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) throw new UserError(`service/${svc.metadata!.name} has no selector, so kt cannot point it elsewhere.`);
  const pods = (await kube.core.listNamespacedPod({ namespace: ns, labelSelector: selectorString(parseOriginal(svc) ?? selector) })).items;
  if (mode === 'scale' && !deployment) {
    const original = parseOriginal(svc) ?? selector;
    const deps = (await call(kube, 'list', 'deployments', () => apps.listNamespacedDeployment({ namespace: ns }))).items
      .filter((d) => matches(original, d.spec?.template.metadata?.labels));
    if (deps.length === 0) throw new UserError(`no Deployment runs the pods of service/${svc.metadata!.name}; use --mode selector.`);
    if (deps.length > 1) throw new UserError(`several Deployments run the pods of service/${svc.metadata!.name} (${deps.map((d) => d.metadata!.name).join(', ')}); use --mode selector.`);
    deployment = deps[0]!;
  }
  if (mode === 'scale' && deployment) {
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    const all = (await kube.core.listNamespacedService({ namespace: ns })).items
      .filter((s) => s.spec?.selector && Object.keys(s.spec.selector).length > 0 && matches(s.spec.selector, labels));
    if (all.length > 1) throw new UserError(`scale mode would take over every Service of deployment/${deployment.metadata!.name} (${all.map((s) => s.metadata!.name).join(', ')}); use --mode selector with one of them.`);
  }
  return { svc, pods, ...(deployment ? { deployment } : {}) };
}

function parseOriginal(svc: V1Service): Record<string, string> | undefined {
  const raw = svc.metadata?.annotations?.[ANNOTATION.originalSelector];
  if (!raw) return undefined;
  try { return JSON.parse(raw) as Record<string, string>; } catch { return undefined; }
}


export async function runExchange(o: Options<typeof EXCHANGE_FLAGS>): Promise<number> {
  const arg = o.args[0];
  if (!arg || o.args.length > 1) throw new UserError('name one Service to exchange: kubectl kt-exchange SERVICE --expose LOCAL[:REMOTE].', 2);
  const mode = o.mode;
  const specs = parseExpose(o.expose);
  const envReq = checkPodEnvFlags(o, false);
  const recoverAfterMs = o.recoverAfter;
  const log = createLogger({ debug: o.debug });
  const kube = kubeFromFlags(o);
  phase('check the Service, its pods and locks');
  const serviceRights = [{ verb: 'get', resource: 'services' }, { verb: 'patch', resource: 'services' }];
  const rights = mode === 'scale'
    ? [{ verb: 'get', resource: 'deployments', group: 'apps' }, { verb: 'patch', resource: 'deployments', group: 'apps' }, ...serviceRights]
    : serviceRights;
  // Everything is checked before anything is created: asked at once, said in order.
  prefetchRights(kube, kube.namespace, [...SHADOW_RIGHTS, ...rights, ...RBAC_OBJECT_RIGHTS]);
  const namespaceOk = checkNamespace(kube);
  const resolved = resolveTarget(kube, arg, mode);
  resolved.catch(() => undefined);
  await namespaceOk;
  const target = await resolved;
  const svcName = target.svc.metadata!.name!;
  const ports: ResolvedPort[] = resolveExpose(specs, target.svc, target.pods);
  // The laptop answers TCP only: what is sent to the Service's other ports is lost while exchanged.
  for (const p of target.svc.spec?.ports ?? []) {
    if ((p.protocol ?? 'TCP') !== 'TCP') log.warn(`service/${svcName} port ${p.port}/${p.protocol} is not carried to this laptop: what is sent to it is dropped while the Service is exchanged`);
  }
  if (parseLock(target.svc.metadata?.annotations)?.kind === 'mesh') {
    const raw = (await kube.core.readNamespacedConfigMap({ namespace: kube.namespace, name: meshNames(svcName).routes }).catch(() => undefined))?.data?.[ROUTES_KEY];
    let table: ReturnType<typeof parseTable>;
    try { table = parseTable(raw); } catch (e) { throw new UserError(`service/${svcName} is meshed, and its route table cannot be read (${(e as Error).message}); it cannot be exchanged until the mesh is gone.`); }
    if (table) throw new UserError(`service/${svcName} is meshed by ${table.routes.map((r) => r.user).join(', ') || 'someone'}; it cannot be exchanged until they are done.`);
  }
  const staleSvcLock = await checkLock(kube, `service/${svcName}`, target.svc.metadata?.annotations);
  if (target.deployment) await checkLock(kube, `deployment/${target.deployment.metadata!.name}`, target.deployment.metadata?.annotations);
  if (staleSvcLock) log.warn(`service/${svcName} was left exchanged by a session that is gone (${staleSvcLock.user}, ${staleSvcLock.session}); taking it over`);

  const depName = target.deployment?.metadata?.name;
  const originalSelector = parseOriginal(target.svc) ?? target.svc.spec!.selector!;
  const recycle = o.recyclePods ? await recycleTargets(kube, mode, originalSelector, svcName) : undefined;
  // Scale mode moves the Service to the shadow as selector mode does before the Deployment goes to
  // 0, so on the way back the real pods come up first and the selector follows them (see below).
  const planFor = (session: string): RecoveryPlan => ({
    session,
    namespace: kube.namespace,
    steps: mode === 'scale'
      ? [{ op: 'restore-replicas', deployment: depName!, service: svcName }, { op: 'restore-selector', service: svcName }]
      : [{ op: 'restore-selector', service: svcName }],
  });
  const podEnv = await preparePodEnv(kube, log, envReq, { what: `service/${svcName}`, pods: target.pods, deployment: target.deployment, targetPorts: ports.map((x) => x.remote) });
  // Scale mode's shadow is created with the exchange label only: were it to carry the pod labels
  // from the start, the Service would send callers to it before the laptop's forwards listen.
  // It gets them once it is the Service's only endpoint; later incarnations (a recreated pod) are
  // made from this same object, so they carry what the session's state needs.
  let shadowLabels: Record<string, string> = {};
  const s = await startShadowSession(o, {
    kind: 'exchange',
    kube,
    rights,
    customize: (session) => {
      const plan = planFor(session.id);
      shadowLabels = { [SELECT_LABEL.exchange]: session.id };
      return {
        extraLabels: shadowLabels,
        extraAnnotations: { [ANNOTATION.target]: mode === 'scale' ? `deployment/${depName}` : `service/${svcName}` },
        listenPorts: ports.map((x) => x.remote),
        namedPorts: ports.filter((x) => x.targetName).map((x) => ({ name: x.targetName!, containerPort: x.remote })),
        selfHealing: { plan, recoverAfterMs },
      };
    },
  });
  const { session, tunnel, life } = s;
  await podEnv?.materialise(s);
  phase('listen in the shadow pod');
  const sw = new ExchangeSwitch({ kube, tunnel, log, svc: target.svc, servicePort: ports[0]!.servicePort, shadowPod: objectName(session), mode: mode === 'scale' ? 'scale' : 'selector', original: originalSelector });
  // The cluster's clock is asked beside the forwards, not after them.
  const since = clusterNow(kube);
  since.catch(() => undefined);
  await forwardPorts(tunnel, ports, log, sw.traffic);
  const lock: Lock = { session: session.id, user: session.user, kind: 'exchange', since: await since };
  const plan = planFor(session.id);
  life.defer(mode === 'scale' ? `scale deployment/${depName} back and restore service/${svcName}` : `restore service/${svcName}`, async () => {
    const r = await runRecovery(plan, recoveryApi(kube));
    for (const d of r.done) log.progress(d);
    for (const f of r.failed) log.warn(`could not undo: ${f}`);
    await sw.restored();
  });

  const apps = appsApi(kube);
  const scaleToZero = async (): Promise<boolean> => {
    const d = await apps.readNamespacedDeployment({ namespace: kube.namespace, name: depName! });
    if ((d.spec?.replicas ?? 1) === 0 && d.metadata?.annotations?.[ANNOTATION.lock]?.includes(session.id)) return false;
    const original = d.metadata?.annotations?.[ANNOTATION.lock]?.includes(session.id) || staleSvcLock
      ? d.metadata?.annotations?.[ANNOTATION.originalReplicas] ?? String(d.spec?.replicas ?? 1)
      : String(d.spec?.replicas ?? 1);
    await apps.patchNamespacedDeployment({ namespace: kube.namespace, name: depName!, body: {
      metadata: { annotations: { ...lockAnnotation(lock), [ANNOTATION.originalReplicas]: original } },
      spec: { replicas: 0 },
    } }, mergePatch);
    return true;
  };
  // The Service as read at the start: the first pointing patches that version without reading it
  // again (a round trip), on the condition that it is still current (else read, and patch again).
  let known: V1Service | undefined = target.svc;
  const pointService = async (): Promise<boolean> => {
    let cur = known;
    known = undefined;
    for (let attempt = 1; ; attempt++) {
      cur ??= await kube.core.readNamespacedService({ namespace: kube.namespace, name: svcName });
      try {
        return await pointServiceFrom(cur);
      } catch (e) {
        // Written by someone else since it was read: read it again.
        if (apiStatus(e) !== 409 || attempt >= 4) throw e;
        cur = undefined;
      }
    }
  };
  const pointServiceFrom = async (cur: V1Service): Promise<boolean> => {
    const selector = cur.spec?.selector ?? {};
    const ours = { [SELECT_LABEL.exchange]: session.id };
    if (JSON.stringify(selector) === JSON.stringify(ours)) return false;
    // The original is what the Service had before any kt session; a reset Service's own selector
    // is its original again.
    const kept = parseOriginal(cur);
    const original = kept && (selector[SELECT_LABEL.exchange] !== undefined || JSON.stringify(kept) === JSON.stringify(selector)) ? kept : selector;
    await kube.core.patchNamespacedService({ namespace: kube.namespace, name: svcName, body: {
      metadata: { resourceVersion: cur.metadata?.resourceVersion, annotations: { ...lockAnnotation(lock), [ANNOTATION.originalSelector]: JSON.stringify(original) } },
      spec: { selector: replaceSelectorPatch(selector, ours) },
    } }, mergePatch);
    return true;
  };
  phase('switch the Service and confirm it');
  await s.podReady;
  await step(`point service/${svcName} at the shadow`);
  await call(kube, 'patch', 'services', pointService);
  await sw.switched();
  if (mode === 'scale') {
    // The real pods stop at SIGTERM, some at once: they go only once no caller is sent to them.
    // Then the Service gets its own selector back, which the shadow now matches too.
    const podLabels = target.deployment!.spec?.template.metadata?.labels ?? {};
    await step(`give the shadow the pod labels of deployment/${depName}`);
    await sw.labelShadow(podLabels);
    Object.assign(shadowLabels, podLabels);
    await step(`scale deployment/${depName} to 0`);
    await call(kube, 'patch', 'deployments', scaleToZero);
    await sw.realPodsStopping();
    await step(`give service/${svcName} its own selector back`);
    const back = await runRecovery({ ...plan, steps: [{ op: 'restore-selector', service: svcName }] }, recoveryApi(kube));
    if (back.failed.length > 0) throw new Error(back.failed.join('; '));
    await sw.stillOnlyShadow();
  }
  if (recycle) { await step(`restart the pods of ${recycle.join(', ')}`); await sw.recyclePods(recycle); }

  // Someone may reset the Service (kubectl apply, a Helm upgrade): point it back.
  s.guard(mode === 'scale' ? scaleToZero : pointService, `${mode === 'scale' ? `deployment/${depName} was scaled up` : `service/${svcName} was reset`} while exchanged; pointed it back to this laptop`);

  s.record({ target: `service/${svcName}`, ports }, mode);
  reportCriticalPath(s.log, 'kt-exchange');
  s.log.info(`kt-exchange: service/${svcName} in namespace "${kube.namespace}" now sends all its traffic to this laptop (session ${session.id}, mode ${mode}).`);
  for (const x of ports) s.log.info(`  service port ${x.servicePort}${x.name ? ` (${x.name})` : ''} -> localhost:${x.local}`);
  if (mode === 'selector') s.log.info(recycle ? '  the real pods are restarting, so kept-alive callers reconnect here.' : '  connections opened before now (keep-alive, gRPC) stay with the real pods; --recycle-pods moves them.');
  s.log.info(`  restored on Ctrl-C; if this laptop disappears the cluster restores itself after ${Math.round(recoverAfterMs / 1000)}s.`);
  s.log.info('Press Ctrl-C to stop.');
  if (o.rest.length > 0) return runCommand(s, o.rest, podEnv?.env ?? {});
  return s.runUntilSignal('restoring', `kt-exchange: service/${svcName} restored; nothing is left in the cluster.`);
}
