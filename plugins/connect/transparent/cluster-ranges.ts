// The address ranges that belong to the cluster, learned from the cluster itself with only
// namespace-scoped rights: the service range from the API server's own validation message for a
// dry-run Service with an impossible ClusterIP, the pod range from the nodes when they may be
// read, else from the pod IPs of the namespace.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { apiStatus, type Kube } from '../../kube/kube.ts';
import type { Logger } from '../../cli/log.ts';

export interface ClusterRanges {
  serviceCidrs: string[];
  podCidrs: string[];
}

const CIDR_RE = /(\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2})/g;

/** The /16 around an IPv4 address: a cover for a range that could not be read exactly. */
export function around16(ip: string): string {
  const [a, b] = ip.split('.');
  return `${a}.${b}.0.0/16`;
}

export async function serviceCidrs(kube: Kube, log: Logger): Promise<string[]> {
  try {
    await kube.core.createNamespacedService({
      namespace: kube.namespace,
      dryRun: 'All',
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kt-range-probe' }, spec: { clusterIP: '0.0.0.1', ports: [{ port: 80 }] } },
    });
  } catch (e) {
    const text = String((e as { body?: unknown }).body ?? (e as Error).message);
    const m = /valid IPs is ([^"\\]+)/.exec(text);
    const found = m ? [...m[1]!.matchAll(CIDR_RE)].map((x) => x[1]!) : [];
    if (found.length > 0) return found;
    log.debug(`service range probe: ${apiStatus(e) ?? ''} ${text.slice(0, 200)}`);
  }
  const svcs = await kube.core.listNamespacedService({ namespace: kube.namespace }).catch(() => undefined);
  const ips = (svcs?.items ?? []).map((s) => s.spec?.clusterIP).filter((ip): ip is string => !!ip && isIP(ip) === 4);
  return [...new Set(ips.map(around16))];
}

export async function podCidrs(kube: Kube, log: Logger): Promise<string[]> {
  try {
    const nodes = await kube.core.listNode();
    const cidrs = nodes.items.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])).filter((c) => !c.includes(':'));
    if (cidrs.length > 0) return [...new Set(cidrs)];
  } catch (e) {
    log.debug(`cannot read node pod ranges (${apiStatus(e) ?? (e as Error).message}); deriving them from pod IPs`);
  }
  const pods = await kube.core.listNamespacedPod({ namespace: kube.namespace }).catch(() => undefined);
  const ips = (pods?.items ?? []).filter((p) => !p.spec?.hostNetwork).map((p) => p.status?.podIP).filter((ip): ip is string => !!ip && isIP(ip) === 4);
  return [...new Set(ips.map(around16))];
}

export async function clusterRanges(kube: Kube, log: Logger): Promise<ClusterRanges> {
  const [s, p] = await Promise.all([serviceCidrs(kube, log), podCidrs(kube, log)]);
  return { serviceCidrs: s, podCidrs: p };
}

/** The API server's address(es): never captured, or kt would cut its own tunnel. */
export async function apiServerAddresses(server: string): Promise<string[]> {
  const host = new URL(server).hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return [host];
  const all = await lookup(host, { all: true }).catch(() => []);
  return all.map((a) => a.address).filter((a) => isIP(a) === 4);
}
