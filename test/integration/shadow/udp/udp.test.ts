// UDP over the tunnel: kt's own Tunnel and UDP API against the shadow in-process on loopback, a
// UDP echo server on 127.0.0.1 standing in for a Service, a fake upstream DNS server for names.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SHADOW_UDP } from '../../../../contract/index.ts';
import type { Tunnel } from '../../../../plugins/tunnel/tunnel.ts';
import { UdpFlowTable, openUdpFlow } from '../../../../plugins/tunnel/udp.ts';
import type { UdpEndpoint, UdpFlow } from '../../../../plugins/tunnel/udp.ts';
import { encodeDatagram } from '../../../../runtime/udp-frames.ts';
import type { ShadowHandle } from '../../../../shadow/main.ts';
import { ECHO_NAME, startUdpLoopback, waitFor } from './loopback.ts';
import type { UdpLoopback } from './loopback.ts';

let world: UdpLoopback;
let shadow: ShadowHandle;
let tunnel: Tunnel;
let echo: { port: number };
const flows: UdpFlow[] = [];

beforeAll(async () => {
  world = await startUdpLoopback();
  ({ shadow, tunnel } = world);
  echo = { port: world.echoPort };
});

afterEach(() => {
  for (const f of flows.splice(0)) f.close();
});

afterAll(async () => {
  await world?.close();
});

/** The shadow learns of a closed flow a moment after the laptop: retry an open refused meanwhile. */
async function waitForOpen(open: () => Promise<UdpFlow>): Promise<UdpFlow> {
  for (let i = 0; ; i++) {
    try {
      return await open();
    } catch (e) {
      if (i >= 50 || !/too many UDP flows/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function open(host: string, port: number, idleMs?: number): Promise<UdpFlow> {
  const flow = await openUdpFlow(tunnel, host, port, idleMs === undefined ? {} : { idleMs });
  flows.push(flow);
  return flow;
}

/**
 * Sends `count` numbered datagrams with at most `window` unanswered, each answer checked against
 * what was sent; resolves with how many came back before the deadline.
 */
function exchange(flow: UdpFlow, count: number, window: number, deadlineMs: number): Promise<{ answered: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const seen = new Set<number>();
    let next = 0;
    const payload = (i: number): Buffer => Buffer.from(`datagram ${i} `.padEnd(64, 'x'));
    const pump = (): void => {
      while (next < count && next - seen.size < window) flow.send(payload(next++));
    };
    const finish = (): void => { clearTimeout(timer); resolve({ answered: seen.size, ms: performance.now() - t0 }); };
    const timer = setTimeout(finish, deadlineMs);
    flow.onMessage((reply) => {
      const i = Number(/^datagram (\d+) /.exec(reply.toString())?.[1]);
      if (reply.equals(payload(i))) seen.add(i);
      if (seen.size === count) finish();
      else pump();
    });
    pump();
  });
}

describe('UDP flows through the shadow', () => {
  it('carries 1,000 datagrams to an address and back, none lost', async () => {
    const flow = await open('127.0.0.1', echo.port);
    const { answered } = await exchange(flow, 1000, 50, 20_000);
    expect(answered).toBe(1000);
    expect(flow.dropped).toBe(0);
  });

  it('resolves a name with the shadow resolver (search list included)', async () => {
    const flow = await open(ECHO_NAME, echo.port);
    const { answered } = await exchange(flow, 100, 20, 10_000);
    expect(answered).toBe(100);
  });

  it('carries zero-length and maximum-size datagrams', async () => {
    const flow = await open('127.0.0.1', echo.port);
    const got: Buffer[] = [];
    flow.onMessage((d) => got.push(d));
    flow.send(Buffer.alloc(0));
    flow.send(Buffer.alloc(SHADOW_UDP.maxDatagram, 9));
    await waitFor('both echoes', () => got.length === 2);
    expect(got.map((d) => d.length).sort((a, b) => a - b)).toEqual([0, SHADOW_UDP.maxDatagram]);
    flow.send(Buffer.alloc(SHADOW_UDP.maxDatagram + 1));
    expect(flow.dropped).toBe(1);
  });

  it('fails to open with the reason: a name the cluster does not know, a bad port', async () => {
    await expect(openUdpFlow(tunnel, 'nope', 53)).rejects.toThrow(/cannot send UDP to nope:53 through the cluster: .*(ENOTFOUND|not found|NXDOMAIN)/i);
    await expect(openUdpFlow(tunnel, '127.0.0.1', 0)).rejects.toThrow(/port must be 1-65535/);
    const raw = await tunnel.exec(`${SHADOW_UDP.command} 127.0.0.1 0 1000`);
    const status = await new Promise<{ line: string; code: number | undefined }>((resolve) => {
      let line = '';
      raw.stderr.on('data', (d: Buffer) => { line += d.toString(); });
      // The exit status may arrive with the exec's reply, before a listener: 'close' repeats it.
      raw.on('close', (code: number | undefined) => resolve({ line, code }));
      raw.resume();
    });
    expect(status).toEqual({ line: 'bad port 0\n', code: 1 });
  });

  it('expires an idle flow on the laptop side, and the shadow closes its socket', async () => {
    const before = shadow.udpStats()!;
    const flow = await openUdpFlow(tunnel, '127.0.0.1', echo.port, { idleMs: 1000 });
    expect(shadow.udpStats()!.open).toBe(before.open + 1);
    const t0 = Date.now();
    await flow.closed;
    expect(flow.closeReason).toBe('idle');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await waitFor('the shadow closes the flow', () => shadow.udpStats()!.open === before.open);
  });

  it('the shadow expires a flow the laptop keeps open but idle (idleMs + grace)', async () => {
    const before = shadow.udpStats()!;
    const raw = await tunnel.exec(`${SHADOW_UDP.command} 127.0.0.1 ${echo.port} 1000`);
    const t0 = Date.now();
    const code = await new Promise<number>((resolve) => raw.on('close', resolve).resume());
    const took = Date.now() - t0;
    expect(code).toBe(0);
    expect(took).toBeGreaterThanOrEqual(1000 + SHADOW_UDP.idleGraceMs - 200);
    expect(shadow.udpStats()!.expired).toBe(before.expired + 1);
  }, 15_000);

  it('ends a flow whose frame is longer than the maximum', async () => {
    const raw = await tunnel.exec(`${SHADOW_UDP.command} 127.0.0.1 ${echo.port} 60000`);
    await new Promise((resolve) => raw.stderr.once('data', resolve));
    raw.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
    const code = await new Promise<number>((resolve) => raw.on('close', resolve).resume());
    expect(code).toBe(1);
  });

  it('drops and counts datagrams sent faster than the channel takes them, with memory bounded', async () => {
    const flow = await open('127.0.0.1', echo.port);
    const big = Buffer.alloc(60_000, 1);
    for (let i = 0; i < 2000; i++) flow.send(big); // 120 MB at once: more than the SSH window
    expect(flow.dropped).toBeGreaterThan(0);
    expect(flow.dropped).toBeLessThan(2000);
  });

  it('UdpFlowTable: one flow per (source, destination), replies to their source, expiry empties it', async () => {
    const replies: { payload: string; source: UdpEndpoint }[] = [];
    const closes: string[] = [];
    const table = new UdpFlowTable(tunnel, {
      idleMs: 1000,
      onReply: (payload, source) => replies.push({ payload: payload.toString(), source }),
      onClose: (reason) => closes.push(reason),
    });
    const dst = { host: '127.0.0.1', port: echo.port };
    const a = { host: '127.0.0.1', port: 40001 };
    const b = { host: '127.0.0.1', port: 40002 };
    table.send(a, dst, Buffer.from('a1'));
    table.send(a, dst, Buffer.from('a2')); // queued while the flow opens
    table.send(b, dst, Buffer.from('b1'));
    expect(table.size).toBe(2);
    await waitFor('three replies', () => replies.length === 3);
    expect(replies.filter((r) => r.source.port === a.port).map((r) => r.payload).sort()).toEqual(['a1', 'a2']);
    expect(replies.filter((r) => r.source.port === b.port).map((r) => r.payload)).toEqual(['b1']);
    table.send({ host: '127.0.0.1', port: 40003 }, { host: 'nope', port: 9 }, Buffer.from('x'));
    await waitFor('the flows expire', () => table.size === 0, 5000);
    expect(closes).toEqual(['idle', 'idle']);
    expect(table.stats()).toMatchObject({ open: 0, opened: 2, expired: 2, failed: 1, dropped: 1 });
    await table.close();
  });

  it('the shadow reports its flows on the health port', async () => {
    const res = await fetch(`http://127.0.0.1:${shadow.ports.health}${SHADOW_UDP.statsPath}`);
    const stats = (await res.json()) as Record<string, number>;
    expect(res.status).toBe(200);
    expect(Object.keys(stats).sort()).toEqual(['datagrams', 'dropped', 'expired', 'failed', 'open', 'opened']);
    expect(stats.opened).toBeGreaterThan(0);
  });

  it('flows that fail or are refused give their channel back (a shadow allowing 3 channels)', async () => {
    const small = await startUdpLoopback({ ssh: { maxChannels: 3 } });
    try {
      for (let i = 0; i < 5; i++) {
        await expect(openUdpFlow(small.tunnel, 'nope', 53)).rejects.toThrow(/through the cluster/);
        const raw = await small.tunnel.exec(`${SHADOW_UDP.command} 127.0.0.1 0 1000`);
        await new Promise((resolve) => raw.on('close', resolve).resume());
      }
      const flow = await openUdpFlow(small.tunnel, '127.0.0.1', small.echoPort);
      const got = new Promise<Buffer>((resolve) => flow.onMessage(resolve));
      flow.send(Buffer.from('still room'));
      expect((await got).toString()).toBe('still room');
      flow.close();
    } finally {
      await small.close();
    }
  });

  it('refuses flows past its UDP flow limit per connection, and takes new ones as flows close', async () => {
    const small = await startUdpLoopback({ ssh: { maxUdpFlows: 2 } });
    try {
      const a = await openUdpFlow(small.tunnel, '127.0.0.1', small.echoPort);
      const b = await openUdpFlow(small.tunnel, '127.0.0.1', small.echoPort);
      await expect(openUdpFlow(small.tunnel, '127.0.0.1', small.echoPort)).rejects.toThrow(/through the cluster: too many UDP flows \(at most 2\)/);
      a.close();
      await a.closed;
      const c = await waitForOpen(() => openUdpFlow(small.tunnel, '127.0.0.1', small.echoPort));
      b.close();
      c.close();
      // TCP still has its channels.
      const tcp = await small.tunnel.dial('127.0.0.1', small.shadow.ports.health);
      tcp.destroy();
    } finally {
      await small.close();
    }
  });

  it('encodes what it sends as the contract says', () => {
    expect(encodeDatagram(Buffer.from('x')).readUInt16BE(0)).toBe(1);
  });
});
