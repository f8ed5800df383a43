// kt-connect's transparent and hosts modes (socks mode lives in connect.ts): each starts on top of
// a connected shadow session and returns how to undo itself.
import { readFile } from 'node:fs/promises';
import { str, list, type Parsed } from './cli.ts';
import type { ConnectMode, ModeHandle } from './connect.ts';
import { apiServerAddresses, clusterRanges } from './cluster-ranges.ts';
import { UserError } from './errors.ts';
import { startHostsMode } from './hosts-mode.ts';
import { listHostsServices, namespacesFlag, unreadableLine, type ServiceListing } from './hosts-services.ts';
import { startLocalDns } from './local-dns.ts';
import { upstreamsFromResolvConf, wireResolver } from './resolver-config.ts';
import type { ShadowSession } from './shadow-session.ts';
import { ensureRoutes, removeRoutes } from './routes.ts';
import { step } from './steps.ts';
import { startTransparent } from './transparent.ts';

export async function startConnectMode(mode: Exclude<ConnectMode, 'socks'>, p: Parsed, s: ShadowSession): Promise<ModeHandle> {
  return mode === 'transparent' ? startTransparentMode(p, s) : startHostsModeFor(p, s);
}

async function namespaceNames(s: ShadowSession): Promise<Set<string> | undefined> {
  try {
    const l = await s.kube.core.listNamespace();
    return new Set(l.items.map((n) => n.metadata!.name!));
  } catch {
    return undefined;
  }
}

async function startTransparentMode(p: Parsed, s: ShadowSession): Promise<ModeHandle> {
  const { kube, log, life, session, tunnel } = s;
  const domain = str(p, 'cluster-domain') ?? 'cluster.local';
  const ranges = await clusterRanges(kube, log);
  const cidrs = [...new Set([...ranges.serviceCidrs, ...ranges.podCidrs, ...list(p, 'include-cidr')])];
  if (cidrs.length === 0) throw new UserError('could not learn the cluster\'s address ranges; pass them with --include-cidr.');
  const exclude = [...(await apiServerAddresses(kube.server)), ...list(p, 'exclude-cidr')];

  // Cluster names: anything under the cluster domain, a single label (a Service of the session's
  // namespace), `svc.ns` for a namespace that exists, `svc.ns.svc`.
  let namespaces = await namespaceNames(s);
  const refresh = setInterval(() => { void namespaceNames(s).then((n) => { if (n) namespaces = n; }); }, 30_000);
  refresh.unref();
  life.defer('stop refreshing namespaces', () => clearInterval(refresh));
  const isClusterName = (name: string): boolean => {
    const labels = name.split('.');
    if (labels.length === 1) return true;
    if (labels.length === 2) return namespaces ? namespaces.has(labels[1]!) : true;
    return labels.length === 3 && labels[2] === 'svc';
  };

  // Listeners first, capture after: a port that cannot be bound fails before any rule exists.
  const resolvPath = '/etc/resolv.conf';
  const dnsPort = Number(str(p, 'dns-port') ?? '53');
  const original = await readFile(resolvPath, 'utf8').catch(() => '');
  const upstreams = upstreamsFromResolvConf(original).filter((u) => !(u.address === '127.0.0.1' && u.port === dnsPort));
  await step(`start the local DNS server on 127.0.0.1:${dnsPort}`);
  const dns = await startLocalDns({ host: '127.0.0.1', port: dnsPort, dial: tunnel.dial, upstreams, log, clusterDomain: domain, isClusterName, reverseCidrs: cidrs })
    .catch((e: unknown) => { throw new UserError(`cannot start the local DNS server on 127.0.0.1:${dnsPort}: ${(e as Error).message}`); });
  life.defer('stop the local DNS server', () => dns.close());

  log.progress(`routing ${cidrs.join(', ')} to the cluster (never ${exclude.join(', ')})`);
  await step('install the iptables rules');
  const capture = await startTransparent({ cidrs, exclude, dial: tunnel.dial, sessionId: session.id, log });
  life.defer('remove the iptables rules', () => capture.close());
  const added: string[] = [];
  life.defer('remove the routes kt added', () => removeRoutes(added));
  await step('add routes for the cluster ranges');
  await ensureRoutes(cidrs, added);
  if (added.length > 0) log.debug(`added routes via lo for ${added.join(', ')}`);
  // Recorded so that kt-clean can remove them if this process dies without doing it.
  s.record({ routes: added });

  if (dnsPort === 53) {
    await step(`point ${resolvPath} at the local DNS server`);
    const wired = await wireResolver({ sessionId: session.id, nameserver: '127.0.0.1', path: resolvPath });
    for (const w of wired.warnings) log.warn(w);
    life.defer(`restore ${resolvPath}`, async () => { await wired.restore(); });
  } else {
    log.warn(`the local DNS server listens on port ${dnsPort}; the system resolver only uses port 53, so ${resolvPath} is left alone`);
  }
  const svc = await kube.core.listNamespacedService({ namespace: kube.namespace }).then((l) => l.items.find((x) => x.metadata?.name !== 'kubernetes'), () => undefined);
  return {
    env: {},
    banner: [
      `Transparent mode: TCP to ${cidrs.join(', ')} goes through the cluster; cluster names resolve on this machine.`,
      `  try: curl ${svc ? `http://${svc.metadata!.name}.${kube.namespace}/` : '-k https://kubernetes.default/version'}`,
    ],
    close: async () => {},
  };
}

async function listServices(s: ShadowSession, extra: readonly string[]): Promise<ServiceListing> {
  return listHostsServices(s.kube, extra);
}

async function startHostsModeFor(p: Parsed, s: ShadowSession): Promise<ModeHandle> {
  const { kube, log, life, session, tunnel } = s;
  const hostsFile = str(p, 'hosts-file')!;
  const extra = namespacesFlag(p, 'hosts');
  const listing = await listServices(s, extra);
  const services = listing.services;
  const unreadable = unreadableLine(listing);
  if (unreadable) log.warn(unreadable);
  await step(`write the cluster's names into ${hostsFile}`);
  const mode = await startHostsMode({
    services, namespace: kube.namespace, clusterDomain: str(p, 'cluster-domain') ?? 'cluster.local',
    dial: tunnel.dial, hostsFile, sessionId: session.id, log,
  });
  life.defer(`restore ${hostsFile}`, () => mode.close());
  // Services created later get their entry too.
  const refresh = setInterval(() => {
    void listServices(s, extra).then((l) => mode.update(l.services)).catch((e: unknown) => log.debug(`service refresh failed: ${(e as Error).message}`));
  }, 10_000);
  refresh.unref();
  life.defer('stop refreshing services', () => clearInterval(refresh));
  const first = mode.entries().find((e) => e.namespace === kube.namespace && e.name !== 'kubernetes');
  return {
    env: {},
    banner: [
      `Hosts mode: ${mode.entries().length} Services ${listing.scope === 'cluster' ? 'of every namespace' : `of namespace${listing.namespaces.length === 1 ? '' : 's'} ${listing.namespaces.join(', ')}`} have a loopback address and names in ${hostsFile}.`,
      `  try: curl http://${first ? `${first.name}${first.ports[0] !== undefined && first.ports[0] !== 80 ? `:${first.ports[0]}` : ''}` : 'kubernetes.default:443'}/`,
    ],
    close: async () => {},
  };
}
