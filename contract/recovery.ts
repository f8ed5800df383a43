// Undoing a session's changes to the cluster (see RecoveryPlan in index.ts). One implementation,
// run by the shadow's watchdog inside the cluster and by kt-clean and the plugins themselves on the
// laptop; each side supplies the few API calls it needs.
import { ANNOTATION, CONTRACT_VERSION, ROUTES_KEY, UNVERSIONED_CONTRACT, meshNames, type Lock, type RecoveryPlan, type RecoveryStep, type RouteTable } from './index.ts';
import { parseLockText } from './documents.ts';
import { parseRouteTable, writeBackRouteTable } from './route-table.ts';
import { ContractError, compatibility, parseContractVersion } from './version.ts';

export interface ObjectMeta {
  annotations: Record<string, string>;
}
export interface ServiceView extends ObjectMeta {
  selector: Record<string, string>;
}
export interface DeploymentView extends ObjectMeta {
  replicas: number;
  /** From status; absent when an implementation does not read it. */
  readyReplicas?: number | undefined;
  /** Whether the controller has seen the latest spec (status.observedGeneration >= generation). */
  observed?: boolean | undefined;
}

/** One address of a Service's EndpointSlices (discovery.k8s.io). */
export interface EndpointView {
  address: string;
  ready: boolean;
  /** The pod behind it (targetRef), when the slice names one. */
  pod?: string | undefined;
}

export interface ConfigMapView {
  data: Record<string, string>;
  resourceVersion: string;
}

/** The API calls recovery needs; each returns undefined / ignores a missing object. */
export interface RecoveryApi {
  getConfigMap(namespace: string, name: string): Promise<ConfigMapView | undefined>;
  /** Replaces data if the ConfigMap is still at resourceVersion; false on a conflict. */
  replaceConfigMapData(namespace: string, name: string, data: Record<string, string>, resourceVersion: string): Promise<boolean>;
  deleteConfigMap(namespace: string, name: string): Promise<void>;
  getService(namespace: string, name: string): Promise<ServiceView | undefined>;
  patchService(namespace: string, name: string, mergePatch: object): Promise<void>;
  getDeployment(namespace: string, name: string): Promise<DeploymentView | undefined>;
  patchDeployment(namespace: string, name: string, mergePatch: object): Promise<void>;
  delete(kind: 'Pod' | 'Service' | 'Secret', namespace: string, name: string): Promise<void>;
  /** Every endpoint of the Service's EndpointSlices (label kubernetes.io/service-name). */
  listEndpoints(namespace: string, service: string): Promise<EndpointView[]>;
  /** Deletes in the foreground: the Deployment is gone only once its pods are (after their grace). */
  deleteDeploymentForeground(namespace: string, name: string): Promise<void>;
}

/** How long the last developer's leaving waits for each switch; tests shorten them. */
export interface RecoveryTiming {
  /** Until the Service's endpoints no longer list the router and list the real pods. */
  endpointsMs: number;
  /** Until the router pod is gone (it drains first; see ROUTER_DRAIN). */
  routerGoneMs: number;
  pollMs: number;
  /** Until a Deployment scaled back has its pods Ready and in the Service's endpoints. */
  replicasMs?: number;
}

export const RECOVERY_TIMING: RecoveryTiming = { endpointsMs: 30_000, routerGoneMs: 40_000, pollMs: 200, replicasMs: 60_000 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `done` until it holds; false when `ms` passed first. */
async function waitUntil(ms: number, pollMs: number, done: () => Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= end) return false;
    await sleep(pollMs);
  }
}

/**
 * Whether a meshed Service's endpoints have moved back: no router pod among them, and every ready
 * real pod (the stuntman Service keeps the original selector) among its ready ones.
 */
export async function endpointsMoved(api: RecoveryApi, ns: string, service: string): Promise<boolean> {
  const names = meshNames(service);
  const [own, real] = await Promise.all([api.listEndpoints(ns, service), api.listEndpoints(ns, names.stuntman)]);
  if (own.some((e) => e.pod?.startsWith(`${names.router}-`))) return false;
  const ready = new Set(own.filter((e) => e.ready).map((e) => e.address));
  return real.filter((e) => e.ready).every((e) => ready.has(e.address));
}

/** The lock an object carries; undefined when it has none or one that is no valid lock (validateLock). */
export function parseLock(annotations: Record<string, string> | undefined): Lock | undefined {
  const raw = annotations?.[ANNOTATION.lock];
  if (!raw) return undefined;
  try {
    return parseLockText(raw);
  } catch {
    return undefined;
  }
}

/** A merge patch that replaces a selector as a whole (merge patches merge maps key by key). */
export function replaceSelectorPatch(current: Record<string, string>, next: Record<string, string>): Record<string, string | null> {
  const patch: Record<string, string | null> = {};
  for (const k of Object.keys(current)) patch[k] = null;
  return Object.assign(patch, next);
}

/** The patch that gives a Service its original selector back and drops kt's annotations. */
export function restoreSelectorPatch(svc: ServiceView): object | undefined {
  const raw = svc.annotations[ANNOTATION.originalSelector];
  if (!raw) return undefined;
  const original = JSON.parse(raw) as Record<string, string>;
  return {
    metadata: { annotations: { [ANNOTATION.lock]: null, [ANNOTATION.originalSelector]: null } },
    spec: { selector: replaceSelectorPatch(svc.selector, original) },
  };
}

async function runStep(plan: RecoveryPlan, step: RecoveryStep, api: RecoveryApi, timing: RecoveryTiming): Promise<string | undefined> {
  const ns = plan.namespace;
  switch (step.op) {
    case 'restore-selector': {
      const svc = await api.getService(ns, step.service);
      if (!svc || parseLock(svc.annotations)?.session !== plan.session) return undefined;
      const patch = restoreSelectorPatch(svc);
      if (!patch) return undefined;
      await api.patchService(ns, step.service, patch);
      return `restored the selector of service/${step.service}`;
    }
    case 'restore-replicas': {
      const dep = await api.getDeployment(ns, step.deployment);
      if (!dep || parseLock(dep.annotations)?.session !== plan.session) return undefined;
      const replicas = Number(dep.annotations[ANNOTATION.originalReplicas] ?? '1');
      await api.patchDeployment(ns, step.deployment, {
        metadata: { annotations: { [ANNOTATION.lock]: null, [ANNOTATION.originalReplicas]: null } },
        spec: { replicas },
      });
      const waited = await waitReplicasServing(plan, step.deployment, step.service, replicas, api, timing);
      return `scaled deployment/${step.deployment} back to ${replicas}${waited}`;
    }
    case 'delete':
      await api.delete(step.kind, ns, step.name);
      return `deleted ${step.kind.toLowerCase()}/${step.name}`;
    case 'remove-route': {
      const removed = await updateRoutes(api, ns, step.configMap, (t) => ({ ...t, routes: t.routes.filter((r) => r.session !== plan.session) }));
      return removed ? `removed the routes of session ${plan.session} from configmap/${step.configMap}` : undefined;
    }
    case 'unmesh-if-idle':
      return unmesh(plan, step.service, step.configMap, api, timing);
    default:
      throw new UnknownStepError(plan, (step as { op: unknown }).op);
  }
}

/**
 * A step this version does not know (the plan's writer speaks a newer MINOR): a failure naming
 * the op and the version that knows it, never a silent skip, so the change it would undo is not
 * left behind unnoticed.
 */
export class UnknownStepError extends ContractError {
  constructor(plan: RecoveryPlan, op: unknown) {
    const writer = plan.contract ?? UNVERSIONED_CONTRACT;
    const v = parseContractVersion(writer);
    const newer = v !== undefined && compatibility(v).startsWith('newer');
    super(`recovery step ${JSON.stringify(op)} is unknown to this kt (contract ${CONTRACT_VERSION}); the plan was written by a kt speaking contract ${writer}${newer ? ', which knows it: run kubectl kt-clean with that kt to finish' : ', so the step is malformed'}`);
    this.name = 'UnknownStepError';
  }
}

/**
 * The last developer out puts the Service back without losing a request: selector restored;
 * wait until its endpoints moved to the real pods (new connections go there); the router pod is
 * deleted and drains (established connections finish and are told to reconnect), while the
 * stuntman Service it sends to still exists; only then the route table, and with it the rest.
 */
async function unmesh(plan: RecoveryPlan, service: string, configMap: string, api: RecoveryApi, timing: RecoveryTiming): Promise<string | undefined> {
  const ns = plan.namespace;
  const idle = async (): Promise<boolean | undefined> => {
    const cm = await api.getConfigMap(ns, configMap);
    if (!cm) return undefined;
    const table = parseTable(cm.data[ROUTES_KEY]);
    return !table || table.routes.length === 0;
  };
  if (!await idle()) return undefined;
  const svc = await api.getService(ns, service);
  if (svc && parseLock(svc.annotations)?.kind === 'mesh') {
    const patch = restoreSelectorPatch(svc);
    if (patch) await api.patchService(ns, service, patch);
  }
  // A right missing for the careful way (an older Role) degrades it to the old one, never stops it.
  const notes: string[] = [];
  const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  try {
    if (!await waitUntil(timing.endpointsMs, timing.pollMs, () => endpointsMoved(api, ns, service))) {
      notes.push(`its endpoints still listed the router after ${Math.round(timing.endpointsMs / 1000)} s, so callers may have seen errors`);
    }
  } catch (e) {
    notes.push(`could not read its endpoints (${errorText(e)})`);
  }
  // A developer who joined meanwhile keeps the router (their guard points the Service back).
  if (await idle() === false) return `restored service/${service}; another developer joined meanwhile, so the router stays`;
  const router = meshNames(service).router;
  try {
    await api.deleteDeploymentForeground(ns, router);
    if (!await waitUntil(timing.routerGoneMs, timing.pollMs, async () => (await api.getDeployment(ns, router)) === undefined)) {
      notes.push(`the router had not finished draining after ${Math.round(timing.routerGoneMs / 1000)} s`);
    }
  } catch (e) {
    notes.push(`could not let the router drain first (${errorText(e)})`);
  }
  await api.deleteConfigMap(ns, configMap);
  return `restored service/${service} and removed its router (no developer left)${notes.length ? `; warning: ${notes.join('; ')}` : ''}`;
}

/** Whether the session still points the Service elsewhere (its lock and the kept selector); false when it cannot tell. */
async function heldBy(api: RecoveryApi, plan: RecoveryPlan, service: string): Promise<boolean> {
  let svc: ServiceView | undefined;
  try { svc = await api.getService(plan.namespace, service); } catch { return false; }
  return !!svc && parseLock(svc.annotations)?.session === plan.session && svc.annotations[ANNOTATION.originalSelector] !== undefined;
}

/**
 * After scaling back: until the Deployment's pods are Ready and (with a Service) listed ready in
 * its endpoints besides the session's shadow, so that the shadow, which still serves in scale mode,
 * goes only once callers have somewhere else to go. Bounded; says so when the bound passed.
 */
async function waitReplicasServing(plan: RecoveryPlan, deployment: string, named: string | undefined, replicas: number, api: RecoveryApi, timing: RecoveryTiming): Promise<string> {
  if (replicas <= 0) return '';
  const ms = timing.replicasMs ?? 60_000;
  let seen = 'no pod Ready yet';
  try {
    // A Service this session still points at its shadow (a start stopped midway) lists the pods
    // only once its restore-selector, next in the plan, ran: Ready is all there is to wait for.
    const service = named && !await heldBy(api, plan, named) ? named : undefined;
    const ok = await waitUntil(ms, timing.pollMs, async () => {
      const dep = await api.getDeployment(plan.namespace, deployment);
      // Gone, or an implementation that does not read status: nothing to wait for.
      if (dep?.readyReplicas === undefined) return true;
      const ready = dep.readyReplicas;
      seen = `${ready} of ${replicas} pods Ready`;
      if (dep.observed === false || ready < replicas) return false;
      if (!service) return true;
      // The shadow's name ends with the session id (kt-exchange-<session>).
      const serving = (await api.listEndpoints(plan.namespace, service)).filter((e) => e.ready && !e.pod?.endsWith(plan.session)).length;
      seen = `${ready} of ${replicas} pods Ready, ${serving} in service/${service}'s endpoints`;
      return serving >= replicas;
    });
    return ok ? ` (its pods Ready${service ? ` and in service/${service}'s endpoints` : ''})` : `; warning: not serving after ${Math.round(ms / 1000)} s (${seen}), so callers may have seen errors`;
  } catch (e) {
    return `; warning: could not wait for its pods (${e instanceof Error ? e.message : String(e)})`;
  }
}

/**
 * The route table a ConfigMap holds (its ROUTES_KEY); undefined when there is none. A table that
 * does not validate (contract/route-table.ts) throws RouteTableError: never taken for an empty one.
 */
export function parseTable(raw: string | undefined): RouteTable | undefined {
  if (raw === undefined) return undefined;
  return parseRouteTable(raw);
}

/**
 * Changes a route table with optimistic concurrency (several developers edit it at once): read,
 * change, write if unchanged meanwhile, else again. Resolves false when there was no table or
 * nothing changed.
 */
export async function updateRoutes(api: RecoveryApi, ns: string, name: string, change: (t: RouteTable) => RouteTable): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const cm = await api.getConfigMap(ns, name);
    const table = parseTable(cm?.data[ROUTES_KEY]);
    if (!cm || !table) return false;
    const next = change(table);
    if (JSON.stringify(next) === JSON.stringify(table)) return false;
    const written = writeBackRouteTable(cm.data[ROUTES_KEY], next);
    if (await api.replaceConfigMapData(ns, name, { ...cm.data, [ROUTES_KEY]: JSON.stringify(written) }, cm.resourceVersion)) return true;
  }
  throw new Error(`configmap/${name} kept changing under us`);
}

/**
 * Runs every step, in order; a failing step does not stop the others. Returns what was done and
 * what failed, one line each.
 */
export async function runRecovery(plan: RecoveryPlan, api: RecoveryApi, timing: RecoveryTiming = RECOVERY_TIMING): Promise<{ done: string[]; failed: string[] }> {
  const done: string[] = [];
  const failed: string[] = [];
  for (const step of plan.steps) {
    try {
      const d = await runStep(plan, step, api, timing);
      if (d) done.push(d);
    } catch (e) {
      if (e instanceof UnknownStepError) { failed.push(e.message); continue; }
      const what = 'service' in step ? step.service : 'deployment' in step ? step.deployment : 'configMap' in step ? step.configMap : step.name;
      failed.push(`${step.op} ${what}: ${(e as Error).message}`);
    }
  }
  return { done, failed };
}
