// SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a UDP relay socket on the address the client reached the
// proxy on (loopback), one per association. Each datagram from the client carries a request
// header (RSV, FRAG, ATYP, DST.ADDR, DST.PORT) naming its destination; it goes to the cluster on a
// UDP flow through the tunnel (one per client port and destination, closed when idle), names
// resolved in the cluster as CONNECT's are. Replies come back with the same header form naming the
// destination as the client wrote it. Fragments (FRAG ≠ 0) are dropped, as are datagrams from
// another address than the client's. The association ends when its TCP control connection does.
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { SHADOW_UDP } from '../../../contract/index.ts';
import { hostPort } from '../../../runtime/host-port.ts';
import { UdpFlowTable, type UdpEndpoint, type UdpTunnel, type openUdpFlow } from '../../tunnel/udp.ts';

export interface UdpAssociateOptions {
  /** Where flows open (the session's tunnel). */
  tunnel: UdpTunnel;
  /** Each flow's idle expiry; default SHADOW_UDP.defaultIdleMs. */
  idleMs?: number;
  /** For tests: opens flows instead of openUdpFlow. */
  open?: typeof openUdpFlow;
}

/** The proxy's UDP counters, over every association. */
export interface UdpProxyStats {
  /** Associations open now, and since start. */
  associations: number;
  associationsTotal: number;
  /** Flows open now, opened, closed idle, and that could not open (name not found, ...). */
  flows: number;
  flowsOpened: number;
  flowsExpired: number;
  flowsFailed: number;
  /** Datagrams from clients sent on, and replies handed back. */
  sent: number;
  replied: number;
  /** Datagrams dropped on this side: malformed or fragmented, a stranger's, a backed-up flow. */
  dropped: number;
}

export function emptyUdpProxyStats(): UdpProxyStats {
  return { associations: 0, associationsTotal: 0, flows: 0, flowsOpened: 0, flowsExpired: 0, flowsFailed: 0, sent: 0, replied: 0, dropped: 0 };
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** A parsed UDP request header and its payload; undefined when malformed. */
export interface SocksUdpDatagram {
  frag: number;
  /** As the client wrote it: an IPv4 or IPv6 literal, or a name. */
  host: string;
  port: number;
  atyp: 1 | 3 | 4;
  payload: Buffer;
}

export function parseSocksUdp(msg: Buffer): SocksUdpDatagram | undefined {
  if (msg.length < 4) return undefined;
  const frag = msg[2]!;
  const atyp = msg[3];
  let at = 4;
  let host: string;
  if (atyp === 0x01) {
    if (msg.length < at + 4 + 2) return undefined;
    host = [...msg.subarray(at, at + 4)].join('.');
    at += 4;
  } else if (atyp === 0x04) {
    if (msg.length < at + 16 + 2) return undefined;
    host = formatV6(msg.subarray(at, at + 16));
    at += 16;
  } else if (atyp === 0x03) {
    const length = msg[at] ?? 0;
    if (length === 0 || msg.length < at + 1 + length + 2) return undefined;
    host = msg.subarray(at + 1, at + 1 + length).toString('latin1');
    at += 1 + length;
  } else {
    return undefined;
  }
  const port = msg.readUInt16BE(at);
  return { frag, host, port, atyp, payload: msg.subarray(at + 2) };
}

/** The request header for a reply from host:port, in the form the client used for it. */
export function socksUdpHeader(host: string, port: number, atyp: 1 | 3 | 4): Buffer {
  let address: Buffer;
  if (atyp === 0x01) address = Buffer.from(host.split('.').map(Number));
  else if (atyp === 0x04) address = ipv6Bytes(host);
  else {
    const name = Buffer.from(host, 'latin1');
    address = Buffer.concat([Buffer.from([name.length]), name]);
  }
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([0, 0, 0, atyp]), address, portBytes]);
}

/** The SOCKS5 reply to a UDP ASSOCIATE: succeeded, with the relay's address and port. */
export function associateReply(address: string, port: number): Buffer {
  const v6 = isIPv6(address);
  const head = Buffer.from([0x05, 0x00, 0x00, v6 ? 0x04 : 0x01]);
  const addr = v6 ? ipv6Bytes(address) : Buffer.from(address.split('.').map(Number));
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return Buffer.concat([head, addr, portBytes]);
}

function formatV6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The URL parser writes IPv6 in its canonical form (RFC 5952), as CONNECT names it.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function ipv6Bytes(text: string): Buffer {
  const [head = '', tail] = text.split('::');
  const part = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g & 0xffff, i * 2));
  return out;
}

export interface UdpAssociation {
  /** The SOCKS5 reply naming the relay socket. */
  readonly reply: Buffer;
  /** Closes the relay socket and its flows. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the relay for a control connection. `expected` is the DST.ADDR/DST.PORT of the request:
 * the address and port the client will send from, zeros when it does not know yet (then the first
 * datagram from the client's address fixes the port).
 */
export async function startUdpAssociation(control: Socket, expected: UdpEndpoint, o: UdpAssociateOptions, stats: UdpProxyStats, debug: Log): Promise<UdpAssociation> {
  const local = control.localAddress ?? '127.0.0.1';
  const clientAddress = (control.remoteAddress ?? '').replace(/^::ffff:/, '');
  const relay: UdpSocket = createSocket({ type: isIPv6(local) && !local.startsWith('::ffff:') ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject);
    relay.bind(0, local.replace(/^::ffff:/, ''), () => {
      relay.off('error', reject);
      resolve();
    });
  });
  relay.on('error', (err) => debug(`proxy: UDP relay error: ${err.message}`));
  const bound = relay.address();
  let clientPort = expected.port !== 0 ? expected.port : undefined;
  stats.associations++;
  stats.associationsTotal++;

  const table = new UdpFlowTable(o.tunnel, {
    ...(o.idleMs !== undefined ? { idleMs: o.idleMs } : {}),
    ...(o.open ? { open: o.open } : {}),
    onReply: (payload, source, destination) => {
      // The form follows the text: a name stays a name, an address an address of its family.
      const atyp = isIPv4(destination.host) ? 1 : isIPv6(destination.host) ? 4 : 3;
      relay.send(Buffer.concat([socksUdpHeader(destination.host, destination.port, atyp), payload]), source.port, source.host, (err) => {
        if (err) stats.dropped++;
        else stats.replied++;
      });
    },
    onOpen: () => {
      stats.flows++;
      stats.flowsOpened++;
    },
    onError: (err, _source, destination) => {
      stats.flowsFailed++;
      debug(`proxy: UDP to ${hostPort(destination.host, destination.port)}: ${err.message}`);
    },
    onClose: (reason, _source, destination) => {
      stats.flows--;
      if (reason === 'idle') stats.flowsExpired++;
      debug(`proxy: UDP flow to ${hostPort(destination.host, destination.port)} closed (${reason})`, { reason });
    },
  });
  relay.on('message', (msg: Buffer, from: RemoteInfo) => {
    const fromAddress = from.address.replace(/^::ffff:/, '');
    if (fromAddress !== clientAddress || (clientPort !== undefined && from.port !== clientPort)) { stats.dropped++; return; }
    const d = parseSocksUdp(msg);
    if (!d || d.frag !== 0 || d.port === 0 || d.payload.length > SHADOW_UDP.maxDatagram) { stats.dropped++; return; }
    clientPort ??= from.port;
    table.send({ host: fromAddress, port: from.port }, { host: d.host, port: d.port }, d.payload);
    stats.sent++;
  });

  let closing: Promise<void> | undefined;
  return {
    reply: associateReply(bound.address, bound.port),
    close() {
      closing ??= (async () => {
        relay.close();
        await table.close();
        const s = table.stats();
        stats.associations--;
        stats.dropped += s.dropped;
        debug(`proxy: UDP association from ${hostPort(clientAddress, clientPort ?? 0)} ended: ${s.opened} flows, ${s.expired} expired, ${s.dropped} datagrams dropped`, { ...s });
      })();
      return closing;
    },
  };
}
