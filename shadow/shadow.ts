// Wires the shadow together: configuration, the health probes, the DNS forwarder and the SSH
// server. startShadow runs it all in-process (the entry point and the tests both use it).
import { SHADOW_LIMITS, SHADOW_UDP } from '../contract/index.ts';
import { parseShadowEnv, readSessionFiles } from './config.ts';
import type { ShadowConfig, ShadowPorts } from './config.ts';
import { Resolver } from './dns/dns-resolver.ts';
import type { ResolverStats } from './dns/dns-resolver.ts';
import { startDnsServer } from './dns/dns-server.ts';
import type { DnsServerHandle } from './dns/dns-server.ts';
import { createUpstream } from './dns/dns-upstream.ts';
import { startHealthServer } from '../runtime/health.ts';
import type { HealthServerHandle } from '../runtime/health.ts';
import { createLogger } from '../runtime/log.ts';
import type { Logger } from '../runtime/log.ts';
import { readResolvConf } from '../runtime/resolv-conf.ts';
import { startSshServer } from './ssh/ssh-server.ts';
import type { SshServerHandle, SshServerOptions } from './ssh/ssh-server.ts';
import type { UdpFlowStats } from './udp/udp-flows.ts';

export interface ShadowOptions {
  /** Where the configuration comes from. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Overrides the environment's (or the contract's) value. */
  sessionDir?: string;
  resolvConfPath?: string;
  /** Listen address for every listener; default all interfaces. */
  host?: string;
  /** Ports to listen on (0: any free port). */
  ports?: Partial<ShadowPorts>;
  clusterDomain?: string;
  /** Default: JSON lines on stdout at the configured level. */
  logger?: Logger;
  /** SSH limits and timeouts (tests shorten them). */
  ssh?: Partial<
    Pick<
      SshServerOptions,
      'maxChannels' | 'maxForwards' | 'maxUdpFlows' | 'dialTimeoutMs' | 'authTimeoutMs' | 'keepaliveIntervalMs' | 'keepaliveCountMax'
    >
  >;
}

export interface ShadowHandle {
  /** The ports actually bound. */
  readonly ports: ShadowPorts;
  readonly config: ShadowConfig;
  /** Whether /readyz answers 200. */
  isReady(): boolean;
  /** The DNS cache's counters. */
  dnsStats(): ResolverStats;
  /** Looks a host up as direct-tcpip does (search list, cache). */
  lookupHost(host: string): Promise<string>;
  /** Authenticated SSH connections (laptops) right now. */
  connections(): number;
  /** The UDP flows' counters (also served at SHADOW_UDP.statsPath on the health port). */
  udpStats(): UdpFlowStats | undefined;
  /** Stops everything; resolves when all listeners are closed. Idempotent. */
  close(): Promise<void>;
  /** Lets forwarded traffic finish before close() (see SHADOW_DRAIN); not ready meanwhile. */
  drain(lingerMs: number, graceMs: number): Promise<void>;
}

function resolveConfig(options: ShadowOptions): ShadowConfig {
  const config = parseShadowEnv(options.env ?? process.env);
  return {
    ...config,
    sessionDir: options.sessionDir ?? config.sessionDir,
    resolvConfPath: options.resolvConfPath ?? config.resolvConfPath,
    host: options.host ?? config.host,
    clusterDomain: options.clusterDomain ?? config.clusterDomain,
    ports: { ...config.ports, ...options.ports },
  };
}

export async function startShadow(options: ShadowOptions = {}): Promise<ShadowHandle> {
  const config = resolveConfig(options);
  const log =
    options.logger ??
    createLogger({
      level: config.logLevel,
      fields: { ...(config.session ? { session: config.session } : {}), ...(config.namespace ? { namespace: config.namespace } : {}) },
    });

  const [files, resolv] = await Promise.all([readSessionFiles(config.sessionDir), readResolvConf(config.resolvConfPath)]);
  const resolver = new Resolver({
    upstream: createUpstream({ servers: resolv.nameservers, timeoutMs: resolv.timeoutMs, attempts: resolv.attempts }),
    search: resolv.search,
    ndots: resolv.ndots,
    clusterDomain: config.clusterDomain,
  });

  let ready = false;
  let health: HealthServerHandle | undefined;
  let dns: DnsServerHandle | undefined;
  let ssh: SshServerHandle | undefined;
  const stopAll = async (): Promise<void> => {
    ready = false;
    await Promise.allSettled([ssh?.close(), dns?.close()]);
    await health?.close();
  };

  try {
    // Liveness answers from the start; readiness once SSH and DNS are bound.
    health = await startHealthServer({
      host: config.host,
      port: config.ports.health,
      notReady: () => (ready ? undefined : 'starting or stopping'),
      json: { [SHADOW_UDP.statsPath]: { get: () => ssh?.udpStats(), unavailable: 'starting' } },
    });
    dns = await startDnsServer({ host: config.host, port: config.ports.dns, resolver, log: log.child({ component: 'dns' }) });
    ssh = await startSshServer({
      host: config.host,
      port: config.ports.ssh,
      hostKey: files.hostKey,
      authorizedKey: files.authorizedKey,
      lookup: (host) => resolver.lookupHost(host),
      log: log.child({ component: 'ssh' }),
      maxChannels: SHADOW_LIMITS.maxChannels,
      maxForwards: SHADOW_LIMITS.maxForwards,
      contractVersion: config.contractVersion,
      ...options.ssh,
    });
  } catch (err) {
    await stopAll();
    throw err;
  }

  const ports: ShadowPorts = { ssh: ssh.port, dns: dns.port, health: health.port };
  ready = true;
  log.info('shadow ready', {
    ports,
    nameservers: resolv.nameservers.map((server) => `${server.address}:${server.port}`),
    search: resolv.search,
    ndots: resolv.ndots,
  });

  let closing: Promise<void> | undefined;
  return {
    ports,
    config: { ...config, ports },
    isReady: () => ready,
    dnsStats: () => resolver.stats(),
    lookupHost: (host) => resolver.lookupHost(host),
    connections: () => ssh?.connections() ?? 0,
    udpStats: () => ssh?.udpStats(),
    async drain(lingerMs, graceMs) {
      ready = false;
      await ssh?.drain(lingerMs, graceMs);
    },
    close() {
      closing ??= (async () => {
        log.info('shadow stopping');
        await stopAll();
        log.info('shadow stopped');
      })();
      return closing;
    },
  };
}
