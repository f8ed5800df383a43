// kt-connect --mode hosts on a connected session: every Service the user may list gets a loopback
// address and its names in the hosts file (between kt's markers), refreshed as Services come and go.
import type { ShadowSession } from '../../session/shadow-session.ts';
import { step } from '../../session/steps.ts';
import type { ModeHandle } from '../mode.ts';
import { startHostsMode } from './hosts-mode.ts';
import { macosAliasHooks } from './macos.ts';
import { listHostsServices, unreadableLine, type ServiceListing } from './hosts-services.ts';
import type { ConnectFlags } from '../flags.ts';

async function listServices(s: ShadowSession, extra: readonly string[]): Promise<ServiceListing> {
  return listHostsServices(s.kube, extra);
}

export async function startHostsModeFor(flags: ConnectFlags, s: ShadowSession): Promise<ModeHandle> {
  const { kube, log, life, session, tunnel } = s;
  const { hostsFile } = flags;
  const extra = flags.namespaces;
  const listing = await listServices(s, extra);
  const services = listing.services;
  const unreadable = unreadableLine(listing);
  if (unreadable) log.warn(unreadable);
  await step(`write the cluster's names into ${hostsFile}`);
  const mode = await startHostsMode({
    services, namespace: kube.namespace, clusterDomain: flags.clusterDomain,
    dial: tunnel.dial, hostsFile, sessionId: session.id, log, udp: { tunnel, idleMs: flags.udpIdleMs },
    // lo0 on macOS answers only on the addresses aliased to it.
    ...(process.platform === 'darwin' ? macosAliasHooks((d) => s.record(d)) : {}),
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
