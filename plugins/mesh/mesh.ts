// kubectl kt-mesh: only requests that carry this developer's version mark (a header, or the same
// key in an OpenTelemetry baggage header) come to the laptop; everyone else keeps using the real
// pods. Several developers can mesh one Service at once: the first sets up a shared router, each
// adds a route, the last one out (or the cluster itself, after a vanished laptop) restores it.
import type { V1Service } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import {
  ANNOTATION, CONTRACT_VERSION, DEFAULT_VERSION_HEADER, ROUTER_LABEL, ROUTER_PORT, ROUTER_STATUS, ROUTES_KEY, SELECT_LABEL, SHADOW_PORT, meshNames, type Lock, type RecoveryPlan, type RouteTable,
} from '../../contract/index.ts';
import { validateRouteTable } from '../../contract/route-table.ts';
import { parseLock, parseTable, replaceSelectorPatch, runRecovery, updateRoutes } from '../../contract/recovery.ts';
import type { Options } from '../cli/cli.ts';
import type { MESH_FLAGS } from './flags.ts';
import { UserError } from '../cli/errors.ts';
import { parseExpose, resolveExpose, type ResolvedPort } from '../inbound/expose.ts';
import { forwardPorts } from '../inbound/forward.ts';
import { imageRef } from '../cli/images.ts';
import { apiStatus, call, clusterNow, mergePatch, prefetchRights, type Kube } from '../kube/kube.ts';
import { SHADOW_RIGHTS } from '../kube/rights.ts';
import { RBAC_OBJECT_RIGHTS } from '../session/self-healing.ts';
import { createLogger, type Logger } from '../cli/log.ts';
import type { Tunnel } from '../tunnel/tunnel.ts';
import { getThrough, HEALTH_SERVICE_PORT, serviceAnswers } from '../inbound/service-check.ts';
import { ensureRouter, isHttpPort, waitRouterReady, type MeshPort } from './router.ts';
import { waitThroughRouter } from './switch.ts';
import { readRouterStatuses, routerVersionCheck, type RouterVersionCheck } from './router-version.ts';
import { recoveryApi } from '../kube/recovery-api.ts';
import { checkLock, lockAnnotation, lockIsLive } from '../session/service-lock.ts';
import { annotations, labels, type Session } from '../session/session.ts';
import type { Lifecycle } from '../session/lifecycle.ts';
import { ROLE } from '../../contract/index.ts';
import { checkNamespace, kubeFromFlags, startShadowSession } from '../session/shadow-session.ts';
import { settleAll, step, throwIfInterrupted } from '../session/steps.ts';
import { checkPodEnvFlags, preparePodEnv, runCommand, type PodEnv } from '../podenv/podenv.ts';
import { phase, reportCriticalPath } from '../kube/round-trips.ts';

const KEY_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const VALUE_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export function parseMark(text: string | undefined): { header: string; version: string } {
  if (!text) {
    const letters = [...randomBytes(5)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
    return { header: DEFAULT_VERSION_HEADER, version: letters };
  }
  const i = text.indexOf(':');
  const header = (i >= 0 ? text.slice(0, i) : DEFAULT_VERSION_HEADER).toLowerCase();
  const version = i >= 0 ? text.slice(i + 1) : text;
  if (!KEY_RE.test(header)) throw new UserError(`--version-mark: "${header}" is not a usable header name (letters, digits and '-').`, 2);
  if (!VALUE_RE.test(version)) throw new UserError(`--version-mark: "${version}" is not a usable version (letters, digits, '-', '_' and '.', at most 63).`, 2);
  return { header, version };
}

function meshPorts(svc: V1Service, pods: Parameters<typeof resolveExpose>[2]): MeshPort[] {
  return (svc.spec?.ports ?? []).map((p) => {
    const [r] = resolveExpose([{ local: p.port, remote: String(p.port) }], svc, pods);
    return { port: p.port, target: r!.remote, name: p.name, protocol: isHttpPort({ ...(p.name ? { name: p.name } : {}), ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }) ? 'http' : 'tcp' };
  });
}

type MeshOptions = Options<typeof MESH_FLAGS>;

export async function runMesh(p: MeshOptions): Promise<number> {
  const svcName = p.args[0];
  if (!svcName || p.args.length > 1) throw new UserError('name one Service to mesh: kubectl kt-mesh SERVICE --expose LOCAL[:REMOTE].', 2);
  const specs = parseExpose(p.expose);
  const envReq = checkPodEnvFlags(p, false);
  const mark = parseMark(p.versionMark);
  const mode = p.mode;
  const recoverAfterMs = p.recoverAfter;
  const log = createLogger({ debug: p.debug });
  const kube = kubeFromFlags(p);
  phase('check the Service, its pods, routes and router');
  const ns = kube.namespace;
  const names = meshNames(svcName);

  // Everything is checked before anything is created: what does not depend on another answer is
  // asked at once, and said in order.
  const rights = [
    ...['create', 'patch', 'delete'].map((verb) => ({ verb, resource: 'services' })),
    ...['create', 'patch'].map((verb) => ({ verb, resource: 'configmaps' })),
    { verb: 'create', resource: 'deployments', group: 'apps' },
    { verb: 'create', resource: 'serviceaccounts' },
    ...['roles', 'rolebindings'].map((resource) => ({ verb: 'create', resource, group: 'rbac.authorization.k8s.io' })),
  ];
  prefetchRights(kube, ns, [...SHADOW_RIGHTS, ...rights, ...RBAC_OBJECT_RIGHTS]);
  const namespaceOk = checkNamespace(kube);
  const svcRead = kube.core.readNamespacedService({ namespace: ns, name: svcName });
  const routesRead = kube.core.readNamespacedConfigMap({ namespace: ns, name: names.routes }).catch(() => undefined);
  svcRead.catch(() => undefined);
  await namespaceOk;
  const svc = await svcRead.catch((e: unknown) => {
    if (apiStatus(e) === 404) throw new UserError(`service "${svcName}" does not exist in namespace "${ns}".`);
    throw e;
  });
  const lock = parseLock(svc.metadata?.annotations);
  if (lock?.kind === 'exchange') await checkLock(kube, `service/${svcName}`, svc.metadata?.annotations);
  const original = svc.metadata?.annotations?.[ANNOTATION.originalSelector];
  const selector = original ? JSON.parse(original) as Record<string, string> : svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) throw new UserError(`service/${svcName} has no selector, so kt cannot route around its pods.`);
  // The router takes every port of the Service (its selector is switched) and carries TCP only:
  // a UDP or SCTP port would go dark for everyone while the Service is meshed.
  const other = (svc.spec?.ports ?? []).find((p) => (p.protocol ?? 'TCP') !== 'TCP');
  if (other) throw new UserError(`service/${svcName} port ${other.port}${other.name ? ` (${other.name})` : ''} is ${other.protocol}, which kt-mesh's router cannot carry, so it would stop for everyone while meshed; use kt-exchange, or serve that port from a Service of its own.`, 2);
  const selectorText = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = (await kube.core.listNamespacedPod({ namespace: ns, labelSelector: selectorText })).items;
  const realSvc: V1Service = { ...svc, spec: { ...svc.spec, selector } };
  const ports: ResolvedPort[] = resolveExpose(specs, realSvc, pods);
  const allPorts = meshPorts(realSvc, pods);
  for (const r of ports) {
    const mp = allPorts.find((m) => m.port === r.servicePort)!;
    if (mode === 'auto' && mp.protocol !== 'http') {
      throw new UserError(`service/${svcName} port ${mp.port}${mp.name ? ` (${mp.name})` : ''} is not HTTP, so requests on it cannot be routed by header; name the port http-* or set its appProtocol, or use kt-exchange.`, 2);
    }
  }
  const existing = await routesRead;
  let table: RouteTable | undefined;
  try {
    table = parseTable(existing?.data?.[ROUTES_KEY]);
  } catch (e) {
    throw new UserError(`service/${svcName} is meshed, but its route table configmap/${names.routes} is not one this kt can use: ${(e as Error).message}.`);
  }
  if (table && mode === 'auto') {
    if (table.header !== mark.header) throw new UserError(`service/${svcName} is meshed by header "${table.header}"; use --version-mark ${table.header}:VALUE.`, 2);
    const taken = table.routes.find((r) => r.version === mark.version);
    if (taken && await lockIsLive(kube, { session: taken.session, user: taken.user, kind: 'mesh', since: 0 })) {
      throw new UserError(`version "${mark.version}" of service/${svcName} is already taken by ${taken.user} (session ${taken.session}); pick another --version-mark.`, 2);
    }
  }
  // Joining: the router already serving the mesh must speak a compatible contract.
  const routerImage = imageRef('router', p.routerImage);
  const versions = routerVersionCheck(kube, svcName, routerImage, log);
  if (table && mode === 'auto') for (const doc of await readRouterStatuses(kube, svcName)) await versions.check(doc);
  const podEnv = await preparePodEnv(kube, log, envReq, { what: `service/${svcName}`, pods, targetPorts: ports.map((x) => x.remote) });
  if (mode === 'manual') return runManual(p, kube, svc, pods[0]?.metadata?.labels ?? selector, ports, mark, recoverAfterMs, podEnv);

  const devService = (sid: string): string => `${svcName.slice(0, 49)}-kt-${sid}`;
  const planFor = (sid: string): RecoveryPlan => ({
    session: sid,
    namespace: ns,
    steps: [
      { op: 'remove-route', configMap: names.routes },
      { op: 'unmesh-if-idle', service: svcName, configMap: names.routes },
      { op: 'delete', kind: 'Service', name: devService(sid) },
    ],
  });
  // The session's tunnel once it is up (leaving asks the routers through it).
  const live: { tunnel?: Tunnel } = {};
  // Made as soon as the shadow pod exists (see `alongside` below).
  const meshObjects = async (session: Session, life: Lifecycle): Promise<void> => {
    // This developer's own Service in front of the shadow: the router's target for the version.
    const dev = devService(session.id);
    life.defer(`delete service/${dev}`, () => kube.core.deleteNamespacedService({ namespace: ns, name: dev }).then(() => undefined, () => undefined));
    // Routes out first on exit, then the shared objects if this was the last developer.
    const undo = planFor(session.id);
    life.defer(`remove this laptop's route from service/${svcName}`, async () => {
      const [removeRoute, ...rest] = undo.steps;
      const first = await runRecovery({ ...undo, steps: [removeRoute!] }, recoveryApi(kube));
      // The routers pick the change up through a watch, a moment later: until they have, marked
      // requests still come here, and the tunnel closes only after that.
      if (first.done.length > 0 && live.tunnel) await waitUnrouted(kube, live.tunnel, svcName, mark.version);
      const r = await runRecovery({ ...undo, steps: rest.slice(0, 1) }, recoveryApi(kube));
      for (const d of [...first.done, ...r.done]) log.progress(d);
      for (const f of [...first.failed, ...r.failed]) log.warn(`could not undo: ${f}`);
    });
    const domain = p.clusterDomain;
    const fresh: RouteTable = {
      contract: CONTRACT_VERSION,
      header: mark.header,
      ports: allPorts.map((m) => ({ port: m.target, protocol: m.protocol, ...(m.name ? { name: m.name } : {}) })),
      defaultTarget: `${names.stuntman}.${ns}.svc.${domain}`,
      routes: [],
    };
    // The developer's Service and the router do not depend on each other: at once, so the
    // router's pod starts a round trip sooner.
    await settleAll([
      async () => {
        await step(`create service/${dev} in front of the shadow`);
        await call(kube, 'create', 'services', () => kube.core.createNamespacedService({ namespace: ns, body: {
          metadata: { name: dev, namespace: ns, labels: labels(session, ROLE.service), annotations: annotations(session) },
          spec: {
            selector: { [SELECT_LABEL.mesh]: session.id },
            ports: [
              ...ports.map((x) => ({ name: `p${x.remote}`, port: x.remote, targetPort: x.remote })),
              // The shadow's health port, so kt can tell when the Service works (see waitRouted).
              ...(ports.some((x) => x.remote === SHADOW_PORT.health) ? [] : [HEALTH_SERVICE_PORT]),
            ],
          },
        } }));
      },
      async () => {
        const created = await call(kube, 'create', 'configmaps', () => ensureRouter(kube, realSvc, allPorts, routerImage, fresh));
        if (created) log.progress(`created the router for service/${svcName}`);
      },
    ]);
    const route = { version: mark.version, target: `${dev}.${ns}.svc.${domain}`, session: session.id, user: session.user };
    await step(`add the route for version "${mark.version}"`);
    await updateRoutes(recoveryApi(kube), ns, names.routes, (t) => ({ ...t, routes: [...t.routes.filter((r) => r.version !== mark.version), route] }));
  };
  const s = await startShadowSession(p, {
    kind: 'mesh',
    kube,
    // The developer's Service, the route table, and (first developer) the router and its account.
    rights,
    customize: (session) => ({
      extraLabels: { [SELECT_LABEL.mesh]: session.id },
      extraAnnotations: { [ANNOTATION.target]: `service/${svcName}` },
      listenPorts: ports.map((x) => x.remote),
      selfHealing: { plan: planFor(session.id), recoverAfterMs },
    }),
    // The Service, the router and the route need the shadow pod to exist (it carries the plan that
    // undoes them), not to run: made while it starts and the tunnel connects, so the router's own
    // pod starts beside the shadow's.
    alongside: meshObjects,
  });
  const { session, tunnel } = s;
  live.tunnel = tunnel;
  const dev = devService(session.id);
  const domain = p.clusterDomain;
  await podEnv?.materialise(s);
  phase('listen in the shadow pod');
  await forwardPorts(tunnel, ports, log);
  phase('wait for the router and the route');
  log.progress('waiting for the router');
  await waitRouterReady(kube, svcName, 120_000);
  await waitRouted(kube, tunnel, svcName, `${dev}.${ns}.svc.${domain}`, mark.version, log, versions);

  const lockValue: Lock = { session: session.id, user: session.user, kind: 'mesh', since: await clusterNow(kube) };
  const point = async (): Promise<boolean> => {
    const cur = await kube.core.readNamespacedService({ namespace: ns, name: svcName });
    const sel = cur.spec?.selector ?? {};
    if (sel[ROUTER_LABEL] === svcName && Object.keys(sel).length === 1) return false;
    if (!await kube.core.readNamespacedConfigMap({ namespace: ns, name: names.routes }).then(() => true, () => false)) return false;
    const kept = cur.metadata?.annotations?.[ANNOTATION.originalSelector];
    const curLock = parseLock(cur.metadata?.annotations);
    await kube.core.patchNamespacedService({ namespace: ns, name: svcName, body: {
      metadata: { annotations: { ...(curLock?.kind === 'mesh' ? {} : lockAnnotation(lockValue)), [ANNOTATION.originalSelector]: kept && sel[ROUTER_LABEL] ? kept : JSON.stringify(sel) } },
      spec: { selector: replaceSelectorPatch(sel, { [ROUTER_LABEL]: svcName }) },
    } }, mergePatch);
    return true;
  };
  phase('switch the Service and confirm it');
  await step(`point service/${svcName} at the router`);
  await call(kube, 'patch', 'services', point);
  s.guard(point, `service/${svcName} was reset while meshed; pointed it back to the router`);
  // Also when the Service already pointed at the router: another developer may have just pointed it.
  await waitThroughRouter(kube, tunnel, svc, allPorts, log);

  s.record({ target: `service/${svcName}`, version: mark.version, header: mark.header, ports }, 'auto');
  reportCriticalPath(s.log, 'kt-mesh');
  const example = ports[0]!;
  s.log.info(`kt-mesh: requests to service/${svcName} in namespace "${ns}" with header "${mark.header}: ${mark.version}" (or baggage ${mark.header}=${mark.version}) now come to this laptop; all others go to the real pods (session ${session.id}).`);
  for (const x of ports) s.log.info(`  service port ${x.servicePort}${x.name ? ` (${x.name})` : ''} -> localhost:${x.local}`);
  s.log.info(`  try from a pod: curl -H '${mark.header}: ${mark.version}' http://${svcName}.${ns}${example.servicePort === 80 ? '' : `:${example.servicePort}`}/`);
  s.log.info(`  established connections stay with the pod they were opened to: a kept-alive HTTP or gRPC connection opened before service/${svcName} pointed at the router still reaches the real pods, marked or not, until its caller reconnects.`);
  s.log.info('Press Ctrl-C to stop.');
  if (p.rest.length > 0) return runCommand(s, p.rest, podEnv?.env ?? {});
  return s.runUntilSignal('leaving the mesh', `kt-mesh: left service/${svcName}; nothing of this session is left in the cluster.`);
}

/** Whether a router's status document lists the route for `version`. */
function routeLoaded(doc: unknown, version: string): boolean {
  try {
    return validateRouteTable(doc).routes.some((r) => r.version === version);
  } catch {
    return false;
  }
}

/**
 * The status document of every ready router pod of `svcName`, asked through the tunnel; undefined
 * for one that did not answer, or not with JSON.
 */
async function routerStatuses(kube: Kube, tunnel: Tunnel, svcName: string): Promise<unknown[]> {
  const pods = await kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: `${ROUTER_LABEL}=${svcName}` }).catch(() => undefined);
  const ips = (pods?.items ?? []).filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((p) => p.status?.podIP).filter((ip): ip is string => !!ip);
  const texts = await Promise.all(ips.map((ip) => getThrough(tunnel, ip, ROUTER_PORT.health, ROUTER_STATUS.path)));
  return texts.map((text) => {
    try {
      return text === undefined ? undefined : JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  });
}

/**
 * The banner may only say "routed" once a request with the mark really gets here: the router has
 * loaded the route, and the developer's Service answers (kube-proxy has its rules). Every router
 * pod's contract version is checked on the way (the first developer's own router included).
 */
async function waitRouted(kube: Kube, tunnel: Tunnel, svcName: string, devHost: string, version: string, log: Logger, versions: RouterVersionCheck): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    throwIfInterrupted();
    const serviceOk = await serviceAnswers(tunnel, devHost);
    const docs = await routerStatuses(kube, tunnel, svcName);
    let routed = docs.length > 0;
    for (const doc of docs) {
      if (doc === undefined) { routed = false; continue; }
      await versions.check(doc);
      routed &&= routeLoaded(doc, version);
    }
    if (serviceOk && routed) return;
    if (Date.now() > end) {
      log.warn(`the route for version "${version}" is not confirmed yet (${serviceOk ? '' : 'the Service does not answer; '}${routed ? '' : 'the router has not loaded it'}); requests may not arrive at first`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Leaving: waits until no ready router pod lists the route for `version` any more (or one cannot
 * be asked), within a bound: then no new marked request is sent to this laptop.
 */
async function waitUnrouted(kube: Kube, tunnel: Tunnel, svcName: string, version: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const inTime = <T>(p: Promise<T>): Promise<T | undefined> =>
    Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, end - Date.now())).unref())]);
  // A tunnel that is not up carries no marked request either (and asking through it would wait).
  while (Date.now() < end && tunnel.state === 'up') {
    const docs = await inTime(routerStatuses(kube, tunnel, svcName)) ?? [];
    const stillRouted = docs.some((doc) => doc !== undefined && routeLoaded(doc, version));
    if (!stillRouted) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Manual mode: only a pod with the real pods' labels plus `version`, for Istio rules. */
async function runManual(p: MeshOptions, kube: Kube, svc: V1Service, podLabels: Record<string, string>, ports: ResolvedPort[], mark: { header: string; version: string }, recoverAfterMs: number, podEnv: PodEnv | undefined): Promise<number> {
  const svcName = svc.metadata!.name!;
  const { 'pod-template-hash': _hash, ...base } = podLabels;
  const s = await startShadowSession(p, {
    kind: 'mesh',
    kube,
    customize: (session) => ({
      extraLabels: { ...base, version: mark.version },
      extraAnnotations: { [ANNOTATION.target]: `service/${svcName}` },
      listenPorts: ports.map((x) => x.remote),
      namedPorts: ports.filter((x) => x.targetName).map((x) => ({ name: x.targetName!, containerPort: x.remote })),
      selfHealing: { plan: { session: session.id, namespace: kube.namespace, steps: [] }, recoverAfterMs },
    }),
  });
  await podEnv?.materialise(s);
  await forwardPorts(s.tunnel, ports, s.log);
  s.record({ target: `service/${svcName}`, version: mark.version }, 'manual');
  s.log.info(`kt-mesh (manual): pod kt-mesh-${s.session.id} carries the labels of service/${svcName}'s pods plus version=${mark.version}.`);
  s.log.info(`  write Istio rules for it: a DestinationRule subset with label version: ${mark.version}, and a VirtualService route matching header "${mark.header}: ${mark.version}" to that subset.`);
  s.log.info('Press Ctrl-C to stop.');
  if (p.rest.length > 0) return runCommand(s, p.rest, podEnv?.env ?? {});
  return s.runUntilSignal('leaving', `kt-mesh: left service/${svcName}; nothing of this session is left in the cluster.`);
}
