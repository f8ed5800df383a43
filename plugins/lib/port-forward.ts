// One port-forward through the API server, as a Duplex stream: the pod's port, reached over the
// WebSocket port-forward protocol (channel 0 carries data, channel 1 errors; each channel's first
// frame is the port number). Written on `ws` directly rather than client-node's PortForward, which
// ignores backpressure: here a full socket pauses the WebSocket and a slow reader pauses the pod.
import type { KubeConfig } from '@kubernetes/client-node';
import { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import WebSocket from 'ws';

const DATA = 0;
const ERROR = 1;

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  port: number;
}

class PortForwardStream extends Duplex {
  readonly #ws: WebSocket;
  #seenPortPrefix = { data: false, error: false };
  #errorText = '';

  constructor(ws: WebSocket, port: number) {
    super({ allowHalfOpen: false, writableHighWaterMark: 256 * 1024, readableHighWaterMark: 256 * 1024 });
    this.#ws = ws;
    // The kubelet's own WebSocket endpoint opens each channel with the port number (2 bytes, little
    // endian); the API server's WebSocket-to-SPDY translation (1.31+) does not. Accept both.
    const isPortPrefix = (b: Buffer): boolean => b.length === 2 && b.readUInt16LE(0) === port;
    ws.on('message', (msg: Buffer) => {
      if (msg.length === 0) return;
      const channel = msg[0];
      const payload = msg.subarray(1);
      if (channel === DATA) {
        if (!this.#seenPortPrefix.data) { this.#seenPortPrefix.data = true; if (isPortPrefix(payload)) return; }
        if (payload.length > 0 && !this.push(payload)) ws.pause();
      } else if (channel === ERROR) {
        if (!this.#seenPortPrefix.error) { this.#seenPortPrefix.error = true; if (isPortPrefix(payload)) return; }
        this.#errorText += payload.toString();
        if (this.#errorText) this.destroy(new Error(`port-forward: ${this.#errorText.trim()}`));
      }
    });
    ws.on('close', () => { this.push(null); if (!this.destroyed) this.destroy(); });
    ws.on('error', (e) => this.destroy(e));
  }

  override _read(): void {
    this.#ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) { cb(new Error('port-forward closed')); return; }
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = DATA;
    chunk.copy(frame, 1);
    // The callback fires once the frame is handed to the socket: natural backpressure.
    this.#ws.send(frame, { binary: true }, (e) => cb(e ?? null));
  }

  // Chunks queued while a frame was in flight go out together, as one frame: fewer frames, fewer
  // TLS records and syscalls per byte.
  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) { cb(new Error('port-forward closed')); return; }
    let len = 1;
    for (const c of chunks) len += c.chunk.length;
    const frame = Buffer.allocUnsafe(len);
    frame[0] = DATA;
    let off = 1;
    for (const c of chunks) { c.chunk.copy(frame, off); off += c.chunk.length; }
    this.#ws.send(frame, { binary: true }, (e) => cb(e ?? null));
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#ws.close();
    cb();
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
    cb(e);
  }
}

/** Opens the forward and resolves once the WebSocket is open. */
export async function openPortForward(kc: KubeConfig, target: PortForwardTarget, timeoutMs = 15_000): Promise<Duplex> {
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
  await kc.applyToHTTPSOptions(opts);
  const ws = new WebSocket(url, ['v4.channel.k8s.io'], opts);
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
  });
  const s = new PortForwardStream(ws, target.port);
  // The socket under the WebSocket: no Nagle, or small SSH packets wait for ACKs.
  const raw = (ws as unknown as { _socket?: import('node:net').Socket })._socket;
  raw?.setNoDelay(true);
  return s;
}
