// kt-connect's flags, checked and typed before anything is created: a bad value of any flag, in
// any mode, is one sentence and exit code 2, and the cluster and this machine stay untouched.
import { accessSync, constants } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { flags as declareFlags, KUBE_FLAGS, type Values } from '../cli/cli.ts';
import { ENV_FROM_FLAGS, PODENV_FLAGS } from '../podenv/flags.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';
import { UserError } from '../cli/errors.ts';
import { formatDuration } from '../cli/duration.ts';
import { cannotListen } from '../../runtime/listen.ts';
import { defaultHostsFile } from './hosts/windows.ts';
import { listLocalSessions, processAlive } from '../session/local-state.ts';
import { parseUdpPorts, type UdpPorts } from './transparent/transparent.ts';
import { normalizeCidr } from './transparent/cidr.ts';
import { SHADOW_UDP } from '../../contract/index.ts';

export const CONNECT_MODES = ['socks', 'transparent', 'hosts'] as const;
export type ConnectMode = (typeof CONNECT_MODES)[number];

/** kt-connect's own flags (beside the Kubernetes, shadow and pod-environment ones). */
export const CONNECT_FLAGS = declareFlags({
  mode: { type: 'string', description: 'How the laptop reaches the cluster (default: transparent as root on Linux, else socks)', choices: CONNECT_MODES },
  'proxy-port': { type: 'string', description: 'Local port of the SOCKS5/HTTP proxy (socks mode)', default: '2223' },
  'include-cidr': { type: 'list', description: 'Extra address ranges to route to the cluster (transparent mode)' },
  'exclude-cidr': { type: 'list', description: 'Address ranges never to route to the cluster (transparent mode)' },
  'dns-port': { type: 'string', description: 'Port of the local DNS server (transparent mode)', default: '53' },
  namespaces: { type: 'list', description: 'Hosts and transparent mode: more namespaces whose Services get short names (svc.ns), for a user who may not list namespaces (a,b)', complete: 'namespace' },
  'hosts-file': { type: 'string', description: 'The hosts file to edit (hosts mode)', default: defaultHostsFile(), complete: 'file' },
  quiet: { type: 'boolean', short: 'q', description: 'Print only errors and the banner' },
  'udp-ports': { type: 'string', description: 'Transparent mode: which UDP destination ports of the cluster ranges go to the cluster: all (every one but 53, DNS), none, or ports and ranges (8125,5000-5100)', default: 'all' },
  'udp-idle-timeout': { type: 'duration', description: 'A UDP flow with no datagram either way for this long is closed (at most 1h)', default: '60s', min: SHADOW_UDP.minIdleMs },
});

/** Every flag of kt-connect. */
export const CONNECT_ALL_FLAGS = declareFlags({ ...KUBE_FLAGS, ...CONNECT_FLAGS, ...SHADOW_FLAGS, ...ENV_FROM_FLAGS, ...PODENV_FLAGS });

export interface ConnectFlags {
  mode: ConnectMode;
  proxyPort: number;
  dnsPort: number;
  includeCidrs: string[];
  excludeCidrs: string[];
  hostsFile: string;
  /** --namespaces, checked. */
  namespaces: string[];
  clusterDomain: string;
  /** --udp-ports: the UDP transparent mode captures. */
  udpPorts: UdpPorts | 'none';
  /** --udp-idle-timeout in ms: each UDP flow's idle expiry (openUdpFlow's idleMs). */
  udpIdleMs: number;
}

const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** --namespaces, checked: hosts and transparent mode only. */
export function namespacesFlag(names: readonly string[], mode: string): string[] {
  if (names.length > 0 && mode === 'socks') throw new UserError('--namespaces only applies to --mode hosts and --mode transparent (socks mode resolves every name in the cluster).', 2);
  for (const n of names) if (!NAMESPACE_RE.test(n)) throw new UserError(`--namespaces: "${n}" is not a namespace name.`, 2);
  return [...new Set(names)];
}

export function defaultMode(platform = process.platform, uid = process.getuid?.()): ConnectMode {
  return platform === 'linux' && uid === 0 ? 'transparent' : 'socks';
}

export function parsePortFlag(name: string, text: string, allowZero: boolean): number {
  const v = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    throw new UserError(`--${name} must be a port number (${allowZero ? 0 : 1}-65535), not "${text}".`, 2);
  }
  return v;
}

function cidrs(name: string, out: readonly string[]): string[] {
  for (const c of out) {
    if (normalizeCidr(c) === undefined) throw new UserError(`--${name}: "${c}" is not an IP address or CIDR (like 10.96.0.0/12).`, 2);
    if (name === 'include-cidr' && normalizeCidr(c) === '::/0') throw new UserError('--include-cidr ::/0 would capture every IPv6 destination, and kt never captures it; name the cluster\'s IPv6 ranges.', 2);
  }
  return [...out];
}

function udpPortsFlag(text: string): UdpPorts | 'none' {
  const r = parseUdpPorts(text);
  if ('error' in r) throw new UserError(`--udp-ports: ${r.error}`, 2);
  return r.ports;
}

export function parseConnectFlags(o: Values<typeof CONNECT_FLAGS> & { readonly clusterDomain: string }): ConnectFlags {
  const mode = o.mode ?? defaultMode();
  const flags: ConnectFlags = {
    mode,
    proxyPort: parsePortFlag('proxy-port', o.proxyPort, true),
    dnsPort: parsePortFlag('dns-port', o.dnsPort, false),
    includeCidrs: cidrs('include-cidr', o.includeCidr),
    excludeCidrs: cidrs('exclude-cidr', o.excludeCidr),
    hostsFile: o.hostsFile,
    namespaces: namespacesFlag(o.namespaces, mode),
    clusterDomain: o.clusterDomain,
    udpIdleMs: Math.round(o.udpIdleTimeout),
    udpPorts: udpPortsFlag(o.udpPorts),
  };
  if (flags.udpIdleMs > SHADOW_UDP.maxIdleMs) throw new UserError(`--udp-idle-timeout must be at most 1h, not ${formatDuration(flags.udpIdleMs)}.`, 2);
  if (mode === 'transparent' && (process.platform !== 'linux' || process.getuid?.() !== 0)) {
    throw new UserError('transparent mode needs root on Linux (it changes iptables and the resolver); run with sudo or use --mode socks or --mode hosts.');
  }
  if (mode !== 'transparent') {
    for (const [f, v] of [['include-cidr', o.includeCidr], ['exclude-cidr', o.excludeCidr]] as const) {
      if (v.length > 0) throw new UserError(`--${f} only applies to --mode transparent (this session is ${mode}).`, 2);
    }
    if (o.udpPorts !== 'all') throw new UserError(`--udp-ports only applies to --mode transparent (this session is ${mode}; hosts mode relays the Services' own UDP ports).`, 2);
  }
  if (mode === 'hosts') {
    try {
      accessSync(flags.hostsFile, constants.R_OK | constants.W_OK);
    } catch (e) {
      throw new UserError(`hosts mode edits ${flags.hostsFile}, which ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'this user may not write'}; run with sudo or pass --hosts-file.`);
    }
  }
  return flags;
}

/**
 * Only one transparent session per machine: two would fight over port 53, resolv.conf and the
 * front of nat OUTPUT. Refused before anything exists, naming the live one and how to end it.
 */
export function refuseSecondTransparent(): void {
  const live = listLocalSessions().find((s) => s.kind === 'connect' && s.mode === 'transparent' && processAlive(s.pid));
  if (live) {
    throw new UserError(`a transparent kt-connect session is already running on this machine (session ${live.id}, pid ${live.pid}, namespace "${live.namespace}"); end it with Ctrl-C in its terminal (or kill ${live.pid}), or use --mode socks.`);
  }
}

/** Fails at once when the local DNS port is taken, rather than after the shadow pod exists. */
export async function checkDnsPortFree(port: number): Promise<void> {
  const taken = (proto: string, e: unknown): UserError =>
    new UserError(`cannot start the local DNS server: ${cannotListen(`${proto.toUpperCase()} port ${port} on 127.0.0.1`, e).sentence}; stop it, or pass --dns-port.`);
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e) => reject(taken('tcp', e)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
  await new Promise<void>((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', (e) => { sock.close(); reject(taken('udp', e)); });
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve()));
  });
}
