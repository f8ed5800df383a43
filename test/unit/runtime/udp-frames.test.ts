import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SHADOW_UDP } from '../../../contract/index.ts';
import { DatagramDecoder, DatagramTooLargeError, encodeDatagram, writeDatagram } from '../../../runtime/udp-frames.ts';

const datagrams = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(1500, 7), Buffer.from([0, 1, 2])];

describe('UDP datagram framing', () => {
  it('frames a datagram as a 2-byte big-endian length and the payload', () => {
    expect(encodeDatagram(Buffer.from('hi'))).toEqual(Buffer.from([0, 2, 0x68, 0x69]));
    expect(encodeDatagram(Buffer.alloc(0))).toEqual(Buffer.from([0, 0]));
    expect(encodeDatagram(Buffer.alloc(300)).readUInt16BE(0)).toBe(300);
  });

  it('decodes frames merged into one chunk', () => {
    const decoder = new DatagramDecoder();
    expect(decoder.push(Buffer.concat(datagrams.map((d) => encodeDatagram(d))))).toEqual(datagrams);
    expect(decoder.buffered).toBe(0);
  });

  it('decodes frames split at every byte', () => {
    const stream = Buffer.concat(datagrams.map((d) => encodeDatagram(d)));
    const decoder = new DatagramDecoder();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...decoder.push(stream.subarray(i, i + 1)));
    expect(out).toEqual(datagrams);
    expect(decoder.buffered).toBe(0);
  });

  it('decodes frames split across chunk boundaries at random', () => {
    const stream = Buffer.concat(datagrams.concat(datagrams).map((d) => encodeDatagram(d)));
    for (let seed = 1; seed <= 50; seed++) {
      const decoder = new DatagramDecoder();
      const out: Buffer[] = [];
      let at = 0;
      let x = seed;
      while (at < stream.length) {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        const n = 1 + (x % 700);
        out.push(...decoder.push(stream.subarray(at, at + n)));
        at += n;
      }
      expect(out).toEqual(datagrams.concat(datagrams));
    }
  });

  it('copies payloads out of the chunk (the chunk may be reused)', () => {
    const chunk = encodeDatagram(Buffer.from('abc'));
    const [d] = new DatagramDecoder().push(chunk);
    chunk.fill(0);
    expect(d?.toString()).toBe('abc');
  });

  it('refuses to encode a datagram over the maximum, and accepts one of exactly the maximum', () => {
    expect(() => encodeDatagram(Buffer.alloc(SHADOW_UDP.maxDatagram + 1))).toThrow(DatagramTooLargeError);
    expect(encodeDatagram(Buffer.alloc(SHADOW_UDP.maxDatagram)).length).toBe(SHADOW_UDP.maxDatagram + 2);
  });

  it('throws on a frame length over the maximum as soon as the length arrives', () => {
    const decoder = new DatagramDecoder();
    expect(() => decoder.push(Buffer.from([0xff, 0xff]))).toThrow(/65535 bytes is larger than 65507/);
    expect(() => new DatagramDecoder(100).push(Buffer.from([0, 101]))).toThrow(DatagramTooLargeError);
  });

  it('writes until maxQueued bytes wait on the stream, then refuses (the caller drops and counts)', () => {
    const stream = new PassThrough({ highWaterMark: 1 });
    stream.pause();
    let written = 0;
    for (let i = 0; i < 100; i++) if (writeDatagram(stream, Buffer.alloc(998), 10_000)) written++;
    expect(written).toBe(10);
    expect(stream.writableLength).toBeLessThanOrEqual(10_000);
  });
});
