// UDP to the cluster over the tunnel (SHADOW_UDP in contract/): one flow is one SSH channel to a
// UDP socket the shadow opens, connected to one destination. Every mode that carries UDP uses this:
// socks mode's UDP ASSOCIATE, transparent and hosts mode relays (through UdpFlowTable).
//
// The shape agreed with the modes' authors: UdpFlow and openUdpFlow as planned, with two additions
// (closeReason, and the tunnel parameter typed as the one Tunnel method it uses, which a Tunnel
// satisfies, so tests can hand in a fake). A flow never queues without bound: a datagram sent while
// the channel is backed up (or one over SHADOW_UDP.maxDatagram) is dropped and counted in `dropped`.
import type { ClientChannel } from 'ssh2';
import { SHADOW_UDP } from '../../contract/index.ts';
import { hostPort } from '../../runtime/host-port.ts';
import { DatagramDecoder, writeDatagram } from '../../runtime/udp-frames.ts';
import type { Tunnel } from './tunnel.ts';

/** Why a flow ended: idle for idleMs, close() called, or the shadow or the tunnel ended it. */
export type UdpCloseReason = 'idle' | 'closed' | 'remote';

export interface UdpFlow {
  /** Sends one datagram; dropped (and counted) when the flow is closed, backed up or it is too large. */
  send(payload: Buffer): void;
  /** Called for each datagram the destination sends back. */
  onMessage(cb: (payload: Buffer) => void): void;
  close(): void;
  /** Resolves once the flow's channel is closed, for whatever reason. */
  readonly closed: Promise<void>;
  /** Datagrams this side dropped (sent while backed up, too large, or after close). */
  readonly dropped: number;
  /** Undefined while open. */
  readonly closeReason: UdpCloseReason | undefined;
}

export interface UdpFlowOptions {
  /** Close after this long without a datagram either way. Default SHADOW_UDP.defaultIdleMs. */
  idleMs?: number;
}

/** The part of the tunnel a flow needs. */
export type UdpTunnel = Pick<Tunnel, 'exec'>;

/** Whether idleMs is an idle expiry the shadow accepts. */
export function isValidUdpIdle(idleMs: number): boolean {
  return Number.isInteger(idleMs) && idleMs >= SHADOW_UDP.minIdleMs && idleMs <= SHADOW_UDP.maxIdleMs;
}

/**
 * Opens a UDP flow to host:port as seen from inside the cluster (a name resolves with the shadow's
 * resolver, like a TCP dial). Resolves once the shadow's socket is ready; rejects with the reason
 * the shadow gives (a name not found, a bad port) or when the shadow does not carry UDP.
 */
export async function openUdpFlow(tunnel: UdpTunnel, host: string, port: number, opts: UdpFlowOptions = {}): Promise<UdpFlow> {
  const idleMs = opts.idleMs ?? SHADOW_UDP.defaultIdleMs;
  const target = hostPort(host, port);
  if (!/^[^\s]{1,253}$/.test(host)) throw new Error(`cannot send UDP to ${JSON.stringify(host)}: not a host name or address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`cannot send UDP to ${target}: the port must be 1-65535`);
  if (!isValidUdpIdle(idleMs)) throw new Error(`UDP idle expiry ${idleMs} ms is out of range (${SHADOW_UDP.minIdleMs}-${SHADOW_UDP.maxIdleMs} ms)`);
  let channel: ClientChannel;
  try {
    channel = await tunnel.exec(`${SHADOW_UDP.command} ${host} ${port} ${idleMs}`);
  } catch (e) {
    // ssh2's words for an exec request the server turned down: a shadow without kt-udp.
    const refused = (e as Error).message === 'Unable to exec';
    const why = refused ? 'the shadow refused it; its image may predate UDP (contract 1.1)' : (e as Error).message;
    throw new Error(`cannot send UDP to ${target} through the cluster: ${why}`, { cause: e });
  }
  channel.on('error', () => {}); // 'close' follows, which is what the flow acts on
  await awaitReady(channel, target);
  return new ChannelFlow(channel, idleMs);
}

/** Waits for the shadow's status line on stderr: `ok`, or the reason the flow cannot open. */
function awaitReady(channel: ClientChannel, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let line = '';
    const onData = (d: Buffer | string): void => {
      line += d.toString();
      const nl = line.indexOf('\n');
      if (nl < 0 && line.length < 1024) return;
      done();
      const status = line.slice(0, nl < 0 ? undefined : nl).trim();
      if (status === SHADOW_UDP.ready) { resolve(); return; }
      channel.close();
      reject(new Error(`cannot send UDP to ${target} through the cluster: ${status}`));
    };
    const onClose = (): void => {
      done();
      reject(new Error(`cannot send UDP to ${target} through the cluster: the shadow closed the flow before it was ready`));
    };
    const done = (): void => {
      channel.stderr.off('data', onData);
      channel.stderr.off('end', onClose);
      channel.off('close', onClose);
    };
    channel.stderr.on('data', onData);
    // The channel's own 'close' waits for its data side to be read, which nothing does yet; the
    // stderr side is read, so its end is what tells of a flow gone before its status line.
    channel.stderr.once('end', onClose);
    channel.once('close', onClose);
  });
}

class ChannelFlow implements UdpFlow {
  readonly closed: Promise<void>;
  #dropped = 0;
  #reason: UdpCloseReason | undefined;
  readonly #listeners: ((payload: Buffer) => void)[] = [];
  readonly #channel: ClientChannel;
  readonly #idleMs: number;
  #timer: NodeJS.Timeout;

  constructor(channel: ClientChannel, idleMs: number) {
    this.#channel = channel;
    this.#idleMs = idleMs;
    this.#timer = this.#arm();
    this.closed = new Promise((resolve) => {
      // Exit status 0: the shadow's own idle expiry (SHADOW_UDP); anything else ended it early.
      channel.once('close', (code: unknown) => {
        clearTimeout(this.#timer);
        this.#reason ??= code === 0 ? 'idle' : 'remote';
        resolve();
      });
    });
    const decoder = new DatagramDecoder();
    channel.on('data', (chunk: Buffer) => {
      let datagrams: Buffer[];
      try {
        datagrams = decoder.push(chunk);
      } catch {
        this.#end('remote');
        return;
      }
      if (datagrams.length > 0) this.#touch();
      for (const d of datagrams) for (const cb of this.#listeners) cb(d);
    });
  }

  get dropped(): number { return this.#dropped; }
  get closeReason(): UdpCloseReason | undefined { return this.#reason; }

  #arm(): NodeJS.Timeout {
    const t = setTimeout(() => this.#end('idle'), this.#idleMs);
    t.unref();
    return t;
  }

  #touch(): void {
    this.#timer.refresh();
  }

  send(payload: Buffer): void {
    if (this.#reason !== undefined || payload.length > SHADOW_UDP.maxDatagram || !writeDatagram(this.#channel, payload)) {
      this.#dropped++;
      return;
    }
    this.#touch();
  }

  onMessage(cb: (payload: Buffer) => void): void {
    this.#listeners.push(cb);
  }

  close(): void {
    this.#end('closed');
  }

  #end(reason: UdpCloseReason): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    clearTimeout(this.#timer);
    this.#channel.close();
  }
}

/** A UDP endpoint: an address (or, for a destination, a cluster name) and a port. */
export interface UdpEndpoint {
  host: string;
  port: number;
}

export interface UdpFlowTableStats {
  /** Flows open or opening now. */
  open: number;
  /** Flows opened since start. */
  opened: number;
  /** Flows closed after idleMs without traffic. */
  expired: number;
  /** Flows the shadow could not open (name not found, ...). */
  failed: number;
  /** Datagrams dropped: by closed flows' counters, and those that waited for a flow that failed or overflowed its queue. */
  dropped: number;
}

export interface UdpFlowTableOptions {
  /** Each flow's idle expiry. Default SHADOW_UDP.defaultIdleMs. */
  idleMs?: number;
  /** Called with each reply, and which local source and destination it answers. */
  onReply: (payload: Buffer, source: UdpEndpoint, destination: UdpEndpoint) => void;
  /** Told once per flow that cannot open (one line for the user's debug log, say). */
  onError?: (err: Error, source: UdpEndpoint, destination: UdpEndpoint) => void;
  /** Told when a flow has opened (its first datagrams go out now). */
  onOpen?: (source: UdpEndpoint, destination: UdpEndpoint) => void;
  /** Told when a flow closes. */
  onClose?: (reason: UdpCloseReason, source: UdpEndpoint, destination: UdpEndpoint) => void;
  /** Opens flows; default openUdpFlow (tests hand in fakes). */
  open?: typeof openUdpFlow;
}

/** Datagrams held per flow while it opens; more are dropped. */
export const OPENING_QUEUE_MAX = 64;

interface Entry {
  flow: UdpFlow | undefined;
  /** Datagrams waiting for the flow to open. */
  queue: Buffer[];
}

/**
 * The flows of a relay that receives every program's datagrams on one local socket: one flow per
 * (local source, destination), opened on the first datagram and gone when it expires or fails.
 */
export class UdpFlowTable {
  readonly #tunnel: UdpTunnel;
  readonly #o: UdpFlowTableOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #stats: UdpFlowTableStats = { open: 0, opened: 0, expired: 0, failed: 0, dropped: 0 };
  #closed = false;

  constructor(tunnel: UdpTunnel, options: UdpFlowTableOptions) {
    this.#tunnel = tunnel;
    this.#o = options;
  }

  /** Flows open or opening now. */
  get size(): number { return this.#entries.size; }

  stats(): UdpFlowTableStats {
    let live = 0;
    for (const e of this.#entries.values()) live += e.flow?.dropped ?? 0;
    return { ...this.#stats, open: this.#entries.size, dropped: this.#stats.dropped + live };
  }

  /** Sends payload from source to destination through the flow for the pair, opening it if needed. */
  send(source: UdpEndpoint, destination: UdpEndpoint, payload: Buffer): void {
    if (this.#closed) { this.#stats.dropped++; return; }
    const key = `${source.host}|${source.port}|${destination.host}|${destination.port}`;
    const entry = this.#entries.get(key);
    if (entry?.flow) { entry.flow.send(payload); return; }
    if (entry) {
      if (entry.queue.length >= OPENING_QUEUE_MAX) this.#stats.dropped++;
      else entry.queue.push(payload);
      return;
    }
    const fresh: Entry = { flow: undefined, queue: [payload] };
    this.#entries.set(key, fresh);
    const src = { ...source };
    const dst = { ...destination };
    const open = this.#o.open ?? openUdpFlow;
    open(this.#tunnel, dst.host, dst.port, this.#o.idleMs === undefined ? {} : { idleMs: this.#o.idleMs }).then(
      (flow) => {
        if (this.#closed || this.#entries.get(key) !== fresh) { flow.close(); this.#stats.dropped += fresh.queue.length; return; }
        this.#stats.opened++;
        fresh.flow = flow;
        this.#o.onOpen?.(src, dst);
        flow.onMessage((reply) => this.#o.onReply(reply, src, dst));
        for (const d of fresh.queue) flow.send(d);
        fresh.queue = [];
        void flow.closed.then(() => {
          if (this.#entries.get(key) === fresh) this.#entries.delete(key);
          this.#stats.dropped += flow.dropped;
          const reason = flow.closeReason ?? 'remote';
          if (reason === 'idle') this.#stats.expired++;
          this.#o.onClose?.(reason, src, dst);
        });
      },
      (err: unknown) => {
        if (this.#entries.get(key) === fresh) this.#entries.delete(key);
        this.#stats.failed++;
        this.#stats.dropped += fresh.queue.length;
        this.#o.onError?.(err instanceof Error ? err : new Error(String(err)), src, dst);
      },
    );
  }

  /** Closes every flow; resolves when their channels are closed. Later sends are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    const flows = [...this.#entries.values()].flatMap((e) => (e.flow ? [e.flow] : []));
    for (const f of flows) f.close();
    await Promise.all(flows.map((f) => f.closed));
  }
}
