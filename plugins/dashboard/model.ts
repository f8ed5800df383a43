// The dashboard's state model: the objects of a namespace in, what the page shows out (and what
// `kt-dashboard -o json` prints). Pure: no API calls, no clock; `now` is the cluster's.
import type { V1ConfigMap, V1Deployment, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { ANNOTATION, LABEL, ROLE, ROUTER_LABEL, ROUTES_KEY, SELECT_LABEL, meshNames } from '../../contract/index.ts';
import { parseLock, parseTable } from '../../contract/recovery.ts';
import type { LocalSession } from '../session/local-state.ts';
import { sessionsFromPods } from '../housekeeping/sessions.ts';
import { KT_API_VERSION, rfc3339, sessionFromCluster, type Session } from '../housekeeping/schema.ts';

/** What the dashboard reads of one namespace; a kind the user may not list is absent. */
export interface NamespaceObjects {
  namespace: string;
  services: V1Service[];
  pods?: V1Pod[] | undefined;
  deployments?: V1Deployment[] | undefined;
  configMaps?: V1ConfigMap[] | undefined;
  endpointSlices?: V1EndpointSlice[] | undefined;
  /** What the user may not see here, in words ("list deployments: scale-mode exchanges"). */
  hidden?: string[];
}

/** A session's health as far as a Service is concerned; gone: the Service names a session without pods. */
export type HolderState = Session['status']['state'] | 'gone';

export interface Holder {
  session: string;
  user: string;
  state: HolderState;
  /** RFC 3339, by the cluster's clock. */
  since?: string;
  heartbeatAgeSeconds?: number;
}

export interface ServingPod {
  name: string;
  /** real: the workload's own pod; shadow: a kt session's; router: a kt-mesh router. */
  role: 'real' | 'shadow' | 'router';
  ready: boolean;
  session?: string;
}

export interface ServiceView {
  name: string;
  type: string;
  clusterIP: string;
  ports: string[];
  state: 'natural' | 'exchanged' | 'meshed' | 'previewed';
  exchange?: Holder & { mode: 'selector' | 'scale'; deployment?: string };
  mesh?: {
    router: string;
    stuntman: string;
    header: string;
    routes: (Holder & { mark: string; target: string })[];
    /** Why the route table could not be read, if it could not. */
    problem?: string;
  };
  preview?: Holder;
  serving: ServingPod[];
  /** Set when a session involved is stale, orphaned or gone: what to do about it. */
  attention?: string;
}

export interface NamespaceView {
  name: string;
  services: ServiceView[];
  sessions: (Session & { cleanable: boolean })[];
  hidden: string[];
}

export interface Dashboard {
  apiVersion: typeof KT_API_VERSION;
  kind: 'Dashboard';
  metadata: { clusterTime: string };
  namespaces: NamespaceView[];
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function podRole(p: V1Pod | undefined): ServingPod['role'] {
  const role = p?.metadata?.labels?.[LABEL.role];
  return role === ROLE.shadow ? 'shadow' : role === ROLE.router ? 'router' : 'real';
}

function podReady(p: V1Pod): boolean {
  return !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The pods a Service sends to now: its EndpointSlices when readable, else its selector over the pods. */
function servingPods(svc: V1Service, o: NamespaceObjects, podsByName: Map<string, V1Pod>): ServingPod[] {
  const name = svc.metadata!.name!;
  const out = new Map<string, ServingPod>();
  if (o.endpointSlices) {
    for (const es of o.endpointSlices) {
      if (es.metadata?.labels?.['kubernetes.io/service-name'] !== name) continue;
      for (const ep of es.endpoints ?? []) {
        const podName = ep.targetRef?.kind === 'Pod' ? ep.targetRef.name : undefined;
        if (!podName) continue;
        const pod = podsByName.get(podName);
        const session = pod?.metadata?.labels?.[LABEL.session];
        out.set(podName, { name: podName, role: podRole(pod), ready: ep.conditions?.ready !== false, ...(session ? { session } : {}) });
      }
    }
  } else {
    for (const pod of o.pods ?? []) {
      if (!selects(svc.spec?.selector, pod.metadata?.labels) || pod.status?.phase !== 'Running') continue;
      const session = pod.metadata?.labels?.[LABEL.session];
      out.set(pod.metadata!.name!, { name: pod.metadata!.name!, role: podRole(pod), ready: podReady(pod), ...(session ? { session } : {}) });
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Holders of a Service: named by a lock, a route or a preview's session label, judged by their session's pods. */
function holder(session: string, user: string | undefined, sessions: Map<string, Session>, since?: number): Holder {
  const s = sessions.get(session);
  return {
    session, user: user ?? s?.spec.user ?? 'unknown', state: s ? s.status.state : 'gone',
    ...(since !== undefined ? { since: rfc3339(since) } : s ? { since: s.metadata.creationTimestamp } : {}),
    ...(s?.status.heartbeatAgeSeconds !== undefined ? { heartbeatAgeSeconds: s.status.heartbeatAgeSeconds } : {}),
  };
}

const unhealthy = (h: Holder): boolean => h.state === 'stale' || h.state === 'orphaned' || h.state === 'gone';

function attentionFor(holders: Holder[]): string | undefined {
  const bad = holders.filter(unhealthy);
  if (bad.length === 0) return undefined;
  return bad.map((h) => `session ${h.session} of ${h.user} is ${h.state === 'gone' ? 'gone (its pods are deleted)' : h.state}`).join('; ');
}

/** One namespace's view: objects in, page model out. `now` is the cluster's clock (ms). */
export function namespaceView(o: NamespaceObjects, now: number, local: readonly LocalSession[], alive?: (pid: number) => boolean): NamespaceView {
  const ktPods = (o.pods ?? []).filter((p) => p.metadata?.labels?.[LABEL.managedBy] === 'kt');
  const clusterSessions = sessionsFromPods(ktPods, now, local, undefined, alive);
  const sessions = clusterSessions.map(sessionFromCluster);
  const byId = new Map(sessions.map((s) => [s.metadata.name, s]));
  const podsByName = new Map((o.pods ?? []).map((p) => [p.metadata!.name!, p]));
  const configMaps = new Map((o.configMaps ?? []).map((c) => [c.metadata!.name!, c]));
  // Scale-mode exchanges: the lock sits on the Deployment, whose pod labels the Service selects.
  const scaled = (o.deployments ?? []).flatMap((d) => {
    const lock = parseLock(d.metadata?.annotations);
    return lock && lock.kind === 'exchange' && d.metadata?.annotations?.[ANNOTATION.originalReplicas] !== undefined ? [{ d, lock }] : [];
  });
  const services: ServiceView[] = [];
  for (const svc of o.services) {
    const name = svc.metadata!.name!;
    const labels = svc.metadata?.labels ?? {};
    const kind = svc.metadata?.annotations?.[ANNOTATION.kind];
    // A mesh's own Services (the real pods', each developer's) are shown inside the mesh.
    if (labels[LABEL.managedBy] === 'kt' && labels[LABEL.role] === ROLE.service && kind !== 'preview') continue;
    const selector = svc.spec?.selector ?? {};
    const view: ServiceView = {
      name, type: svc.spec?.type ?? 'ClusterIP', clusterIP: svc.spec?.clusterIP ?? '',
      ports: (svc.spec?.ports ?? []).map((p) => `${p.name ? `${p.name}:` : ''}${p.port}/${p.protocol ?? 'TCP'}`),
      state: 'natural', serving: servingPods(svc, o, podsByName),
    };
    const lock = parseLock(svc.metadata?.annotations);
    const previewSession = kind === 'preview' ? labels[LABEL.session] : undefined;
    if (previewSession) {
      view.state = 'previewed';
      view.preview = holder(previewSession, svc.metadata?.annotations?.[ANNOTATION.user], byId);
      view.attention = attentionFor([view.preview]);
    } else if (selector[ROUTER_LABEL] === name) {
      const names = meshNames(name);
      view.state = 'meshed';
      const mesh: NonNullable<ServiceView['mesh']> = { router: names.router, stuntman: names.stuntman, header: '-', routes: [] };
      try {
        const table = parseTable(configMaps.get(names.routes)?.data?.[ROUTES_KEY]);
        if (table) {
          mesh.header = table.header;
          mesh.routes = table.routes.map((r) => ({ ...holder(r.session, r.user, byId), mark: r.version, target: r.target }));
        } else if (o.configMaps) {
          mesh.problem = `no route table (configmap/${names.routes})`;
        }
      } catch (e) {
        mesh.problem = `configmap/${names.routes}: ${(e as Error).message}`;
      }
      view.mesh = mesh;
      view.attention = attentionFor(mesh.routes);
    } else if (selector[SELECT_LABEL.exchange] !== undefined || lock?.kind === 'exchange') {
      const session = lock?.session ?? selector[SELECT_LABEL.exchange]!;
      view.state = 'exchanged';
      view.exchange = { ...holder(session, lock?.user, byId, lock?.since), mode: 'selector' };
      view.attention = attentionFor([view.exchange]);
    }
    const scale = view.state === 'natural' ? scaled.find(({ d }) => selects(selector, d.spec?.template?.metadata?.labels)) : undefined;
    if (scale) {
      view.state = 'exchanged';
      view.exchange = { ...holder(scale.lock.session, scale.lock.user, byId, scale.lock.since), mode: 'scale', deployment: scale.d.metadata!.name! };
      view.attention = attentionFor([view.exchange]);
    }
    if (view.attention === undefined) delete view.attention;
    services.push(view);
  }
  services.sort((a, b) => a.name.localeCompare(b.name));
  return {
    name: o.namespace, services,
    sessions: sessions.map((s) => ({ ...s, cleanable: s.status.state === 'stale' || s.status.state === 'orphaned' })),
    hidden: [...(o.hidden ?? [])],
  };
}

export function dashboard(namespaces: NamespaceView[], now: number): Dashboard {
  return { apiVersion: KT_API_VERSION, kind: 'Dashboard', metadata: { clusterTime: rfc3339(now) }, namespaces };
}
