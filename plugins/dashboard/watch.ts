// Keeping the dashboard's copy of the cluster current: per kind of object, client-node's ListWatch
// (list, then watch from its resourceVersion, and a fresh list when the server answers 410 Gone).
// The user's own rights decide: a kind they may list but not watch (the documented Role grants
// no watch on pods or Services) is listed every second instead; one they may not list is left out
// and the page says so.
import {
  AppsV1Api, DiscoveryV1Api, ListWatch, Watch,
  type KubernetesListObject, type KubernetesObject,
} from '@kubernetes/client-node';
import { LABEL, MANAGED_BY } from '../../contract/index.ts';
import { canI, type Kube } from '../kube/kube.ts';
import { UserError } from '../cli/errors.ts';

export type KindName = 'services' | 'pods' | 'deployments' | 'configmaps' | 'endpointslices';

interface KindSpec {
  resource: KindName;
  group: string;
  /** The API path of the collection; namespace undefined: all namespaces. */
  path(ns: string | undefined): string;
  list(ns: string | undefined): Promise<KubernetesListObject<KubernetesObject>>;
  labelSelector?: string;
  /** What the page cannot show without it. */
  without: string;
}

function kinds(kube: Kube): KindSpec[] {
  const apps = kube.kc.makeApiClient(AppsV1Api);
  const discovery = kube.kc.makeApiClient(DiscoveryV1Api);
  const core = kube.core;
  const ktOnly = `${LABEL.managedBy}=${MANAGED_BY}`;
  const at = (prefix: string, plural: string) => (ns: string | undefined): string => (ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`);
  return [
    { resource: 'services', group: '', path: at('/api/v1', 'services'), list: (ns) => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces()), without: 'Services' },
    { resource: 'pods', group: '', path: at('/api/v1', 'pods'), list: (ns) => (ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces()), without: 'pods: sessions, and which pods serve each Service' },
    {
      resource: 'deployments', group: 'apps', path: at('/apis/apps/v1', 'deployments'),
      list: (ns) => (ns ? apps.listNamespacedDeployment({ namespace: ns }) : apps.listDeploymentForAllNamespaces()), without: 'deployments: exchanges in scale mode',
    },
    {
      resource: 'configmaps', group: '', path: at('/api/v1', 'configmaps'), labelSelector: ktOnly,
      list: (ns) => (ns ? core.listNamespacedConfigMap({ namespace: ns, labelSelector: ktOnly }) : core.listConfigMapForAllNamespaces({ labelSelector: ktOnly })),
      without: "configmaps: a mesh's marks and routes",
    },
    {
      resource: 'endpointslices', group: 'discovery.k8s.io', path: at('/apis/discovery.k8s.io/v1', 'endpointslices'),
      list: (ns) => (ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }) : discovery.listEndpointSliceForAllNamespaces()),
      without: "endpointslices: the pods serving each Service are guessed from its selector",
    },
  ];
}

const POLL_MS = 1000;

/** One kind of object in one scope (a namespace, or all), kept current. */
class Feed {
  mode: 'watch' | 'poll' = 'watch';
  private items: KubernetesObject[] = [];
  private lw: ListWatch<KubernetesObject> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastVersion = '';

  readonly spec: KindSpec;
  private readonly kube: Kube;
  private readonly ns: string | undefined;
  private readonly onChange: () => void;

  constructor(spec: KindSpec, kube: Kube, ns: string | undefined, onChange: () => void) {
    this.spec = spec;
    this.kube = kube;
    this.ns = ns;
    this.onChange = onChange;
  }

  async start(mayWatch: boolean): Promise<void> {
    if (!mayWatch) return this.poll();
    const lw = new ListWatch<KubernetesObject>(this.spec.path(this.ns), new Watch(this.kube.kc), () => this.spec.list(this.ns), false, this.spec.labelSelector);
    this.lw = lw;
    for (const verb of ['add', 'update', 'delete'] as const) lw.on(verb, () => this.onChange());
    lw.on('error', (err: unknown) => {
      if (this.stopped) return;
      // A transport failure, or the watch closed with an error: list and watch again shortly.
      setTimeout(() => { if (!this.stopped) void lw.start(); }, POLL_MS).unref();
      void err;
    });
    await lw.start();
    this.onChange();
  }

  private async poll(): Promise<void> {
    this.mode = 'poll';
    const once = async (): Promise<void> => {
      try {
        const l = await this.spec.list(this.ns);
        const version = l.metadata?.resourceVersion ?? '';
        this.items = l.items;
        if (version !== this.lastVersion) { this.lastVersion = version; this.onChange(); }
      } catch { /* the next round tries again */ }
    };
    // The next round is timed from the end of the last: a slow API server (a laptop far away) must
    // not get a second list while the first is still on its way, nor an older answer win.
    const next = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void once().then(next), POLL_MS);
      this.timer.unref();
    };
    await once();
    next();
  }

  list(): KubernetesObject[] {
    return this.lw ? [...this.lw.list()] : this.items;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    void this.lw?.stop();
  }
}

export interface Feeds {
  /** The objects of a kind, undefined when the user may not list it. */
  get(kind: KindName): KubernetesObject[] | undefined;
  /** What the page cannot show, and which kinds are polled rather than watched. */
  hidden: string[];
  polled: KindName[];
  stop(): void;
}

/**
 * Starts a feed per kind the user may list in the scope (a namespace, or undefined: all of them),
 * after asking the API server what they may do. No right to list Services ends it in one sentence.
 */
export async function startFeeds(kube: Kube, ns: string | undefined, onChange: () => void): Promise<Feeds> {
  const specs = kinds(kube);
  const rights = await Promise.all(specs.map(async (k) => ({
    list: await canI(kube, 'list', k.resource, ns, k.group), watch: await canI(kube, 'watch', k.resource, ns, k.group),
  })));
  const where = ns ? `in namespace "${ns}"` : 'in all namespaces';
  if (rights[0]!.list === false) {
    throw new UserError(`you may not list services ${where}${ns ? '' : '; pick one namespace with -n'}, so there is nothing to show.`);
  }
  const feeds = new Map<KindName, Feed>();
  const hidden: string[] = [];
  const polled: KindName[] = [];
  await Promise.all(specs.map(async (k, i) => {
    if (rights[i]!.list === false) { hidden.push(`list ${k.resource} ${where} (${k.without})`); return; }
    const f = new Feed(k, kube, ns, onChange);
    feeds.set(k.resource, f);
    const mayWatch = rights[i]!.watch !== false;
    if (!mayWatch) polled.push(k.resource);
    await f.start(mayWatch);
  }));
  return {
    get: (kind) => feeds.get(kind)?.list(),
    hidden, polled,
    stop: () => { for (const f of feeds.values()) f.stop(); },
  };
}
