// kt-connect's flags, checked and typed before anything is created: a bad value of any flag, in
// any mode, is one sentence and exit code 2, and the cluster and this machine stay untouched.
import { accessSync, constants } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import { list, str, type Parsed } from '../cli/cli.ts';
import { UserError } from '../cli/errors.ts';
import { cannotListen } from '../../runtime/listen.ts';
import { namespacesFlag } from './hosts/hosts-services.ts';
import { defaultHostsFile } from './hosts/windows.ts';
import { listLocalSessions, processAlive } from '../session/local-state.ts';
import { normalizeIpv4Cidr } from './transparent/transparent.ts';

export const CONNECT_MODES = ['socks', 'transparent', 'hosts'] as const;
export type ConnectMode = (typeof CONNECT_MODES)[number];

export interface ConnectFlags {
  mode: ConnectMode;
  proxyPort: number;
  dnsPort: number;
  includeCidrs: string[];
  excludeCidrs: string[];
  hostsFile: string;
}

export function defaultMode(platform = process.platform, uid = process.getuid?.()): ConnectMode {
  return platform === 'linux' && uid === 0 ? 'transparent' : 'socks';
}

export function parsePortFlag(p: Parsed, name: string, allowZero: boolean): number {
  const text = str(p, name) ?? '';
  const v = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    throw new UserError(`--${name} must be a port number (${allowZero ? 0 : 1}-65535), not "${text}".`, 2);
  }
  return v;
}

function cidrs(p: Parsed, name: string): string[] {
  const out = list(p, name);
  for (const c of out) {
    const [addr, bits] = c.split('/');
    const v6 = addr !== undefined && isIPv6(addr) && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= 128));
    if (normalizeIpv4Cidr(c) === undefined && !v6) throw new UserError(`--${name}: "${c}" is not an IP address or CIDR (like 10.96.0.0/12).`, 2);
  }
  return out;
}

export function parseConnectFlags(p: Parsed): ConnectFlags {
  const mode = (str(p, 'mode') as ConnectMode | undefined) ?? defaultMode();
  const flags: ConnectFlags = {
    mode,
    proxyPort: parsePortFlag(p, 'proxy-port', true),
    dnsPort: parsePortFlag(p, 'dns-port', false),
    includeCidrs: cidrs(p, 'include-cidr'),
    excludeCidrs: cidrs(p, 'exclude-cidr'),
    hostsFile: str(p, 'hosts-file') ?? defaultHostsFile(),
  };
  if (mode === 'transparent' && (process.platform !== 'linux' || process.getuid?.() !== 0)) {
    throw new UserError('transparent mode needs root on Linux (it changes iptables and the resolver); run with sudo or use --mode socks or --mode hosts.');
  }
  if (mode !== 'transparent') {
    for (const f of ['include-cidr', 'exclude-cidr'] as const) {
      if (list(p, f).length > 0) throw new UserError(`--${f} only applies to --mode transparent (this session is ${mode}).`, 2);
    }
  }
  namespacesFlag(p, mode);
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
