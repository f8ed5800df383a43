// openUdpFlow against a fake channel: the status line, framing both ways, drops, close reasons.
import { Duplex, PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { SHADOW_UDP } from '../../../../contract/index.ts';
import { openUdpFlow } from '../../../../plugins/tunnel/udp.ts';
import { DatagramDecoder, encodeDatagram } from '../../../../runtime/udp-frames.ts';

/** A session channel as ssh2 gives it: data both ways, stderr apart, 'close' with the exit code. */
class FakeChannel extends Duplex {
  readonly stderr = new PassThrough();
  readonly sent: Buffer[] = [];
  readonly #decoder = new DatagramDecoder();
  /** While true, writes are never acknowledged (a channel whose window is used up). */
  stalled = false;
  closedByUs = false;

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sent.push(...this.#decoder.push(chunk));
    if (!this.stalled) cb();
  }

  close(): void {
    this.closedByUs = true;
    this.finishRemote(undefined);
  }

  /** The shadow ends the flow with an exit status. */
  finishRemote(code: number | undefined): void {
    this.stderr.end();
    this.push(null);
    // As in ssh2, 'close' waits for the data side's end, which comes only to a reader.
    this.once('end', () => this.emit('close', code));
  }
}

function tunnelWith(channel: FakeChannel, commands: string[] = []): { exec(command: string): Promise<ClientChannel> } {
  return {
    exec: (command) => {
      commands.push(command);
      return Promise.resolve(channel as unknown as ClientChannel);
    },
  };
}

describe('openUdpFlow', () => {
  it('asks for kt-udp with host, port and idle expiry, and opens on the status line ok', async () => {
    const ch = new FakeChannel();
    const commands: string[] = [];
    const opening = openUdpFlow(tunnelWith(ch, commands), 'echo.dev', 7070, { idleMs: 5000 });
    await Promise.resolve();
    ch.stderr.write('o');
    ch.stderr.write('k\n');
    const flow = await opening;
    expect(commands).toEqual(['kt-udp echo.dev 7070 5000']);
    flow.send(Buffer.from('a'));
    flow.send(Buffer.alloc(0));
    expect(ch.sent.map((d) => d.toString())).toEqual(['a', '']);
    const got: string[] = [];
    flow.onMessage((d) => got.push(d.toString()));
    const frames = Buffer.concat([encodeDatagram(Buffer.from('x')), encodeDatagram(Buffer.from('yz'))]);
    ch.push(frames.subarray(0, 4));
    ch.push(frames.subarray(4));
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual(['x', 'yz']);
    flow.close();
    await flow.closed;
    expect(flow.closeReason).toBe('closed');
    expect(ch.closedByUs).toBe(true);
  });

  it('rejects with the reason the shadow gives', async () => {
    const ch = new FakeChannel();
    const opening = openUdpFlow(tunnelWith(ch), 'nope', 53);
    ch.stderr.write('nope: not found\n');
    await expect(opening).rejects.toThrow('cannot send UDP to nope:53 through the cluster: nope: not found');
  });

  it('rejects when the channel ends before any status line (a tunnel lost meanwhile)', async () => {
    const ch = new FakeChannel();
    const opening = openUdpFlow(tunnelWith(ch), '10.0.0.1', 53);
    ch.finishRemote(undefined);
    await expect(opening).rejects.toThrow(/closed the flow before it was ready/);
  });

  it('a shadow that predates UDP (ssh2 reports its exec refusal as "Unable to exec"): the flow fails saying so', async () => {
    const fake = { exec: () => Promise.reject(new Error('Unable to exec')) };
    await expect(openUdpFlow(fake, '127.0.0.1', 9)).rejects.toThrow('cannot send UDP to 127.0.0.1:9 through the cluster: the shadow refused it; its image may predate UDP (contract 1.1)');
  });

  it('passes on why the channel could not open (the tunnel reconnecting, say)', async () => {
    const tunnel = { exec: () => Promise.reject(new Error('the tunnel is reconnecting (port-forward closed)')) };
    await expect(openUdpFlow(tunnel, '::1', 53)).rejects.toThrow('cannot send UDP to [::1]:53 through the cluster: the tunnel is reconnecting (port-forward closed)');
  });

  it('refuses bad input before asking the shadow', async () => {
    const ch = new FakeChannel();
    const commands: string[] = [];
    await expect(openUdpFlow(tunnelWith(ch, commands), 'a b', 53)).rejects.toThrow(/not a host name/);
    await expect(openUdpFlow(tunnelWith(ch, commands), 'x', 65536)).rejects.toThrow(/1-65535/);
    await expect(openUdpFlow(tunnelWith(ch, commands), 'x', 53, { idleMs: 10 })).rejects.toThrow(/out of range/);
    expect(commands).toEqual([]);
  });

  it('drops and counts what a stalled channel cannot take, and datagrams over the maximum', async () => {
    const ch = new FakeChannel();
    const opening = openUdpFlow(tunnelWith(ch), 'x', 1);
    ch.stderr.write(`${SHADOW_UDP.ready}\n`);
    const flow = await opening;
    ch.stalled = true;
    for (let i = 0; i < 100; i++) flow.send(Buffer.alloc(10_000));
    // The first write goes to _write and is held there; the rest wait in the buffer up to the bound.
    expect(ch.writableLength).toBeLessThanOrEqual(SHADOW_UDP.maxQueuedBytes);
    const dropped = flow.dropped;
    expect(dropped).toBeGreaterThan(70);
    flow.send(Buffer.alloc(SHADOW_UDP.maxDatagram + 1));
    expect(flow.dropped).toBe(dropped + 1);
    flow.close();
    flow.send(Buffer.from('late'));
    expect(flow.dropped).toBe(dropped + 2);
  });

  it('names why the shadow ended it: exit 0 is its idle expiry, anything else is not', async () => {
    for (const [code, reason] of [[0, 'idle'], [1, 'remote'], [undefined, 'remote']] as const) {
      const ch = new FakeChannel();
      const opening = openUdpFlow(tunnelWith(ch), 'x', 1);
      ch.stderr.write('ok\n');
      const flow = await opening;
      ch.finishRemote(code);
      await flow.closed;
      expect(flow.closeReason).toBe(reason);
    }
  });

  it('closes itself after idleMs without a datagram either way', async () => {
    const ch = new FakeChannel();
    const opening = openUdpFlow(tunnelWith(ch), 'x', 1, { idleMs: SHADOW_UDP.minIdleMs });
    ch.stderr.write('ok\n');
    const flow = await opening;
    const t0 = Date.now();
    setTimeout(() => flow.send(Buffer.from('keep')), 600);
    await flow.closed;
    expect(flow.closeReason).toBe('idle');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
  });
});
