import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { batchWritesPerTick } from '../../../runtime/ssh-writes.ts';

describe('batchWritesPerTick', () => {
  it('hands the writes of one tick to the transport as one batch, in order', async () => {
    const batches: string[][] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) { batches.push([chunk.toString()]); cb(); },
      writev(chunks, cb) { batches.push(chunks.map((c) => (c.chunk as Buffer).toString())); cb(); },
    });
    batchWritesPerTick(sink);
    sink.write('len');
    sink.write('ciphertext');
    sink.write('tag');
    await new Promise((r) => setImmediate(r));
    sink.write('next');
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([['len', 'ciphertext', 'tag'], ['next']]);
  });

  it('leaves a destroyed transport alone', async () => {
    const sink = new Writable({ write(_c, _e, cb) { cb(); } });
    sink.on('error', () => {});
    batchWritesPerTick(sink);
    sink.destroy();
    expect(() => sink.write('x')).not.toThrow();
    await new Promise((r) => setImmediate(r));
  });
});
