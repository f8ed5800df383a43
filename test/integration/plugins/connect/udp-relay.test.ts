// The UDP relay on loopback: real sockets, fake flows (a flow echoes what it is sent, prefixed with
// where it goes, and ends itself after its idle time as the tunnel's flows do).
import { once } from 'node:events';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startUdpRelay, type UdpRelay } from '../../../../plugins/connect/udp-relay.ts';
import { fakeFlows, noTunnel } from './udp-fakes.ts';

const log = { debug: () => {}, warn: () => {} };

async function bound(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

/** Sends each payload from `client` and collects as many replies with their sender. */
async function exchange(client: Socket, port: number, payloads: string[]): Promise<{ text: string; from: string }[]> {
  const replies: { text: string; from: string }[] = [];
  const done = new Promise<void>((resolve) => {
    client.on('message', (m, r) => {
      replies.push({ text: m.toString(), from: `${r.address}:${r.port}` });
      if (replies.length === payloads.length) resolve();
    });
  });
  for (const p of payloads) client.send(p, port, '127.0.0.1');
  await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  return replies;
}

describe('UDP relay', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });
  const track = (relay: UdpRelay, ...sockets: Socket[]): void => {
    cleanup.push(() => relay.close(), ...sockets.map((s) => () => void s.close()));
  };

  it('sends a fixed destination\'s replies back from the relay socket, one flow per sender', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    const relay = startUdpRelay({ socket, tunnel: noTunnel, open: flows.open, destination: { host: 'echo.dev.svc.cluster.local', port: 5353 }, log, label: 't' });
    const a = await bound();
    const b = await bound();
    track(relay, a, b);
    const ra = await exchange(a, relay.port, ['1', '2', '3']);
    const rb = await exchange(b, relay.port, ['x']);
    expect(ra.map((r) => r.text)).toEqual(['echo.dev.svc.cluster.local:5353|1', 'echo.dev.svc.cluster.local:5353|2', 'echo.dev.svc.cluster.local:5353|3']);
    expect(rb.map((r) => r.text)).toEqual(['echo.dev.svc.cluster.local:5353|x']);
    expect(new Set([...ra, ...rb].map((r) => r.from))).toEqual(new Set([`127.0.0.1:${relay.port}`]));
    expect(flows.opened).toHaveLength(2);
    expect(relay.stats()).toMatchObject({ received: 4, replied: 4, opened: 2, open: 2, dropped: 0 });
  });

  it('looks a sender\'s destination up once, keeping the order of what arrives meanwhile', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    let lookups = 0;
    const relay = startUdpRelay({
      socket, tunnel: noTunnel, open: flows.open, log, label: 't',
      destination: async () => { lookups++; await new Promise((r) => setTimeout(r, 50)); return { host: '10.96.0.7', port: 9000 }; },
    });
    const a = await bound();
    track(relay, a);
    const payloads = Array.from({ length: 20 }, (_, i) => String(i));
    const replies = await exchange(a, relay.port, payloads);
    expect(replies.map((r) => r.text)).toEqual(payloads.map((p) => `10.96.0.7:9000|${p}`));
    expect(lookups).toBe(1);
  });

  it('drops and counts the datagrams of a sender without a destination', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    const relay = startUdpRelay({ socket, tunnel: noTunnel, open: flows.open, log, label: 't', destination: () => Promise.reject(new Error('no conntrack entry')) });
    const a = await bound();
    track(relay, a);
    a.send('lost', relay.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    expect(relay.stats()).toMatchObject({ received: 1, replied: 0, dropped: 1, opened: 0 });
  });

  it('looks again after a sender was quiet, and follows a new destination', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    let t = 0;
    const dests = [{ host: '10.96.0.7', port: 9000 }, { host: '10.96.0.8', port: 9001 }];
    let lookups = 0;
    const relay = startUdpRelay({
      socket, tunnel: noTunnel, open: flows.open, log, label: 't', now: () => t, recheckMs: 1000,
      destination: () => Promise.resolve(dests[Math.min(lookups++, 1)]!),
    });
    const a = await bound();
    track(relay, a);
    expect((await exchange(a, relay.port, ['1'])).map((r) => r.text)).toEqual(['10.96.0.7:9000|1']);
    a.removeAllListeners('message');
    t = 500;
    expect((await exchange(a, relay.port, ['2'])).map((r) => r.text)).toEqual(['10.96.0.7:9000|2']);
    a.removeAllListeners('message');
    t = 2000;
    expect((await exchange(a, relay.port, ['3'])).map((r) => r.text)).toEqual(['10.96.0.8:9001|3']);
    expect(lookups).toBe(2);
  });

  it('lets idle flows expire, and opens a new one for the next datagram', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    const relay = startUdpRelay({ socket, tunnel: noTunnel, open: flows.open, idleMs: 100, destination: { host: 'svc', port: 1 }, log, label: 't' });
    const a = await bound();
    track(relay, a);
    await exchange(a, relay.port, ['1']);
    expect(relay.stats()).toMatchObject({ open: 1, expired: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.stats()).toMatchObject({ open: 0, expired: 1 });
    a.removeAllListeners('message');
    expect((await exchange(a, relay.port, ['2'])).map((r) => r.text)).toEqual(['svc:1|2']);
    expect(relay.stats()).toMatchObject({ opened: 2, open: 1 });
  });

  it('close() closes its flows and frees the port', async () => {
    const flows = fakeFlows();
    const socket = await bound();
    const relay = startUdpRelay({ socket, tunnel: noTunnel, open: flows.open, destination: { host: 'svc', port: 1 }, log, label: 't' });
    const port = relay.port;
    const a = await bound();
    cleanup.push(() => void a.close());
    await exchange(a, port, ['1']);
    await relay.close();
    await relay.close();
    expect(relay.stats().open).toBe(0);
    const again = createSocket('udp4');
    again.bind(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  });
});
