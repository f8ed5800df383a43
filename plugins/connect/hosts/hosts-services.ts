// Which Services hosts mode gives names to: every Service the user may list. An admin lists them
// cluster-wide in one call; a namespace-scoped user (bound to a Role in a few namespaces) cannot, so
// kt lists namespace by namespace: those it may list namespaces to find, plus the session's and
// the ones named by --namespaces (a user who may not list namespaces names them there). Namespaces
// whose Services cannot be read are reported, in one line, so `svc.otherns` never silently fails.
import type { V1Service } from '@kubernetes/client-node';
import type { HostsService } from './hosts-mode.ts';
import { apiStatus, type Kube } from '../../kube/kube.ts';


/** --namespaces a,b: checked with the other flags, before anything is created. */

export interface ServiceListing {
  services: HostsService[];
  /** Namespaces whose Services could not be listed, with why ("forbidden", "does not exist"). */
  unreadable: { namespace: string; why: string }[];
  /** How they were found, for the banner. */
  scope: 'cluster' | 'namespaces';
  namespaces: string[];
}

export function toHostsServices(items: readonly V1Service[]): HostsService[] {
  return items
    .filter((x) => x.spec?.clusterIP && x.spec.clusterIP !== 'None')
    .map((x) => ({
      name: x.metadata!.name!,
      namespace: x.metadata!.namespace!,
      ports: (x.spec?.ports ?? []).map((pt) => ({ port: pt.port, protocol: pt.protocol ?? 'TCP', ...(pt.name ? { name: pt.name } : {}) })),
    }));
}

/** Runs fn over items, at most n at a time: a cluster may have hundreds of namespaces. */
async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

const refused = (e: unknown): boolean => apiStatus(e) === 403;

export async function listHostsServices(kube: Kube, extra: readonly string[]): Promise<ServiceListing> {
  try {
    const all = await kube.core.listServiceForAllNamespaces();
    return { services: toHostsServices(all.items), unreadable: [], scope: 'cluster', namespaces: [] };
  } catch (e) {
    if (!refused(e)) throw e;
  }
  const listed = await kube.core.listNamespace().then((l) => l.items.map((n) => n.metadata!.name!), (e: unknown) => {
    if (refused(e)) return [];
    throw e;
  });
  const candidates = [...new Set([kube.namespace, ...extra, ...listed])];
  type Result = { namespace: string; items: V1Service[] } | { namespace: string; why: string };
  const results = await pool(candidates, 8, async (namespace): Promise<Result> => {
    try {
      return { namespace, items: (await kube.core.listNamespacedService({ namespace })).items };
    } catch (e) {
      const code = apiStatus(e);
      if (code === 403) return { namespace, why: 'forbidden' };
      if (code === 404) return { namespace, why: 'does not exist' };
      throw e;
    }
  });
  const services: HostsService[] = [];
  const unreadable: { namespace: string; why: string }[] = [];
  const namespaces: string[] = [];
  for (const r of results) {
    if ('items' in r) { services.push(...toHostsServices(r.items)); namespaces.push(r.namespace); } else unreadable.push({ namespace: r.namespace, why: r.why });
  }
  return { services, unreadable, scope: 'namespaces', namespaces };
}

/** The one line naming the namespaces whose Services have no names, or undefined when there are none. */
export function unreadableLine(l: ServiceListing, max = 10): string | undefined {
  if (l.unreadable.length === 0) return undefined;
  const shown = l.unreadable.slice(0, max).map((u) => `${u.namespace} (${u.why})`).join(', ');
  const more = l.unreadable.length > max ? ` and ${l.unreadable.length - max} more` : '';
  return `hosts mode: cannot list the Services of ${l.unreadable.length === 1 ? 'namespace' : `${l.unreadable.length} namespaces`} ${shown}${more}; names in ${l.unreadable.length === 1 ? 'it' : 'them'} do not resolve here`;
}
