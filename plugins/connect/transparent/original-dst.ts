// Where a connection redirected by iptables REDIRECT was originally going. The kernel keeps it in
// the connection's conntrack entry; a C program would ask with getsockopt(SO_ORIGINAL_DST), which
// Node cannot call without FFI. Instead the entry is looked up by its reply tuple, which is what
// the accepted socket shows: a locally generated connection from C:cp to D:dp that REDIRECT sent
// to the proxy on P:pp has the entry
//
//   orig  src=C dst=D sport=cp dport=dp   reply  src=P dst=C sport=pp dport=cp
//
// and the accepted socket has remote C:cp and local P:pp.
//
// Two sources, the first that works is used:
// - /proc/net/nf_conntrack (the calling process's network namespace): read once for all the
//   lookups that are waiting, then searched; a fraction of a millisecond on a small table.
// - the conntrack tool (`conntrack -L -p tcp --reply-src P --reply-dst C --reply-port-src pp
//   --reply-port-dst cp`), when the proc file is missing or unreadable: one process per lookup,
//   a few milliseconds.
// An entry is complete by the time the proxy accepts (it is confirmed when the SYN leaves), so a
// lookup never needs to wait or retry. UDP has no accept: a datagram's entry is looked up the same
// way by its tuple (protocol 'udp'), and the caller retries briefly (udp-relay.ts).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { SocketAddress, type Socket } from 'node:net';

export interface OriginalDst {
  ip: string;
  port: number;
}

/** One direction of a conntrack entry. */
export interface ConntrackTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface ConntrackEntry {
  protocol: string;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
}

/** The accepted connection as the proxy sees it. */
export interface AcceptedTuple {
  /** The program's address and port (the socket's remote end). */
  clientIp: string;
  clientPort: number;
  /** The proxy's address and port (the socket's local end). */
  proxyIp: string;
  proxyPort: number;
  /** Default 'tcp'. */
  protocol?: 'tcp' | 'udp';
}

export type ConntrackSource = 'proc' | 'conntrack-tool';

export interface OriginalDstOptions {
  /** Default /proc/net/nf_conntrack. */
  procPath?: string;
  /** Default `conntrack` (looked up on PATH). */
  conntrackBin?: string;
  /** Which source to use; default 'auto': the proc file, else the tool. */
  source?: 'auto' | ConntrackSource;
}

/** The original destination of a connection could not be found. */
export class OriginalDstError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OriginalDstError';
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) as `10.0.0.1`. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * /proc/net/nf_conntrack writes IPv6 addresses in full (`fd00:0000:...:000a`), the conntrack tool
 * and Node's sockets compressed (`fd00::a`): compared, and dialed, compressed.
 */
function compressed(address: string): string {
  if (!address.includes(':')) return address;
  try { return new SocketAddress({ address, family: 'ipv6' }).address; } catch { return address; }
}

/**
 * One line of /proc/net/nf_conntrack or of `conntrack -L`: the first src/dst/sport/dport group is
 * the original direction, the second the reply. Undefined for a line without both (ICMP, blank).
 */
export function parseConntrackLine(line: string): ConntrackEntry | undefined {
  const tokens = line.trim().split(/\s+/);
  // proc: "ipv4 2 tcp 6 ..."; tool: "tcp 6 ...". The protocol name precedes its number.
  const protocolIndex = tokens[0] === 'ipv4' || tokens[0] === 'ipv6' ? 2 : 0;
  const protocol = tokens[protocolIndex];
  if (protocol === undefined) return undefined;
  const groups: Partial<Record<'src' | 'dst' | 'sport' | 'dport', string>>[] = [{}, {}];
  let group = 0;
  for (const token of tokens) {
    const eq = token.indexOf('=');
    if (eq < 0) continue;
    const key = token.slice(0, eq);
    if (key !== 'src' && key !== 'dst' && key !== 'sport' && key !== 'dport') continue;
    const current = groups[group];
    if (current === undefined) break;
    if (current[key] !== undefined) {
      group++;
      const next = groups[group];
      if (next === undefined) break;
      next[key] = token.slice(eq + 1);
    } else {
      current[key] = token.slice(eq + 1);
    }
  }
  const tuple = (g: (typeof groups)[number] | undefined): ConntrackTuple | undefined => {
    if (g?.src === undefined || g.dst === undefined || g.sport === undefined || g.dport === undefined) return undefined;
    const sport = Number(g.sport);
    const dport = Number(g.dport);
    if (!Number.isInteger(sport) || !Number.isInteger(dport)) return undefined;
    return { src: compressed(g.src), dst: compressed(g.dst), sport, dport };
  };
  const orig = tuple(groups[0]);
  const reply = tuple(groups[1]);
  if (orig === undefined || reply === undefined) return undefined;
  return { protocol, orig, reply };
}

function matchesReply(entry: ConntrackEntry, accepted: AcceptedTuple): boolean {
  const { reply } = entry;
  return (
    entry.protocol === (accepted.protocol ?? 'tcp') &&
    reply.src === accepted.proxyIp &&
    reply.sport === accepted.proxyPort &&
    reply.dst === accepted.clientIp &&
    reply.dport === accepted.clientPort
  );
}

/**
 * The original destination of `accepted` in a conntrack listing (proc or tool format), or
 * undefined when no entry matches or the entry was not redirected (a direct connection to the
 * proxy has itself as original destination).
 */
export function findOriginalDst(listing: string, accepted: AcceptedTuple): OriginalDst | undefined {
  // The reply tuple as printed; searching for it first keeps a large table cheap. The proc file
  // writes IPv6 addresses in full and the tool compressed, so for IPv6 the ports find it.
  const needle = accepted.clientIp.includes(':')
    ? ` sport=${accepted.proxyPort} dport=${accepted.clientPort} `
    : `src=${accepted.proxyIp} dst=${accepted.clientIp} sport=${accepted.proxyPort} dport=${accepted.clientPort} `;
  for (let at = listing.indexOf(needle); at >= 0; at = listing.indexOf(needle, at + needle.length)) {
    const start = listing.lastIndexOf('\n', at) + 1;
    const end = listing.indexOf('\n', at);
    const entry = parseConntrackLine(listing.slice(start, end < 0 ? undefined : end));
    if (entry === undefined || !matchesReply(entry, accepted)) continue;
    const { orig } = entry;
    if (orig.dst === accepted.proxyIp && orig.dport === accepted.proxyPort) return undefined;
    return { ip: orig.dst, port: orig.dport };
  }
  return undefined;
}

/** The tuple of an accepted socket; throws when the socket has no addresses (already closed). */
export function acceptedTuple(socket: Socket): AcceptedTuple {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) {
    throw new OriginalDstError('the connection closed before its original destination was looked up');
  }
  return {
    clientIp: plainAddress(remoteAddress),
    clientPort: remotePort,
    proxyIp: plainAddress(localAddress),
    proxyPort: localPort,
  };
}

function describe(accepted: AcceptedTuple): string {
  return `${accepted.clientIp}:${accepted.clientPort} -> ${accepted.proxyIp}:${accepted.proxyPort}`;
}

/** `conntrack -L` restricted to the reply tuple; resolves with its stdout. */
function runConntrackTool(bin: string, accepted: AcceptedTuple): Promise<string> {
  const args = [
    '-L',
    '-p',
    accepted.protocol ?? 'tcp',
    '--reply-src',
    accepted.proxyIp,
    '--reply-dst',
    accepted.clientIp,
    '--reply-port-src',
    String(accepted.proxyPort),
    '--reply-port-dst',
    String(accepted.clientPort),
  ];
  if (accepted.clientIp.includes(':')) args.push('-f', 'ipv6');
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 5000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });
}

interface Waiting {
  accepted: AcceptedTuple;
  resolve: (dst: OriginalDst) => void;
  reject: (err: Error) => void;
}

export type OriginalDstLookup = (socket: Socket) => Promise<OriginalDst>;

/** The same lookup for a tuple the caller has (a UDP datagram's source and the relay's address). */
export type OriginalDstTupleLookup = (tuple: AcceptedTuple) => Promise<OriginalDst>;

/**
 * A lookup of original destinations. Lookups that arrive while the proc file is being read wait
 * for the next read, which then serves all of them.
 */
export function createOriginalDstLookup(options: OriginalDstOptions = {}): OriginalDstLookup & {
  /** The source the last lookup used (undefined before the first). */
  readonly source: () => ConntrackSource | undefined;
  readonly tuple: OriginalDstTupleLookup;
} {
  const procPath = options.procPath ?? '/proc/net/nf_conntrack';
  const conntrackBin = options.conntrackBin ?? 'conntrack';
  const wanted = options.source ?? 'auto';
  // 'auto' falls back to the tool for good once the proc file fails to read.
  let procUsable = wanted !== 'conntrack-tool';
  let lastSource: ConntrackSource | undefined;
  const queue: Waiting[] = [];
  let reading = false;

  async function viaTool(item: Waiting): Promise<void> {
    lastSource = 'conntrack-tool';
    let listing: string;
    try {
      listing = await runConntrackTool(conntrackBin, item.accepted);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const why = code === 'ENOENT' ? `${conntrackBin} is not installed` : (err as Error).message.split('\n')[0];
      item.reject(new OriginalDstError(`no conntrack entry for ${describe(item.accepted)}: ${why}`, { cause: err }));
      return;
    }
    settle(item, listing);
  }

  function settle(item: Waiting, listing: string): void {
    const found = findOriginalDst(listing, item.accepted);
    if (found) item.resolve(found);
    else item.reject(new OriginalDstError(`no redirected conntrack entry for ${describe(item.accepted)}`));
  }

  async function pump(): Promise<void> {
    if (reading) return;
    reading = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0);
        if (!procUsable) {
          for (const item of batch) void viaTool(item);
          continue;
        }
        let listing: string;
        try {
          listing = await readFile(procPath, 'utf8');
        } catch (err) {
          if (wanted === 'proc') {
            for (const item of batch) {
              item.reject(new OriginalDstError(`cannot read ${procPath}: ${(err as Error).message}`, { cause: err }));
            }
            continue;
          }
          procUsable = false;
          for (const item of batch) void viaTool(item);
          continue;
        }
        lastSource = 'proc';
        for (const item of batch) settle(item, listing);
      }
    } finally {
      reading = false;
    }
  }

  const tuple = (accepted: AcceptedTuple): Promise<OriginalDst> =>
    new Promise<OriginalDst>((resolve, reject) => {
      queue.push({ accepted, resolve, reject });
      void pump();
    });
  const lookup = (socket: Socket): Promise<OriginalDst> => {
    let accepted: AcceptedTuple;
    try {
      accepted = acceptedTuple(socket);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return tuple(accepted);
  };
  return Object.assign(lookup, { source: () => lastSource, tuple });
}

/** The original destination of a connection accepted after an iptables REDIRECT. */
export const originalDst: OriginalDstLookup = createOriginalDstLookup();
