// The little of SPDY/3.1 a port-forward client needs: open streams, send and receive data, answer
// pings. The API server tunnels a port-forward's SPDY session inside a WebSocket (the protocol
// kubectl itself uses since 1.31); the container runtime's end (moby/spdystream) ignores SPDY flow
// control, so there is none here either. No maintained SPDY client exists for Node, and the usable
// subset is this small.

export const SPDY_VERSION = 3;

export const FrameType = {
  synStream: 1,
  synReply: 2,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goAway: 7,
  headers: 8,
  windowUpdate: 9,
} as const;

export const FLAG_FIN = 0x01;

/**
 * Header blocks are zlib-compressed with one compression context for the whole session. Sending
 * them as uncompressed ("stored") deflate blocks keeps that context trivial to carry across frames
 * and leaves nothing to tune; the receiver inflates them like any other block. The stream opens
 * with a zlib header that names no dictionary, so SPDY's preset dictionary is not needed either.
 */
const SYNC_MARK = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

export class HeaderEncoder {
  #started = false;

  encode(headers: Record<string, string>): Buffer {
    const entries = Object.entries(headers);
    const parts: Buffer[] = [u32(entries.length)];
    for (const [name, value] of entries) {
      const n = Buffer.from(name.toLowerCase());
      const v = Buffer.from(value);
      parts.push(u32(n.length), n, u32(v.length), v);
    }
    const raw = Buffer.concat(parts);
    if (raw.length > 0xffff) throw new Error('SPDY header block too large');
    const stored = Buffer.alloc(5);
    stored[0] = 0x00; // BFINAL=0, BTYPE=00 (stored), padded to the byte boundary
    stored.writeUInt16LE(raw.length, 1);
    stored.writeUInt16LE(~raw.length & 0xffff, 3);
    const zlibHeader = this.#started ? [] : [Buffer.from([0x78, 0x01])];
    this.#started = true;
    // An empty stored block after the data, as zlib's sync flush writes: it lets the receiver hand
    // out the block's bytes without reading past the frame for the next block's header.
    return Buffer.concat([...zlibHeader, stored, raw, SYNC_MARK]);
  }
}

export function synStream(streamId: number, headerBlock: Buffer, flags = 0): Buffer {
  const body = Buffer.alloc(10);
  body.writeUInt32BE(streamId & 0x7fffffff, 0);
  body.writeUInt32BE(0, 4); // associated-to stream
  body.writeUInt16BE(0, 8); // priority and slot
  return Buffer.concat([controlHeader(FrameType.synStream, flags, body.length + headerBlock.length), body, headerBlock]);
}

export function ping(payload: Buffer): Buffer {
  return Buffer.concat([controlHeader(FrameType.ping, 0, payload.length), payload]);
}

/** A DATA frame's 8-byte header; the payload follows it on the wire. */
export function dataHeader(streamId: number, length: number, flags = 0): Buffer {
  if (length > 0xffffff) throw new Error('SPDY data frame too large');
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return h;
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(8);
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return h;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** The stream id a SYN_REPLY, RST_STREAM or HEADERS frame is about. */
export function controlStreamId(frame: ControlFrame): number {
  return frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) & 0x7fffffff : 0;
}

export interface FrameHandler {
  /** A piece of a DATA frame's payload, as it arrives. */
  data(streamId: number, chunk: Buffer): void;
  /** The end of a DATA frame that carried FIN. */
  fin(streamId: number): void;
  control(frame: ControlFrame): void;
}

export interface ControlFrame { type: number; flags: number; payload: Buffer }

/**
 * Cuts a byte stream, arriving in pieces of any size, into frames. DATA payload is passed on as it
 * arrives, as views of the arriving buffers: bulk data is never copied or reassembled. Only
 * control frames (small) and split frame headers are buffered.
 */
export class FrameReader {
  #header = Buffer.alloc(8);
  #headerFill = 0;
  #dataLeft = 0;
  #dataStream = 0;
  #dataFin = false;
  #control: { type: number; flags: number; payload: Buffer; fill: number } | undefined;

  push(chunk: Buffer, on: FrameHandler): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#dataLeft > 0) {
        const n = Math.min(this.#dataLeft, chunk.length - off);
        on.data(this.#dataStream, chunk.subarray(off, off + n));
        off += n;
        this.#dataLeft -= n;
        if (this.#dataLeft === 0 && this.#dataFin) on.fin(this.#dataStream);
        continue;
      }
      if (this.#control) {
        const c = this.#control;
        const n = Math.min(c.payload.length - c.fill, chunk.length - off);
        chunk.copy(c.payload, c.fill, off, off + n);
        c.fill += n;
        off += n;
        if (c.fill === c.payload.length) { this.#control = undefined; on.control(c); }
        continue;
      }
      const n = Math.min(8 - this.#headerFill, chunk.length - off);
      chunk.copy(this.#header, this.#headerFill, off, off + n);
      this.#headerFill += n;
      off += n;
      if (this.#headerFill < 8) break;
      this.#headerFill = 0;
      const h = this.#header;
      const flags = h[4]!;
      const length = h.readUInt32BE(4) & 0xffffff;
      if (h[0]! & 0x80) {
        const frame = { type: h.readUInt16BE(2), flags, payload: Buffer.alloc(length), fill: 0 };
        if (length === 0) on.control(frame); else this.#control = frame;
      } else {
        this.#dataStream = h.readUInt32BE(0) & 0x7fffffff;
        this.#dataFin = (flags & FLAG_FIN) !== 0;
        this.#dataLeft = length;
        if (length === 0 && this.#dataFin) on.fin(this.#dataStream);
      }
    }
  }
}
