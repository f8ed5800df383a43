// The address ranges that belong to the cluster, learned from the cluster itself with only
// namespace-scoped rights: the service range from the API server's own validation message for a
// dry-run Service with an impossible ClusterIP, the pod range from the nodes when they may be
// read, else from the pod IPs of the namespace. Both families: a dual-stack or IPv6 cluster has
// an IPv6 service range (asked with an IPv6 ClusterIP), IPv6 node pod ranges and IPv6 pod IPs.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { apiStatus, type Kube } from '../../kube/kube.ts';
import type { Logger } from '../../cli/log.ts';
import { around, parseCidr, type Family } from './cidr.ts';

export interface ClusterRanges {
  serviceCidrs: string[];
  podCidrs: string[];
}

/**
 * ClusterIPs no service range holds, one per family: 0.0.0.1, and 100::1 from the IPv6 discard
 * prefix (RFC 6666). The API server refuses them naming the family's range, or saying the cluster
 * has no such family.
 */
export const PROBE_CLUSTER_IP: Record<Family, string> = { 4: '0.0.0.1', 6: '100::1' };

/** The ranges of `family` in the API server's "The range of valid IPs is ..." message. */
export function rangesInMessage(text: string, family: Family): string[] {
  const m = /valid IPs is ([^"\\]+)/.exec(text);
  const tokens = m ? m[1]!.split(/[\s,;[\]]+/).map((t) => t.replace(/[.:]+$/, '')) : [];
  return [...new Set(tokens.map(parseCidr).filter((c) => c?.family === family).map((c) => c!.text))];
}

async function probeServiceRange(kube: Kube, log: Logger, family: Family): Promise<string[]> {
  try {
    await kube.core.createNamespacedService({
      namespace: kube.namespace,
      dryRun: 'All',
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kt-range-probe' }, spec: { clusterIP: PROBE_CLUSTER_IP[family], ports: [{ port: 80 }] } },
    });
  } catch (e) {
    const text = String((e as { body?: unknown }).body ?? (e as Error).message);
    const found = rangesInMessage(text, family);
    if (found.length > 0) return found;
    log.debug(`IPv${family} service range probe: ${apiStatus(e) ?? ''} ${text.slice(0, 200)}`);
  }
  return [];
}

/** The cluster's service ranges, IPv4 first; covers around the namespace's ClusterIPs when the probe says nothing. */
export async function serviceCidrs(kube: Kube, log: Logger): Promise<string[]> {
  const found = (await Promise.all([probeServiceRange(kube, log, 4), probeServiceRange(kube, log, 6)])).flat();
  if (found.length > 0) return found;
  const svcs = await kube.core.listNamespacedService({ namespace: kube.namespace }).catch(() => undefined);
  const ips = (svcs?.items ?? []).flatMap((s) => s.spec?.clusterIPs ?? (s.spec?.clusterIP ? [s.spec.clusterIP] : [])).filter((ip) => isIP(ip) !== 0);
  return covers(ips);
}

/** The covers around addresses (around()), IPv4 first, once each. */
function covers(ips: readonly string[]): string[] {
  const all = [...new Set(ips.map((ip) => around(ip)).filter((c): c is string => c !== undefined))];
  return [...all.filter((c) => !c.includes(':')), ...all.filter((c) => c.includes(':'))];
}

export async function podCidrs(kube: Kube, log: Logger): Promise<string[]> {
  try {
    const nodes = await kube.core.listNode();
    const cidrs = nodes.items.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])).map((c) => parseCidr(c)?.text).filter((c): c is string => c !== undefined);
    if (cidrs.length > 0) return [...new Set(cidrs)];
  } catch (e) {
    log.debug(`cannot read node pod ranges (${apiStatus(e) ?? (e as Error).message}); deriving them from pod IPs`);
  }
  const pods = await kube.core.listNamespacedPod({ namespace: kube.namespace }).catch(() => undefined);
  const ips = (pods?.items ?? []).filter((p) => !p.spec?.hostNetwork)
    .flatMap((p) => p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : [])).filter((ip) => isIP(ip) !== 0);
  return covers(ips);
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
  return all.map((a) => a.address);
}
