// The shadow's half of UDP (SHADOW_UDP): each `kt-udp <host> <port> <idleMs>` session channel gets a
// UDP socket of its own, connected to the destination (so only its replies come back), and the
// datagrams framed on the channel go out of it and back. Destinations are checked and resolved as
// direct-tcpip's are (a dialable port; names through the shadow's resolver).
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import type { ServerChannel } from 'ssh2';
import { SHADOW_UDP } from '../../contract/index.ts';
import { hostPort } from '../../runtime/host-port.ts';
import type { Logger } from '../../runtime/log.ts';
import { errorMessage } from '../../runtime/log.ts';
import { DatagramDecoder, writeDatagram } from '../../runtime/udp-frames.ts';

export interface UdpFlowStats {
  /** Flows open now. */
  open: number;
  /** Flows opened since start. */
  opened: number;
  /** Flows the shadow closed after idleMs + idleGraceMs without a datagram. */
  expired: number;
  /** Flows that could not open (bad request, name not found, socket error). */
  failed: number;
  /** Datagrams dropped (a backed-up channel or socket), both directions. */
  dropped: number;
  /** Datagrams carried, both directions. */
  datagrams: number;
}

export interface UdpRequest {
  host: string;
  port: number;
  idleMs: number;
}

/** Parses `kt-udp <host> <port> <idleMs>`; undefined when it is not that command, a reason when malformed. */
export function parseUdpCommand(command: string): UdpRequest | string | undefined {
  const words = command.trim().split(/\s+/);
  if (words[0] !== SHADOW_UDP.command) return undefined;
  if (words.length !== 4) return `usage: ${SHADOW_UDP.command} <host> <port> <idleMs>`;
  const [, host = '', portText = '', idleText = ''] = words;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return `bad port ${portText}`;
  const idleMs = /^\d{1,8}$/.test(idleText) ? Number(idleText) : NaN;
  if (!(idleMs >= SHADOW_UDP.minIdleMs && idleMs <= SHADOW_UDP.maxIdleMs)) {
    return `bad idle expiry ${idleText} (${SHADOW_UDP.minIdleMs}-${SHADOW_UDP.maxIdleMs} ms)`;
  }
  if (host.length > 253) return 'host name too long';
  return { host, port, idleMs };
}

export class UdpFlows {
  readonly #lookup: (host: string) => Promise<string>;
  readonly #log: Logger;
  readonly #stats: UdpFlowStats = { open: 0, opened: 0, expired: 0, failed: 0, dropped: 0, datagrams: 0 };
  readonly #sockets = new Set<UdpSocket>();

  constructor(lookup: (host: string) => Promise<string>, log: Logger) {
    this.#lookup = lookup;
    this.#log = log;
  }

  stats(): UdpFlowStats {
    return { ...this.#stats };
  }

  /** Serves one accepted kt-udp channel until it closes or expires. */
  serve(channel: ServerChannel, request: UdpRequest): void {
    // ssh2's 2 MiB window, not widened as TCP channels are: UDP is not paced by the window, so a
    // wider one would only hold more datagrams in flight.
    channel.on('error', () => {});
    const target = hostPort(request.host, request.port);
    const fail = (reason: string): void => {
      this.#stats.failed++;
      this.#log.info('udp flow failed', { target, reason });
      // The reason first, then the status: exit() goes out at once, a write after this tick.
      channel.stderr.write(`${reason}\n`, () => {
        channel.exit(1);
        channel.end();
      });
    };
    let gone = false;
    channel.once('close', () => { gone = true; });
    this.#lookup(request.host).then(
      (address) => {
        if (gone) return;
        const socket = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4' });
        this.#sockets.add(socket);
        const onError = (err: Error): void => {
          closeQuietly(socket);
          this.#sockets.delete(socket);
          fail(errorMessage(err));
        };
        socket.once('error', onError);
        socket.connect(request.port, address, () => {
          socket.off('error', onError);
          if (gone) { closeQuietly(socket); this.#sockets.delete(socket); return; }
          this.#run(channel, socket, request, target, address);
        });
      },
      (err: unknown) => { if (!gone) fail(errorMessage(err)); },
    );
  }

  #run(channel: ServerChannel, socket: UdpSocket, request: UdpRequest, target: string, address: string): void {
    const stats = this.#stats;
    stats.open++;
    stats.opened++;
    let dropped = 0;
    let carried = 0;
    let reason = 'laptop closed';
    const log = this.#log.child({ target, address });
    log.debug('udp flow open', { idleMs: request.idleMs, open: stats.open });
    channel.stderr.write(`${SHADOW_UDP.ready}\n`);
    const timer = setTimeout(() => {
      reason = 'idle';
      stats.expired++;
      channel.exit(0);
      channel.end();
    }, request.idleMs + SHADOW_UDP.idleGraceMs);
    const drop = (): void => { dropped++; stats.dropped++; };
    const carry = (): void => { carried++; stats.datagrams++; timer.refresh(); };

    // A connected UDP socket reports an ICMP unreachable as an error on a later send or receive:
    // UDP loses datagrams, the flow stays.
    socket.on('error', (err) => log.debug('udp socket error', { error: err.message }));
    socket.on('message', (msg) => {
      if (writeDatagram(channel, msg)) carry();
      else drop();
    });
    const decoder = new DatagramDecoder();
    channel.on('data', (chunk: Buffer) => {
      let datagrams: Buffer[];
      try {
        datagrams = decoder.push(chunk);
      } catch (e) {
        reason = errorMessage(e);
        channel.exit(1);
        channel.end();
        return;
      }
      for (const d of datagrams) {
        if (socket.getSendQueueSize() > SHADOW_UDP.maxQueuedBytes) { drop(); continue; }
        socket.send(d);
        carry();
      }
    });
    channel.once('close', () => {
      clearTimeout(timer);
      closeQuietly(socket);
      this.#sockets.delete(socket);
      stats.open--;
      log.debug('udp flow closed', { reason, datagrams: carried, dropped, open: stats.open });
    });
  }

  /** Closes every flow's socket (their channels go with the SSH connections). */
  closeAll(): void {
    for (const s of this.#sockets) closeQuietly(s);
    this.#sockets.clear();
  }
}

/** dgram throws when a socket is closed twice (the channel's close and closeAll may both come). */
function closeQuietly(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
