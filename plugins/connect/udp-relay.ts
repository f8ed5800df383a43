// A local UDP socket whose datagrams go to the cluster through the tunnel's UDP flows
// (UdpFlowTable: one flow per sender and destination, gone when idle), and whose replies leave
// from that same socket, so the sender sees them come from where it sent to. Transparent mode has
// one such socket behind an iptables REDIRECT (each sender's destination is read from conntrack;
// the kernel's reverse NAT puts the original address back on the replies); hosts mode has one per
// UDP port of a Service's loopback address (a fixed destination).
//
// A destination that has to be looked up is remembered per sender (address:port as the relay sees
// it): while a conntrack entry lives, its reply tuple names one destination, and a program socket
// that sends to a second one reaches the relay from another port (the kernel remaps the source port
// to keep the reply tuples apart). A sender quiet for longer than `recheckMs` has it looked up
// again, as its entry may have expired and been replaced by one to elsewhere. Datagrams that
// arrive during a lookup wait for it, in order.
import type { Socket } from 'node:dgram';
import type { Logger } from '../cli/log.ts';
import { UdpFlowTable, type UdpEndpoint, type UdpFlowTableStats, type UdpTunnel, type openUdpFlow } from '../tunnel/udp.ts';

export interface UdpRelayOptions {
  /** A bound socket; the relay owns it from now on and closes it. */
  socket: Socket;
  tunnel: UdpTunnel;
  /** Where a sender's datagrams go: fixed (hosts mode) or looked up (transparent mode); a rejection drops them. */
  destination: UdpEndpoint | ((from: UdpEndpoint) => Promise<UdpEndpoint>);
  /** Each flow's idle expiry; default the contract's. */
  idleMs?: number;
  log: Pick<Logger, 'debug' | 'warn'>;
  /** Names the relay in log lines. */
  label: string;
  /** Default 10 s, well inside conntrack's shortest default UDP timeout (30 s). */
  recheckMs?: number;
  /** Datagrams held per sender while its destination is looked up; default 64. */
  maxQueued?: number;
  /** Senders whose destination is remembered at once; default 4096. */
  maxSenders?: number;
  /** For tests: opens flows instead of openUdpFlow. */
  open?: typeof openUdpFlow;
  now?: () => number;
}

export interface UdpRelayStats extends UdpFlowTableStats {
  /** Datagrams from local senders. */
  received: number;
  /** Replies sent back to local senders. */
  replied: number;
}

export interface UdpRelay {
  readonly port: number;
  stats(): UdpRelayStats;
  /** Closes the socket and every flow. Idempotent. */
  close(): Promise<void>;
}

interface Sender {
  dest: UdpEndpoint | undefined;
  /** Datagrams waiting for a lookup in progress. */
  queue: Buffer[] | undefined;
  lastSeen: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function startUdpRelay(options: UdpRelayOptions): UdpRelay {
  const { socket, log, label, destination } = options;
  const recheckMs = options.recheckMs ?? 10_000;
  const maxQueued = options.maxQueued ?? 64;
  const maxSenders = options.maxSenders ?? 4096;
  const now = options.now ?? Date.now;
  let received = 0;
  let replied = 0;
  let dropped = 0;
  let closing: Promise<void> | undefined;
  let warnedFull = false;

  const table = new UdpFlowTable(options.tunnel, {
    ...(options.idleMs === undefined ? {} : { idleMs: options.idleMs }),
    ...(options.open === undefined ? {} : { open: options.open }),
    onReply: (payload, source) => {
      if (closing) return;
      socket.send(payload, source.port, source.host, (err) => {
        if (!err) { replied++; return; }
        dropped++;
        log.debug(`${label}: a reply to ${source.host}:${source.port} was dropped: ${err.message}`);
      });
    },
    onError: (err, source, dest) => log.debug(`${label}: ${source.host}:${source.port} -> ${dest.host}:${dest.port}: ${err.message}; its datagrams are dropped`),
    onClose: (reason, source, dest) => log.debug(`${label}: flow ${source.host}:${source.port} -> ${dest.host}:${dest.port} closed (${reason})`),
  });

  const senders = new Map<string, Sender>();
  // Senders gone quiet are forgotten; their next datagram looks the destination up again anyway.
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, s] of senders) if (s.queue === undefined && t - s.lastSeen > recheckMs) senders.delete(key);
  }, recheckMs);
  sweep.unref();

  const lookUp = async (key: string, sender: Sender, source: UdpEndpoint, look: (from: UdpEndpoint) => Promise<UdpEndpoint>): Promise<void> => {
    try {
      sender.dest = await look(source);
    } catch (err) {
      if (senders.get(key) === sender) senders.delete(key);
      dropped += sender.queue?.length ?? 0;
      sender.queue = undefined;
      log.debug(`${label}: no destination for ${key}, its datagrams are dropped (${errorMessage(err)})`);
      return;
    }
    const queued = sender.queue ?? [];
    sender.queue = undefined;
    if (closing) return;
    for (const payload of queued) table.send(source, sender.dest, payload);
  };

  socket.on('message', (payload: Buffer, from) => {
    if (closing) return;
    received++;
    const source = { host: from.address, port: from.port };
    if (typeof destination !== 'function') {
      table.send(source, destination, payload);
      return;
    }
    const key = `${from.address}:${from.port}`;
    const t = now();
    let sender = senders.get(key);
    if (sender === undefined) {
      if (senders.size >= maxSenders) {
        dropped++;
        if (!warnedFull) log.warn(`${label}: ${maxSenders} UDP senders at once; datagrams of new ones are dropped until some go quiet`);
        warnedFull = true;
        return;
      }
      sender = { dest: undefined, queue: undefined, lastSeen: t };
      senders.set(key, sender);
    }
    const quiet = t - sender.lastSeen;
    sender.lastSeen = t;
    if (sender.queue !== undefined) {
      if (sender.queue.length >= maxQueued) dropped++;
      else sender.queue.push(payload);
      return;
    }
    if (sender.dest === undefined || quiet > recheckMs) {
      sender.queue = [payload];
      void lookUp(key, sender, source, destination);
      return;
    }
    table.send(source, sender.dest, payload);
  });
  socket.on('error', (err) => log.warn(`${label}: socket error: ${err.message}`));

  return {
    port: socket.address().port,
    stats: () => {
      const t = table.stats();
      return { ...t, dropped: t.dropped + dropped, received, replied };
    },
    close() {
      closing ??= (async () => {
        clearInterval(sweep);
        for (const s of senders.values()) dropped += s.queue?.length ?? 0;
        const t = table.stats();
        if (received > 0) log.debug(`${label}: ${received} datagrams in, ${replied} replies out, ${t.dropped + dropped} dropped, ${t.opened} flows opened (${t.expired} expired idle, ${t.failed} failed)`);
        senders.clear();
        await new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        });
        // A tunnel that is gone may never confirm; the flows are closed on this side either way.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          table.close(),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, 2000); timer.unref(); }),
        ]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
