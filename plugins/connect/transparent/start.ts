// kt-connect --mode transparent on a connected session: learn the cluster's ranges, bind the local
// DNS server, then capture TCP for those ranges (iptables), route them, and point resolv.conf at
// the local DNS. Listeners come before capture, and every change registers its undo first.
import { readFile } from 'node:fs/promises';
import { UserError } from '../../cli/errors.ts';
import type { ShadowSession } from '../../session/shadow-session.ts';
import { step } from '../../session/steps.ts';
import type { ModeHandle } from '../mode.ts';
import { apiServerAddresses, clusterRanges } from './cluster-ranges.ts';
import { shortClusterNames, startLocalDns } from './local-dns.ts';
import type { ConnectFlags } from '../flags.ts';
import { upstreamsFromResolvConf, wireResolver } from './resolver-config.ts';
import { ensureRoutes, removeRoutes, systemRoutes } from './routes.ts';
import { planCapture } from './route-clash.ts';
import { haveIp6tables, NO_IP6TABLES_MESSAGE, startTransparent } from './transparent.ts';
import { capturedOf } from './cidr.ts';
import { wireDesktopNames } from './desktop-names.ts';
import { listLocalSessions, processAlive } from '../../session/local-state.ts';

async function namespaceNames(s: ShadowSession): Promise<Set<string> | undefined> {
  try {
    const l = await s.kube.core.listNamespace();
    return new Set(l.items.map((n) => n.metadata!.name!));
  } catch {
    return undefined;
  }
}

export async function startTransparentMode(flags: ConnectFlags, s: ShadowSession): Promise<ModeHandle> {
  const { kube, log, life, session, tunnel } = s;
  const domain = flags.clusterDomain;
  const ranges = await clusterRanges(kube, log);
  const userExclude = [...(await apiServerAddresses(kube.server)), ...flags.excludeCidrs];
  const clash = planCapture({ ranges: [...ranges.serviceCidrs, ...ranges.podCidrs], include: flags.includeCidrs, exclude: userExclude, routes: await systemRoutes(log) });
  if (clash.refusal) throw new UserError(clash.refusal);
  for (const line of clash.lines) log.warn(line);
  const { cidrs } = clash;
  if (cidrs.length === 0) throw new UserError('could not learn the cluster\'s address ranges; pass them with --include-cidr.');
  const exclude = [...userExclude, ...clash.leftOut];
  // A dual-stack or IPv6 cluster: its IPv6 ranges get the same chain in ip6tables.
  const ipv6 = capturedOf(cidrs, exclude, 6);
  if (ipv6.length > 0 && !haveIp6tables()) throw new UserError(`${NO_IP6TABLES_MESSAGE} (${ipv6.join(', ')}).`);

  // Cluster names: anything under the cluster domain, a single label (a Service of the session's
  // namespace), `svc.ns` for a namespace that exists, `svc.ns.svc`.
  let namespaces = await namespaceNames(s);
  const refresh = setInterval(() => { void namespaceNames(s).then((n) => { if (n) namespaces = n; }); }, 30_000);
  refresh.unref();
  life.defer('stop refreshing namespaces', () => clearInterval(refresh));
  const isClusterName = shortClusterNames(() => namespaces, kube.namespace, flags.namespaces);

  // Listeners first, capture after: a port that cannot be bound fails before any rule exists.
  const resolvPath = '/etc/resolv.conf';
  const requestedPort = flags.dnsPort;
  // macOS's resolver files name a port, so kt takes one of its own there rather than 53.
  const dnsPort = process.platform === 'darwin' && requestedPort === 53 ? 0 : requestedPort;
  const original = await readFile(resolvPath, 'utf8').catch(() => '');
  const upstreams = upstreamsFromResolvConf(original).filter((u) => !(u.address === '127.0.0.1' && u.port === dnsPort));
  await step(`start the local DNS server on 127.0.0.1:${dnsPort}`);
  const dns = await startLocalDns({ host: '127.0.0.1', port: dnsPort, dial: tunnel.dial, upstreams, log, clusterDomain: domain, isClusterName, reverseCidrs: cidrs })
    .catch((e: unknown) => { throw new UserError(`cannot start the local DNS server on 127.0.0.1:${dnsPort}: ${(e as Error).message}`); });
  life.defer('stop the local DNS server', () => dns.close());
  // The tunnel is up by now, so a later 'up' is a reconnect, maybe to a recreated shadow pod.
  const onTunnelState = (state: string): void => { if (state === 'up') dns.flushCache(); };
  tunnel.on('state', onTunnelState);
  life.defer('stop dropping the DNS cache on reconnects', () => { tunnel.off('state', onTunnelState); });

  log.progress(`routing ${cidrs.join(', ')} to the cluster (never ${exclude.join(', ')})`);
  await step('install the iptables rules');
  const udp = flags.udpPorts === 'none' ? undefined : { ports: flags.udpPorts, tunnel, idleMs: flags.udpIdleMs };
  const capture = await startTransparent({ cidrs, exclude, dial: tunnel.dial, sessionId: session.id, log, ...(udp ? { udp } : {}) });
  life.defer('remove the iptables rules', () => capture.close());
  if (ipv6.length > 0) {
    await step('install the ip6tables rules');
    const capture6 = await startTransparent({ family: 6, cidrs: ipv6, exclude, dial: tunnel.dial, sessionId: session.id, log, ...(udp ? { udp } : {}) });
    life.defer('remove the ip6tables rules', () => capture6.close());
  }
  const added: string[] = [];
  life.defer('remove the routes kt added', () => removeRoutes(added));
  await step('add routes for the cluster ranges');
  await ensureRoutes(cidrs, added);
  if (added.length > 0) log.debug(`added routes via lo for ${added.join(', ')}`);
  // Recorded so that kt-clean can remove them if this process dies without doing it.
  s.record({ routes: added });

  if (process.platform === 'darwin' || process.platform === 'win32') {
    await step('send the cluster\'s names to the local DNS server');
    const isLive = (id: string): boolean => listLocalSessions().some((l) => l.id === id && processAlive(l.pid));
    await wireDesktopNames(process.platform, { sessionId: session.id, clusterDomain: domain, namespaces: [...(namespaces ?? [kube.namespace])], port: dns.port, isLive }, (what, undo) => life.defer(what, undo));
  } else if (dnsPort === 53) {
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
      `Transparent mode: TCP${udp ? ' and UDP' : ''} to ${cidrs.join(', ')} goes through the cluster; cluster names resolve on this machine.`,
      `  try: curl ${svc ? `http://${svc.metadata!.name}.${kube.namespace}/` : '-k https://kubernetes.default/version'}`,
    ],
    close: async () => {},
  };
}
