import { constants, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FLAG_FIN, FrameReader, FrameType, HeaderEncoder, controlStreamId, dataHeader, ping, synStream, type ControlFrame } from '../../../../plugins/tunnel/spdy.ts';

function rawHeaders(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  parts.push(u32(Object.keys(h).length));
  for (const [k, v] of Object.entries(h)) parts.push(u32(k.length), Buffer.from(k), u32(v.length), Buffer.from(v));
  return Buffer.concat(parts);
}

function collect(reader: FrameReader, pieces: Buffer[]): { data: Buffer; fins: number[]; controls: ControlFrame[] } {
  const data: Buffer[] = [];
  const fins: number[] = [];
  const controls: ControlFrame[] = [];
  for (const p of pieces) reader.push(p, { data: (_id, c) => data.push(Buffer.from(c)), fin: (id) => fins.push(id), control: (f) => controls.push(f) });
  return { data: Buffer.concat(data), fins, controls };
}

describe('SPDY header blocks', () => {
  it('form one zlib stream across frames, each block readable as soon as it arrives', () => {
    const enc = new HeaderEncoder();
    const a = { streamtype: 'error', port: '2222', requestid: '0' };
    const b = { streamtype: 'data', port: '2222', requestid: '0' };
    const first = enc.encode(a);
    const second = enc.encode(b);
    expect(first.subarray(0, 2)).toEqual(Buffer.from([0x78, 0x01])); // no preset dictionary
    expect(second[0]).toBe(0x00); // continues the stream: no second zlib header
    const opts = { finishFlush: constants.Z_SYNC_FLUSH };
    expect(inflateSync(first, opts)).toEqual(rawHeaders(a));
    expect(inflateSync(Buffer.concat([first, second]), opts)).toEqual(Buffer.concat([rawHeaders(a), rawHeaders(b)]));
  });

  it('lower-cases names, as SPDY requires', () => {
    const block = new HeaderEncoder().encode({ StreamType: 'data' });
    expect(inflateSync(block, { finishFlush: constants.Z_SYNC_FLUSH }).toString()).toContain('streamtype');
  });
});

describe('SPDY frames', () => {
  it('writes SYN_STREAM, DATA and PING frames the reader reads back', () => {
    const block = new HeaderEncoder().encode({ streamtype: 'data' });
    const wire = Buffer.concat([
      synStream(3, block),
      dataHeader(3, 5), Buffer.from('hello'),
      dataHeader(1, 0, FLAG_FIN),
      ping(Buffer.from([0, 0, 0, 2])),
    ]);
    const got = collect(new FrameReader(), [wire]);
    expect(got.data.toString()).toBe('hello');
    expect(got.fins).toEqual([1]);
    expect(got.controls.map((c) => c.type)).toEqual([FrameType.synStream, FrameType.ping]);
    expect(controlStreamId(got.controls[0]!)).toBe(3);
    expect(got.controls[0]!.payload.subarray(10)).toEqual(block);
    expect(wire.readUInt16BE(0)).toBe(0x8003); // control bit and version 3
  });

  it('reads the same frames from a stream cut at every possible point', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const wire = Buffer.concat([
      dataHeader(3, payload.length), payload,
      synStream(5, new HeaderEncoder().encode({ a: 'b' })),
      dataHeader(3, 3, FLAG_FIN), Buffer.from('end'),
    ]);
    for (let size = 1; size <= 17; size++) {
      const pieces: Buffer[] = [];
      for (let off = 0; off < wire.length; off += size) pieces.push(wire.subarray(off, off + size));
      const got = collect(new FrameReader(), pieces);
      expect(got.data).toEqual(Buffer.concat([payload, Buffer.from('end')]));
      expect(got.fins).toEqual([3]);
      expect(got.controls).toHaveLength(1);
      expect(controlStreamId(got.controls[0]!)).toBe(5);
    }
  });

  it('passes DATA payload on without copying it', () => {
    const wire = Buffer.concat([dataHeader(3, 4), Buffer.from('abcd')]);
    let seen: Buffer | undefined;
    new FrameReader().push(wire, { data: (_id, c) => { seen = c; }, fin: () => {}, control: () => {} });
    expect(seen!.buffer).toBe(wire.buffer);
  });

  it('refuses frames too long for the 24-bit length', () => {
    expect(() => dataHeader(3, 0x1000000)).toThrow(/too large/);
  });
});
