// Transparent mode on Linux: every program on the laptop reaches ClusterIPs and pod IPs with no
// proxy settings. An iptables nat chain KT-<first 8 chars of the session id>, jumped to from nat
// OUTPUT (traffic the laptop's own programs make), sends TCP for the cluster CIDRs to a listener
// on 127.0.0.1 (REDIRECT in OUTPUT rewrites the destination to 127.0.0.1 and the given port); each
// accepted connection's original destination is read back from conntrack and dialed through the
// tunnel.
//
//   -A OUTPUT -p tcp -m comment --comment "kt-session=<id>" -j KT-xxxxxxxx   (inserted first)
//   -A KT-xxxxxxxx -d 127.0.0.0/8 -j RETURN
//   -A KT-xxxxxxxx -d <excluded> -j RETURN                                   (the API server, ...)
//   -A KT-xxxxxxxx -d <cidr> -p tcp -j REDIRECT --to-ports <port>
//
// UDP goes the same way to a UDP socket on 127.0.0.1 (udp-relay.ts), through a second jump; DNS
// (port 53) is left to the local DNS server and resolv.conf, as before UDP was carried:
//
//   -A OUTPUT -p udp -m comment --comment "kt-session=<id>" -j KT-xxxxxxxx
//   -A KT-xxxxxxxx -p udp --dport 53 -j RETURN                              (with every port)
//   -A KT-xxxxxxxx -d <cidr> -p udp [--dport <a:b>] -j REDIRECT --to-ports <udp port>
//
// Replies leave the relay socket for the sender; conntrack's reverse NAT of the REDIRECT gives
// them the original destination as source, so a connected UDP socket accepts them.
//
// Rules go in and out with iptables-restore --noflush, one transaction each, so no half-built
// chain is ever jumped to. The comment carries the whole session id, for cleanup after a crash.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { createSocket } from 'node:dgram';
import { Server, Socket, isIPv4 } from 'node:net';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { joinStreams } from '../../../runtime/join.ts';
import type { Dialer } from '../../tunnel/dialer.ts';
import type { Logger } from '../../cli/log.ts';
import { NEVER_CAPTURED, ipInCidr, normalizeCidr, type Family } from './cidr.ts';
import { createOriginalDstLookup } from './original-dst.ts';
import type { OriginalDstLookup, OriginalDstTupleLookup } from './original-dst.ts';
import { startUdpRelay, type UdpRelay } from '../udp-relay.ts';
import type { UdpTunnel, openUdpFlow } from '../../tunnel/udp.ts';

/** What transparent mode logs through: one human-readable line per call (plugins/cli/log.ts). */
export type TransparentLog = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface TransparentOptions {
  /** IPv4 CIDRs (or single addresses) whose TCP traffic goes to the cluster. */
  cidrs: readonly string[];
  /** Addresses or CIDRs never captured (the API server's address at least); 127.0.0.0/8 always is. */
  exclude: readonly string[];
  dial: Dialer;
  sessionId: string;
  log: TransparentLog;
  /** The listener's port; default 0 (any free port). */
  port?: number;
  /** The original-destination lookup; default conntrack (see original-dst.ts). */
  originalDst?: OriginalDstLookup;
  /**
   * 4 (default): iptables and a listener on 127.0.0.1; 6: the same chain in ip6tables and a
   * listener on ::1 (REDIRECT sends locally made IPv6 packets to ::1). A dual-stack cluster gets one of each.
   */
  family?: Family;
  /** UDP to the cidrs too: the destination ports it applies to, the tunnel that carries it. */
  udp?: {
    ports: UdpPorts;
    tunnel: UdpTunnel;
    /** Each flow's idle expiry; default the contract's. */
    idleMs?: number;
    /** For tests. */
    open?: typeof openUdpFlow;
    originalDst?: OriginalDstTupleLookup;
    port?: number;
  };
}

/** UDP destination ports to capture: every one but DNS's 53, or the ranges named. */
export type UdpPorts = 'all' | readonly UdpPortRange[];
export interface UdpPortRange {
  from: number;
  to: number;
}

export interface TransparentHandle {
  /** The port of the listener on 127.0.0.1 that REDIRECT sends to. */
  readonly port: number;
  /** The UDP relay, when UDP is captured. */
  readonly udp: UdpRelay | undefined;
  /** The iptables chain, KT-<first 8 chars of the session id>. */
  readonly chain: string;
  /** Removes the jump and the chain, stops the listener, closes its connections. Idempotent. */
  close(): Promise<void>;
}

/** REDIRECT in nat OUTPUT maps locally generated packets to 127.0.0.1, so the listener binds that. */
export const LISTEN_HOST = '127.0.0.1';
export const LISTEN_HOST6 = '::1';
export const ALWAYS_EXCLUDED = '127.0.0.0/8';
export const CHAIN_PREFIX = 'KT-';
/** A session id shows in the chain name as its first 8 characters. */
export const CHAIN_ID_LENGTH = 8;
const COMMENT_PREFIX = 'kt-session=';

export const NOT_ROOT_MESSAGE = 'transparent mode needs root (it changes iptables); run with sudo or use --mode socks';
export const NO_IP6TABLES_MESSAGE =
  'the cluster has IPv6 ranges, and transparent mode needs ip6tables (ip6tables-save and ip6tables-restore) for them, which is not installed; install it, or leave them out with --exclude-cidr';
export const NO_IPTABLES_MESSAGE =
  'transparent mode needs iptables (iptables-save and iptables-restore), which is not installed; install it or use --mode socks';

/** Transparent mode cannot start. */
export class TransparentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransparentError';
  }
}

// ---------------------------------------------------------------------------------------------
// Pure parts: names, addresses, rules.

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function chainName(sessionId: string): string {
  if (!SESSION_ID.test(sessionId) || sessionId.length > 200) {
    throw new TransparentError(`session id ${JSON.stringify(sessionId)} is not usable in an iptables chain name`);
  }
  return `${CHAIN_PREFIX}${sessionId.slice(0, CHAIN_ID_LENGTH)}`;
}

/**
 * `10.96.7.7/16` as `10.96.0.0/16`, `10.96.7.7` as `10.96.7.7/32` (the form iptables-save prints);
 * undefined for anything that is not an IPv4 address or CIDR.
 */
export function normalizeIpv4Cidr(text: string): string | undefined {
  return normalizeCidr(text, 4);
}

/** Whether IPv4 `ip` is inside the normalized IPv4 `cidr`. */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  return isIPv4(ip) && ipInCidr(ip, cidr);
}

export interface RulePlan {
  chain: string;
  sessionId: string;
  /** The jump from nat OUTPUT, as arguments after `-A OUTPUT`. */
  jump: string[];
  /** The jump for UDP, when UDP is captured. */
  udpJump?: string[];
  /** The chain's rules in order, as arguments after `-A <chain>`. */
  rules: string[][];
  /** CIDRs of the other family, left out (they belong in the other family's table). */
  skipped: string[];
}

/**
 * The rules for a session in the table of one family (4: iptables, default; 6: ip6tables); the
 * other family's entries are left out, anything that is not an address or CIDR throws.
 */
export function planRules(options: {
  sessionId: string;
  cidrs: readonly string[];
  exclude: readonly string[];
  port: number;
  udp?: { port: number; ports: UdpPorts };
  family?: Family;
}): RulePlan {
  const family = options.family ?? 4;
  const chain = chainName(options.sessionId);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new TransparentError(`listener port ${options.port} is not a TCP port`);
  }
  const udp = options.udp;
  if (udp !== undefined) {
    const bad = [udp.port, ...(udp.ports === 'all' ? [] : udp.ports.flatMap((r) => [r.from, r.to]))]
      .find((n) => !Number.isInteger(n) || n < 1 || n > 65535);
    if (bad !== undefined) throw new TransparentError(`${bad} is not a UDP port`);
  }
  const skipped: string[] = [];
  const ofFamily = (list: readonly string[], what: string, skip: (cidr: string) => void): string[] => {
    const out: string[] = [];
    for (const text of list) {
      const cidr = normalizeCidr(text, family);
      if (cidr !== undefined) {
        if (!out.includes(cidr)) out.push(cidr);
      } else if (normalizeCidr(text) !== undefined) {
        skip(text); // the other family's table
      } else {
        throw new TransparentError(`${what} ${JSON.stringify(text)} is not an IP address or CIDR`);
      }
    }
    return out;
  };
  const exclude = ofFamily([...NEVER_CAPTURED[family], ...options.exclude], 'excluded address', () => {});
  const cidrs = ofFamily(options.cidrs, 'cluster CIDR', (cidr) => skipped.push(cidr));
  // Every IPv6 destination would include the API server's other addresses and the whole internet.
  if (cidrs.includes('::/0')) throw new TransparentError('cluster CIDR ::/0 would capture every IPv6 destination; kt never captures it');
  const rules: string[][] = [
    ...exclude.map((cidr) => ['-d', cidr, '-j', 'RETURN']),
    ...cidrs.map((cidr) => ['-d', cidr, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.port)]),
  ];
  const comment = ['-m', 'comment', '--comment', `${COMMENT_PREFIX}${options.sessionId}`, '-j', chain];
  const jump = ['-p', 'tcp', ...comment];
  if (udp === undefined) return { chain, sessionId: options.sessionId, jump, rules, skipped };
  const to = ['-j', 'REDIRECT', '--to-ports', String(udp.port)];
  if (udp.ports === 'all') {
    rules.push(['-p', 'udp', '--dport', '53', '-j', 'RETURN'], ...cidrs.map((cidr) => ['-d', cidr, '-p', 'udp', ...to]));
  } else {
    for (const cidr of cidrs) {
      for (const r of udp.ports) rules.push(['-d', cidr, '-p', 'udp', '--dport', r.from === r.to ? String(r.from) : `${r.from}:${r.to}`, ...to]);
    }
  }
  return { chain, sessionId: options.sessionId, jump, udpJump: ['-p', 'udp', ...comment], rules, skipped };
}

/** One argument as iptables-restore reads it (it splits on blanks and honours double quotes). */
function restoreArg(arg: string): string {
  return /^[A-Za-z0-9_.,:/=+-]+$/.test(arg) ? arg : `"${arg.replace(/["\\]/g, '\\$&')}"`;
}

function restoreLine(args: readonly string[]): string {
  return args.map(restoreArg).join(' ');
}

/** iptables-restore --noflush input that creates the chain, fills it, then jumps to it first. */
export function installScript(plan: RulePlan): string {
  return [
    '*nat',
    `:${plan.chain} - [0:0]`,
    ...plan.rules.map((rule) => restoreLine(['-A', plan.chain, ...rule])),
    restoreLine(['-I', 'OUTPUT', '1', ...plan.jump]),
    ...(plan.udpJump ? [restoreLine(['-I', 'OUTPUT', '1', ...plan.udpJump])] : []),
    'COMMIT',
    '',
  ].join('\n');
}

/** A KT-* chain found in `iptables-save -t nat` output, with every rule that jumps to it. */
export interface SavedChain {
  chain: string;
  /** The full session id from a jump's comment, else the id prefix in the chain name. */
  sessionId: string;
  /** The jump rules as saved (`-A OUTPUT ... -j KT-...`). */
  jumps: string[];
  /** The chain's own rules as saved (`-A KT-... ...`). */
  rules: string[];
}

/** Splits a saved rule into arguments (double quotes group, backslash escapes inside them). */
export function splitSavedRule(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < line.length) current += line[++i];
      else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') {
      quoted = true;
      inArg = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (inArg) args.push(current);
  return args;
}

function argAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The KT-* chains in `iptables-save -t nat` output (only the nat table is read). */
export function parseSavedChains(saved: string): SavedChain[] {
  const chains = new Map<string, SavedChain>();
  let inNat = false;
  const lines = saved.split('\n');
  for (const line of lines) {
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    const declared = /^:(KT-[A-Za-z0-9_.-]+) /.exec(line);
    if (declared) {
      const chain = declared[1]!;
      chains.set(chain, { chain, sessionId: chain.slice(CHAIN_PREFIX.length), jumps: [], rules: [] });
    }
  }
  inNat = false;
  for (const line of lines) {
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat || !line.startsWith('-A ')) continue;
    const args = splitSavedRule(line);
    const owner = chains.get(args[1] ?? '');
    if (owner) owner.rules.push(line);
    const target = chains.get(argAfter(args, '-j') ?? '');
    if (target && args[1] !== target.chain) {
      target.jumps.push(line);
      const comment = argAfter(args, '--comment');
      if (comment?.startsWith(COMMENT_PREFIX)) {
        const id = comment.slice(COMMENT_PREFIX.length);
        if (id.startsWith(target.chain.slice(CHAIN_PREFIX.length))) target.sessionId = id;
      }
    }
  }
  return [...chains.values()];
}

/** iptables-restore --noflush input that deletes the jumps to the chains, then the chains. */
export function removalScript(chains: readonly SavedChain[]): string | undefined {
  if (chains.length === 0) return undefined;
  const lines = ['*nat'];
  for (const chain of chains) {
    for (const jump of chain.jumps) lines.push(jump.replace(/^-A /, '-D '));
  }
  for (const chain of chains) lines.push(`-F ${chain.chain}`);
  for (const chain of chains) lines.push(`-X ${chain.chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export interface Capture {
  chain: string;
  sessionId: string;
  /** The CIDR whose REDIRECT rule matched. */
  cidr: string;
  /** Where it is redirected: 127.0.0.1:port. */
  port: number;
}

/**
 * Which KT chain, if any, captures TCP to `ip` according to `iptables-save -t nat` output: the
 * jumps in nat OUTPUT are followed in order, a RETURN for a matching -d leaves the chain, the first
 * matching REDIRECT wins. Only KT chains are evaluated.
 */
export function captureFromSaved(saved: string, ip: string): Capture | undefined {
  const chains = new Map(parseSavedChains(saved).map((chain) => [chain.chain, chain]));
  const output = saved
    .split('\n')
    .filter((line) => line.startsWith('-A OUTPUT '))
    .map(splitSavedRule);
  const matchesDst = (args: readonly string[]): boolean => {
    const dst = argAfter(args, '-d');
    return dst === undefined || ipInCidr(ip, dst);
  };
  const tcpOk = (args: readonly string[]): boolean => {
    const proto = argAfter(args, '-p');
    return proto === undefined || proto === 'tcp' || proto === '6';
  };
  for (const jump of output) {
    const chain = chains.get(argAfter(jump, '-j') ?? '');
    if (!chain || !tcpOk(jump) || !matchesDst(jump)) continue;
    for (const rule of chain.rules.map(splitSavedRule)) {
      if (!tcpOk(rule) || !matchesDst(rule)) continue;
      const target = argAfter(rule, '-j');
      if (target === 'RETURN') break;
      if (target === 'REDIRECT') {
        const port = Number(argAfter(rule, '--to-ports')?.split('-')[0]);
        const any = isIPv4(ip) ? '0.0.0.0/0' : '::/0';
        const cidr = normalizeCidr(argAfter(rule, '-d') ?? any) ?? any;
        return { chain: chain.chain, sessionId: chain.sessionId, cidr, port };
      }
    }
  }
  return undefined;
}

/**
 * --udp-ports: `all` (every port but DNS's 53, which stays with the local DNS server), `none`, or
 * ports and ranges (`8125,5000-5100`). The error is the sentence after the flag's name.
 */
export function parseUdpPorts(text: string): { ports: UdpPorts | 'none' } | { error: string } {
  const t = text.trim().toLowerCase();
  if (t === 'all' || t === 'none') return { ports: t };
  const ranges: UdpPortRange[] = [];
  for (const item of t.split(',')) {
    const m = /^(\d{1,10})(?:-(\d{1,10}))?$/.exec(item.trim());
    if (!m) return { error: `"${item}" is not a port or a range of ports (like 8125 or 5000-5100); or all, none.` };
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const out = [from, to].find((n) => n < 1 || n > 65535);
    if (out !== undefined) return { error: `${out} is out of bounds: a UDP port is 1-65535.` };
    if (to < from) return { error: `${item} ends before it begins.` };
    ranges.push({ from, to });
  }
  return { ports: ranges };
}

/** The sentence that stops transparent mode before it starts, or undefined. */
export function preflightError(uid: number | undefined, iptablesFound: boolean): string | undefined {
  if (uid !== 0) return NOT_ROOT_MESSAGE;
  if (!iptablesFound) return NO_IPTABLES_MESSAGE;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// iptables.

/** Root's PATH may lack the sbin directories under sudo; they are searched too. */
const EXTRA_BIN_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== ''), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface Iptables {
  save(): Promise<string>;
  restore(script: string): Promise<void>;
}

function iptables(family: Family = 4): Iptables | undefined {
  const tool = family === 6 ? 'ip6tables' : 'iptables';
  const saveBin = findBinary(`${tool}-save`);
  const restoreBin = findBinary(`${tool}-restore`);
  if (saveBin === undefined || restoreBin === undefined) return undefined;
  return {
    save: () =>
      new Promise((resolve, reject) => {
        execFile(saveBin, ['-t', 'nat'], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 30_000 }, (err, stdout, stderr) => {
          if (err) reject(new TransparentError(`${tool}-save failed: ${stderr.trim() || err.message}`, { cause: err }));
          else resolve(stdout);
        });
      }),
    restore: async (script) => {
      const child = spawn(restoreBin, ['--noflush', '--wait', '10'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.stdin.on('error', () => {}); // reported through the exit status
      child.stdin.end(script);
      // once() rejects if the child emits 'error' (it could not be started).
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) {
        throw new TransparentError(`${tool}-restore failed: ${stderr.trim().split('\n')[0] ?? `exit ${code}`}`);
      }
    },
  };
}

function requireIptables(family: Family = 4): Iptables {
  const tables = iptables(family);
  const message = preflightError(process.getuid?.(), tables !== undefined);
  if (message !== undefined) throw new TransparentError(family === 6 && message === NO_IPTABLES_MESSAGE ? NO_IP6TABLES_MESSAGE : message);
  return tables!;
}

/** Whether ip6tables is there (a cluster with IPv6 ranges needs it for them). */
export function haveIp6tables(): boolean {
  return iptables(6) !== undefined;
}

/**
 * Removes the KT chains (and the jumps to them) whose session is not live. `isLive` gets the full
 * session id when the jump's comment carries it, else the 8-character prefix from the chain name.
 * Resolves with the chains removed.
 */
export async function cleanupStaleChains(isLive: (sessionId: string) => boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const family of [4, 6] as const) {
    // ip6tables is optional (only a session that captured IPv6 ranges used it), and so is its nat table.
    const tables = family === 4 ? requireIptables() : iptables(6);
    if (tables === undefined) continue;
    const saved = await tables.save().catch((e: unknown) => { if (family === 4) throw e; return ''; });
    const dead = parseSavedChains(saved).filter((chain) => !isLive(chain.sessionId));
    const script = removalScript(dead);
    if (script !== undefined) await tables.restore(script);
    removed.push(...dead.map((chain) => (family === 4 ? chain.chain : `${chain.chain} (ip6tables)`)));
  }
  return removed;
}

/** Which KT chain captures TCP to `ip` in this network namespace right now (for tests). */
export async function routeCapturedBy(ip: string): Promise<Capture | undefined> {
  return captureFromSaved(await requireIptables(isIPv4(ip) ? 4 : 6).save(), ip);
}

// ---------------------------------------------------------------------------------------------
// The proxy.

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Copies both ways between an accepted connection and the cluster stream, keeping half-closes. The
 * program must see a failure as one (a reset, as from a refused or broken connection), and a
 * stream that ended cleanly leaves the other to finish.
 */
function splice(client: Socket, remote: Duplex): void {
  if (remote instanceof Socket) remote.setNoDelay(true);
  void joinStreams(client, remote, { halfClose: 'end', cut: 'reset-a', onClose: 'if-aborted' });
  client.resume();
}

/** Waits between conntrack lookups of a datagram whose entry is not listed yet. */
const UDP_LOOKUP_RETRIES_MS = [5, 20, 50, 100];

/** The UDP relay behind the REDIRECT: each sender's destination comes from conntrack. */
async function startUdpCapture(udp: NonNullable<TransparentOptions['udp']>, lookup: OriginalDstTupleLookup, log: TransparentLog, family: Family): Promise<UdpRelay> {
  // REDIRECT maps to the loopback address of the packet's family: 127.0.0.1, or ::1 in ip6tables.
  const host = family === 6 ? LISTEN_HOST6 : LISTEN_HOST;
  const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(udp.port ?? 0, host, () => { socket.off('error', reject); resolve(); });
  });
  const port = socket.address().port;
  return startUdpRelay({
    socket,
    tunnel: udp.tunnel,
    ...(udp.idleMs === undefined ? {} : { idleMs: udp.idleMs }),
    ...(udp.open === undefined ? {} : { open: udp.open }),
    log,
    label: family === 6 ? 'transparent UDP (IPv6)' : 'transparent UDP',
    destination: async (from) => {
      const tuple = { clientIp: from.host, clientPort: from.port, proxyIp: host, proxyPort: port, protocol: 'udp' as const };
      for (let attempt = 0; ; attempt++) {
        try {
          const dst = await lookup(tuple);
          return { host: dst.ip, port: dst.port };
        } catch (err) {
          const wait = UDP_LOOKUP_RETRIES_MS[attempt];
          if (wait === undefined) throw err;
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    },
  });
}

export async function startTransparent(options: TransparentOptions): Promise<TransparentHandle> {
  const { dial, log, sessionId } = options;
  const family = options.family ?? 4;
  const tables = requireIptables(family);
  const conntrack = createOriginalDstLookup();
  const lookup = options.originalDst ?? conntrack;
  const chain = chainName(sessionId);
  // Bad CIDRs fail here, before anything is listening or installed.
  planRules({ sessionId, cidrs: options.cidrs, exclude: options.exclude, port: 1, family, ...(options.udp ? { udp: { port: 1, ports: options.udp.ports } } : {}) });

  const saved = await tables.save();
  const existing = parseSavedChains(saved).find((c) => c.chain === chain);
  if (existing) {
    if (existing.sessionId !== sessionId) {
      throw new TransparentError(
        `iptables chain ${chain} already exists for session ${existing.sessionId}; run kubectl kt-clean if that session is gone`,
      );
    }
    log.warn(`removing iptables chain ${chain}, left by an earlier run of this session`);
    await tables.restore(removalScript([existing])!);
  }

  const connections = new Set<Socket>();
  let closed = false;
  const server = new Server({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
  server.on('connection', (client: Socket) => {
    client.setNoDelay(true);
    connections.add(client);
    client.once('close', () => connections.delete(client));
    client.on('error', (err) => log.debug(`transparent: connection error: ${err.message}`));
    void handle(client);
  });

  async function handle(client: Socket): Promise<void> {
    const from = `${client.remoteAddress}:${client.remotePort}`;
    let dst;
    try {
      dst = await lookup(client);
    } catch (err) {
      log.warn(`transparent: reset a connection from ${from} whose original destination is unknown (${errorMessage(err)})`);
      if (!client.destroyed) client.resetAndDestroy();
      return;
    }
    let remote: Duplex;
    try {
      remote = await dial(dst.ip, dst.port);
    } catch (err) {
      log.debug(`transparent: ${from} -> ${dst.ip}:${dst.port}: dial failed, reset (${errorMessage(err)})`);
      if (!client.destroyed) client.resetAndDestroy();
      return;
    }
    if (client.destroyed || closed) {
      remote.destroy();
      if (!client.destroyed) client.resetAndDestroy();
      return;
    }
    log.debug(`transparent: ${from} -> ${dst.ip}:${dst.port}`);
    splice(client, remote);
  }

  server.listen(options.port ?? 0, family === 6 ? LISTEN_HOST6 : LISTEN_HOST);
  await once(server, 'listening'); // rejects on 'error' (port in use)
  server.on('error', (err) => log.warn(`transparent: listener error: ${err.message}`));
  const port = (server.address() as AddressInfo).port;

  let udp: UdpRelay | undefined;
  try {
    if (options.udp) udp = await startUdpCapture(options.udp, options.udp.originalDst ?? conntrack.tuple, log, family);
  } catch (err) {
    server.close();
    throw err;
  }
  const plan = planRules({
    sessionId, cidrs: options.cidrs, exclude: options.exclude, port, family,
    ...(udp && options.udp ? { udp: { port: udp.port, ports: options.udp.ports } } : {}),
  });
  if (plan.skipped.length > 0) log.debug(`transparent: ${plan.skipped.join(', ')} left to the IPv${family === 4 ? 6 : 4} chain`);
  try {
    await tables.restore(installScript(plan));
  } catch (err) {
    server.close();
    await udp?.close();
    throw err;
  }
  const listenAt = family === 6 ? `[${LISTEN_HOST6}]` : LISTEN_HOST;
  log.debug(`transparent: ${family === 6 ? 'ip6tables' : 'iptables'} chain ${chain} sends TCP for ${options.cidrs.join(', ')} to ${listenAt}:${port}${udp ? `, UDP to ${listenAt}:${udp.port}` : ''}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    udp,
    chain,
    close() {
      closing ??= (async () => {
        closed = true;
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        let failure: unknown;
        try {
          const mine = parseSavedChains(await tables.save()).filter((c) => c.chain === chain);
          const script = removalScript(mine);
          if (script !== undefined) await tables.restore(script);
        } catch (err) {
          failure = err;
        }
        for (const socket of connections) socket.destroy();
        await udp?.close();
        await serverClosed;
        if (failure !== undefined) throw failure;
        log.debug(`transparent: iptables chain ${chain} removed`);
      })();
      return closing;
    },
  };
}
