// Datagrams on an SSH channel (SHADOW_UDP): each one a 2-byte big-endian length and its payload.
// A channel is a byte stream, so frames arrive split across chunks or several in one chunk; the
// decoder reassembles them. Both ends of a UDP flow (laptop and shadow) run this.
import type { Writable } from 'node:stream';
import { SHADOW_UDP } from '../contract/index.ts';

export class DatagramTooLargeError extends Error {
  readonly size: number;
  readonly max: number;

  constructor(size: number, max: number = SHADOW_UDP.maxDatagram) {
    super(`a UDP datagram of ${size} bytes is larger than ${max} bytes`);
    this.size = size;
    this.max = max;
  }
}

/** One frame for `payload`; throws DatagramTooLargeError past maxDatagram. */
export function encodeDatagram(payload: Buffer, max: number = SHADOW_UDP.maxDatagram): Buffer {
  if (payload.length > max) throw new DatagramTooLargeError(payload.length, max);
  const frame = Buffer.allocUnsafe(SHADOW_UDP.lengthBytes + payload.length);
  frame.writeUInt16BE(payload.length, 0);
  payload.copy(frame, SHADOW_UDP.lengthBytes);
  return frame;
}

/**
 * Reassembles frames from chunks. push() returns the complete datagrams so far (zero-length ones
 * included: UDP allows them) and throws DatagramTooLargeError on a length past max, after which
 * the stream is out of step and the flow must end.
 */
export class DatagramDecoder {
  readonly #max: number;
  #pending: Buffer = Buffer.alloc(0);

  constructor(max: number = SHADOW_UDP.maxDatagram) {
    this.#max = max;
  }

  /** Bytes held for a frame not yet complete (at most lengthBytes + max - 1). */
  get buffered(): number {
    return this.#pending.length;
  }

  push(chunk: Buffer): Buffer[] {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    while (data.length - at >= SHADOW_UDP.lengthBytes) {
      const size = data.readUInt16BE(at);
      if (size > this.#max) throw new DatagramTooLargeError(size, this.#max);
      if (data.length - at - SHADOW_UDP.lengthBytes < size) break;
      const start = at + SHADOW_UDP.lengthBytes;
      // A copy: the chunk's memory is reused by whoever hands it on, and a kept payload must not
      // pin a large chunk.
      out.push(Buffer.from(data.subarray(start, start + size)));
      at = start + size;
    }
    this.#pending = at === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
    return out;
  }
}

/**
 * Writes one framed datagram unless the stream already holds maxQueued bytes: a backed-up flow
 * drops datagrams (UDP may) instead of growing without bound. Returns whether it was written.
 */
export function writeDatagram(stream: Writable, payload: Buffer, maxQueued: number = SHADOW_UDP.maxQueuedBytes): boolean {
  if (stream.writableLength + SHADOW_UDP.lengthBytes + payload.length > maxQueued) return false;
  stream.write(encodeDatagram(payload));
  return true;
}
