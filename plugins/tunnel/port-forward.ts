// One port-forward through the API server, as a Duplex stream. Two wire formats, both over one
// WebSocket, chosen by the API server from the subprotocols offered:
// - SPDY tunnelled in WebSocket (`SPDY/3.1+portforward.k8s.io`, Kubernetes 1.31+, what kubectl
//   uses): the API server unwraps the WebSocket and the container runtime speaks SPDY. Preferred:
//   the runtime's WebSocket endpoint unmasks client frames a byte at a time and allocates per
//   message, which made it the costliest process of the whole tunnel.
// - the channel protocol (`v4.channel.k8s.io`), served by the kubelet on any version: channel 0
//   carries data, channel 1 errors.
// Written on `ws` directly rather than client-node's PortForward, which ignores backpressure: here
// a full socket pauses the WebSocket and a slow reader pauses the pod.
import type { KubeConfig } from '@kubernetes/client-node';
import { isIP, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type SecureContextOptions, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { begin, finish } from '../kube/round-trips.ts';
import { FLAG_FIN, FrameReader, FrameType, HeaderEncoder, controlStreamId, dataHeader, ping, synStream, type FrameHandler } from './spdy.ts';

export const SPDY_TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';
export const CHANNEL_PROTOCOL = 'v4.channel.k8s.io';

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  port: number;
}

type Callback = (e?: Error | null) => void;

export interface PortForwardOptions {
  /**
   * The pod's end speaks first (an SSH server): the forward is up once its first bytes arrive, and
   * until `retryUntil` (a Date.now() value) a port nobody listens on yet is asked again on the same
   * connection (a new stream pair, one round trip) instead of failing: the container may run
   * before its process listens. SPDY only.
   */
  serverSpeaksFirst?: { retryUntil: number };
  /** A connection to the API server opened beforehand (see preconnect): the upgrade then costs one round trip, not three. */
  socket?: () => TLSSocket | undefined;
  /** Gives the forward up, with the signal's reason, while it is being opened. */
  signal?: AbortSignal;
}

/** Backpressure and teardown shared by both wire formats; subclasses frame the bytes. */
abstract class WebSocketStream extends Duplex {
  protected readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false, writableHighWaterMark: 256 * 1024, readableHighWaterMark: 256 * 1024 });
    this.ws = ws;
    ws.on('message', (msg: Buffer) => { if (msg.length > 0) this.onMessage(msg); });
    ws.on('close', () => { this.push(null); if (!this.destroyed) this.destroy(); });
    ws.on('error', (e) => this.destroy(e));
  }

  protected abstract onMessage(msg: Buffer): void;
  /** Puts one batch of payload on the wire; `cb` once the socket has taken it. */
  protected abstract sendBatch(chunks: Buffer[], length: number, cb: Callback): void;

  /** Delivers payload to the reader, pausing the WebSocket while the reader is full. */
  protected deliver(payload: Buffer): void {
    if (payload.length > 0 && !this.push(payload)) this.ws.pause();
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    if (this.ws.readyState !== WebSocket.OPEN) { cb(new Error('port-forward closed')); return; }
    this.sendBatch([chunk], chunk.length, cb);
  }

  // Chunks queued while a batch was in flight go out together: fewer frames, fewer TLS records and
  // syscalls per byte. The callback fires once the socket has taken the batch: natural
  // backpressure.
  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    if (this.ws.readyState !== WebSocket.OPEN) { cb(new Error('port-forward closed')); return; }
    let length = 0;
    for (const c of chunks) length += c.chunk.length;
    this.sendBatch(chunks.map((c) => c.chunk), length, cb);
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    cb(e);
  }
}

class ChannelStream extends WebSocketStream {
  static readonly DATA = 0;
  static readonly ERROR = 1;
  readonly #port: number;
  #seenPortPrefix = { data: false, error: false };
  #errorText = '';

  constructor(ws: WebSocket, port: number) {
    super(ws);
    this.#port = port;
  }

  protected onMessage(msg: Buffer): void {
    const channel = msg[0];
    const payload = msg.subarray(1);
    // The kubelet opens each channel with the port number (2 bytes, little endian); the API
    // server's own translation does not. Accept both.
    const isPortPrefix = payload.length === 2 && payload.readUInt16LE(0) === this.#port;
    if (channel === ChannelStream.DATA) {
      if (!this.#seenPortPrefix.data) { this.#seenPortPrefix.data = true; if (isPortPrefix) return; }
      this.deliver(payload);
    } else if (channel === ChannelStream.ERROR) {
      if (!this.#seenPortPrefix.error) { this.#seenPortPrefix.error = true; if (isPortPrefix) return; }
      this.#errorText += payload.toString();
      if (this.#errorText) this.destroy(new Error(`port-forward: ${this.#errorText.trim()}`));
    }
  }

  // The channel byte must lead the message, so a batch is copied into one.
  protected sendBatch(chunks: Buffer[], length: number, cb: Callback): void {
    const wire = Buffer.allocUnsafe(length + 1);
    wire[0] = ChannelStream.DATA;
    let off = 1;
    for (const c of chunks) { c.copy(wire, off); off += c.length; }
    this.ws.send(wire, { binary: true }, (e) => cb(e ?? null));
  }

  override _final(cb: Callback): void {
    this.ws.close();
    cb();
  }
}

/**
 * kubectl's layout: an error stream (half-closed by us at once; the runtime writes a failure to
 * it), then a data stream. Odd stream ids are the client's.
 */
class SpdyStream extends WebSocketStream {
  static readonly COPY_LIMIT = 64 * 1024;
  static readonly RETRY_MS = 100;
  readonly #reader = new FrameReader();
  readonly #headers = new HeaderEncoder();
  readonly #port: number;
  readonly #speaksFirst: { retryUntil: number } | undefined;
  // Each request is a pair of streams (error, data); a retry opens the next pair.
  #request = 0;
  #errorId = 1;
  #dataId = 3;
  #heard = false;
  #errorText = '';
  #replied: (() => void) | undefined;
  readonly replied: Promise<void>;
  readonly #socket: Socket | undefined;

  constructor(ws: WebSocket, port: number, speaksFirst?: { retryUntil: number }) {
    super(ws);
    this.#port = port;
    this.#speaksFirst = speaksFirst;
    this.#socket = underlyingSocket(ws);
    this.replied = new Promise<void>((resolve, reject) => {
      this.#replied = resolve;
      this.once('error', reject);
      this.once('close', () => reject(new Error('port-forward closed before the pod answered')));
    });
    this.replied.catch(() => { /* the caller of openPortForward sees it */ });
    this.#open();
  }

  #open(): void {
    const stream = (type: string, id: number): Buffer =>
      synStream(id, this.#headers.encode({ streamtype: type, port: String(this.#port), requestid: String(this.#request) }));
    this.ws.send(Buffer.concat([
      stream('error', this.#errorId),
      dataHeader(this.#errorId, 0, FLAG_FIN),
      stream('data', this.#dataId),
    ]), { binary: true });
  }

  /** Nobody listens yet: while the caller allows, the next stream pair asks again. */
  #retry(why: string): boolean {
    if (this.#heard || !this.#speaksFirst || Date.now() >= this.#speaksFirst.retryUntil) return false;
    this.#errorText = '';
    this.#request++;
    this.#errorId += 4;
    this.#dataId += 4;
    setTimeout(() => { if (!this.destroyed && this.ws.readyState === WebSocket.OPEN) this.#open(); }, SpdyStream.RETRY_MS);
    this.emit('retry', why);
    return true;
  }

  protected onMessage(msg: Buffer): void {
    this.#reader.push(msg, this.#handler);
  }

  readonly #handler: FrameHandler = {
    data: (streamId, chunk) => {
      if (streamId === this.#dataId) {
        if (!this.#heard && chunk.length > 0) { this.#heard = true; if (this.#speaksFirst) this.#replied?.(); }
        this.deliver(chunk);
      } else if (streamId === this.#errorId) {
        this.#errorText += chunk.toString();
      }
    },
    fin: (streamId) => {
      if (streamId === this.#dataId && this.#heard) this.push(null);
      else if (streamId === this.#dataId && !this.#retry('closed')) this.push(null);
      else if (streamId === this.#errorId && this.#errorText.trim() && !this.#retry(this.#errorText.trim())) this.destroy(new Error(`port-forward: ${this.#errorText.trim()}`));
    },
    control: (f) => {
      switch (f.type) {
        case FrameType.synReply:
          if (controlStreamId(f) === this.#dataId && !this.#speaksFirst) this.#replied?.();
          break;
        case FrameType.rstStream:
          if (controlStreamId(f) === this.#dataId && !this.#retry('reset')) this.destroy(new Error(`port-forward: stream reset by the runtime (status ${f.payload.readUInt32BE(4)})`));
          break;
        case FrameType.ping:
          // The runtime's pings carry even ids; answering keeps the session alive.
          if (f.payload.length === 4 && f.payload.readUInt32BE(0) % 2 === 0) this.ws.send(ping(f.payload), { binary: true });
          break;
        case FrameType.goAway:
          this.push(null);
          break;
        default:
          // SETTINGS, HEADERS, WINDOW_UPDATE: nothing to act on (no flow control on either end).
          break;
      }
    },
  };

  // WebSocket messages are only a carrier for the SPDY byte stream, so a DATA frame may span
  // several. A small batch goes as one message (the API server relays each message as a write of
  // its own, and a split frame costs the runtime a wake-up: latency); a large one goes as the frame
  // header and its chunks uncopied, the corked socket turning the lot into one write.
  protected sendBatch(chunks: Buffer[], length: number, cb: Callback): void {
    const done = (e?: Error): void => cb(e ?? null);
    const header = dataHeader(this.#dataId, length);
    if (length <= SpdyStream.COPY_LIMIT) {
      this.ws.send(Buffer.concat([header, ...chunks], length + header.length), { binary: true }, done);
      return;
    }
    const socket = this.#socket;
    socket?.cork();
    this.ws.send(header, { binary: true });
    for (let i = 0; i < chunks.length; i++) this.ws.send(chunks[i]!, { binary: true }, i === chunks.length - 1 ? done : undefined);
    socket?.uncork();
  }

  override _final(cb: Callback): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(dataHeader(this.#dataId, 0, FLAG_FIN), { binary: true });
    cb();
  }
}

function underlyingSocket(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/** TLS options for a connection to the API server, as ws would make it. */
async function tlsOptions(kc: KubeConfig): Promise<ConnectionOptions & { url: URL }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const url = new URL(cluster.server);
  const o: SecureContextOptions & { rejectUnauthorized?: boolean; servername?: string } = {};
  await kc.applyToHTTPSOptions(o);
  return {
    url, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443),
    ...(o.ca ? { ca: o.ca } : {}), ...(o.cert ? { cert: o.cert } : {}), ...(o.key ? { key: o.key } : {}),
    ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
    servername: o.servername ?? (isIP(url.hostname) ? '' : url.hostname),
  };
}

/**
 * Opens a TLS connection to the API server now, for a port-forward to come: its TCP and TLS
 * handshakes then happen while the pod starts, not after. `whenReady()` hands it over once, when
 * its handshakes are done (undefined when it failed or was closed meanwhile); unused, it is closed
 * after `idleMs`.
 */
export interface Preconnected {
  /** The socket once its TLS handshake is done; undefined if it failed or was already taken. */
  whenReady(): Promise<TLSSocket | undefined>;
  /** Closes it unless taken. */
  discard(): void;
}

export function preconnect(kc: KubeConfig, idleMs = 20_000): Preconnected {
  let socket: TLSSocket | undefined;
  const ready = new Promise<TLSSocket | undefined>((resolve) => {
    void tlsOptions(kc).then(({ url: _url, ...o }) => {
      if (_url.protocol !== 'https:') { resolve(undefined); return; }
      const s = tlsConnect(o);
      socket = s;
      s.once('secureConnect', () => resolve(s));
      s.on('error', () => { socket = undefined; resolve(undefined); });
      s.once('close', () => { if (socket === s) socket = undefined; resolve(undefined); });
      setTimeout(() => { if (socket === s) { socket = undefined; s.destroy(); } }, idleMs).unref();
    }, () => resolve(undefined));
  });
  let taken = false;
  return {
    whenReady: async () => {
      if (taken) return undefined;
      taken = true;
      const s = await ready;
      if (!s || s.destroyed || socket !== s) return undefined;
      socket = undefined;
      return s;
    },
    discard: () => {
      taken = true;
      socket?.destroy();
      socket = undefined;
    },
  };
}

/** Opens the forward and resolves once the pod's end answers. */
export async function openPortForward(kc: KubeConfig, target: PortForwardTarget, timeoutMs = 15_000, protocols = [SPDY_TUNNEL_PROTOCOL, CHANNEL_PROTOCOL], po: PortForwardOptions = {}): Promise<Duplex> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const base = cluster.server.replace(/^http/, 'ws').replace(/\/$/, '');
  const url = `${base}/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/portforward?ports=${target.port}`;
  const opts: WebSocket.ClientOptions & SecureContextOptions = {
    handshakeTimeout: timeoutMs,
    perMessageDeflate: false,
    // Masking protects browsers' intermediaries from crafted bytes; this connection is TLS to the
    // API server and carries SSH, so a zero mask (which ws then skips) saves a pass over every byte.
    generateMask: (mask: Buffer) => { mask.fill(0); },
  };
  // ws accepts only RFC 7230 tokens as subprotocols, and the tunnelling protocol's name has a '/'.
  // It is offered under a stand-in token: renamed on the request (finishRequest), and the server's
  // answer renamed back before ws checks it (the 'upgrade' event comes first).
  const standIn = (p: string): string => p.replace(/[^!#$%&'*+\-.0-9A-Z^_`|a-z~]/g, '_');
  opts.finishRequest = (req) => {
    req.setHeader('Sec-WebSocket-Protocol', protocols.join(', '));
    req.end();
  };
  await kc.applyToHTTPSOptions(opts);
  // A WebSocket has a connection of its own: TCP, TLS, then the upgrade; on a connection opened
  // beforehand only the upgrade.
  po.signal?.throwIfAborted();
  const early = po.socket?.();
  if (early) opts.createConnection = () => early;
  const trip = begin(early ? 'port-forward upgrade (connection opened beforehand)' : 'port-forward upgrade', early ? 1 : 3);
  const ws = new WebSocket(url, protocols.map(standIn), opts);
  // Terminated while connecting, ws fails the upgrade with an error of its own: the reason is
  // the signal's.
  const onAbort = (): void => { ws.terminate(); };
  po.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await upgraded(ws, target, timeoutMs, protocols, po, trip, standIn);
  } catch (e) {
    if (po.signal?.aborted) throw po.signal.reason;
    throw e;
  } finally {
    po.signal?.removeEventListener('abort', onAbort);
  }
}

async function upgraded(ws: WebSocket, target: PortForwardTarget, timeoutMs: number, protocols: string[], po: PortForwardOptions, trip: ReturnType<typeof begin>, standIn: (p: string) => string): Promise<Duplex> {
  let protocol = '';
  ws.once('upgrade', (res) => {
    const chosen = res.headers['sec-websocket-protocol'];
    if (typeof chosen === 'string' && protocols.includes(chosen)) {
      protocol = chosen;
      res.headers['sec-websocket-protocol'] = standIn(chosen);
    }
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error): void => { ws.removeAllListeners('open'); reject(e); };
    ws.once('open', () => { ws.off('error', fail); ws.off('unexpected-response', badResponse); resolve(); });
    ws.once('error', fail);
    const badResponse = (_req: unknown, res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => {
        let msg = body;
        try { msg = (JSON.parse(body) as { message?: string }).message ?? body; } catch { /* not JSON */ }
        fail(Object.assign(new Error(`port-forward to ${target.namespace}/${target.pod}:${target.port} refused: ${msg.trim()} (HTTP ${res.statusCode})`), { statusCode: res.statusCode }));
      });
    };
    ws.once('unexpected-response', badResponse);
  }).then(() => finish(trip), (e: unknown) => {
    // Refused, the upgrade was a look at a pod still starting (see Tunnel.start): waiting, not a
    // step of the start, so not counted.
    finish(trip);
    trip.turns = 0;
    throw e;
  });
  // No Nagle, or small SSH packets wait for ACKs.
  underlyingSocket(ws)?.setNoDelay(true);
  if (protocol === SPDY_TUNNEL_PROTOCOL) {
    const s = new SpdyStream(ws, target.port, po.serverSpeaksFirst);
    const onAbort = (): void => { s.destroy(po.signal!.reason as Error); };
    po.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => s.destroy(new Error(`port-forward to ${target.namespace}/${target.pod}:${target.port}: no answer from the pod in ${timeoutMs} ms`)), timeoutMs);
    const reply = begin(po.serverSpeaksFirst ? 'port-forward stream, first bytes from the pod' : 'port-forward stream reply');
    // The pod's process was still starting for the retries: one round trip counted, the wait is the pod's.
    try { await s.replied; } finally { clearTimeout(timer); finish(reply); po.signal?.removeEventListener('abort', onAbort); }
    return s;
  }
  return new ChannelStream(ws, target.port);
}
