// SOCKS5 UDP ASSOCIATE: kt's proxy with UDP flows through kt's Tunnel to the shadow in-process on
// loopback, driven by the `socks` package's client (handshake, UDP frames) and by raw datagrams
// for what a good client never sends (fragments, a stranger's datagram).
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { SocksClient, type SocksRemoteHost } from 'socks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startProxy } from '../../../../../plugins/connect/socks/socks-proxy.ts';
import type { Proxy } from '../../../../../plugins/connect/socks/socks-proxy.ts';
import { parseSocksUdp, socksUdpHeader } from '../../../../../plugins/connect/socks/udp-associate.ts';
import { ECHO_NAME, startUdpLoopback, waitFor } from '../../../shadow/udp/loopback.ts';
import type { UdpLoopback } from '../../../shadow/udp/loopback.ts';

let world: UdpLoopback;
let proxy: Proxy;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  world = await startUdpLoopback();
  proxy = await startProxy({ port: 0, dial: world.tunnel.dial, udp: { tunnel: world.tunnel, idleMs: 1000 } });
});

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

afterAll(async () => {
  await proxy?.close();
  await world?.close();
});

interface Client { socket: UdpSocket; control: Socket; relay: { host: string; port: number } }

async function associate(p: Proxy = proxy): Promise<Client> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  // createConnection() takes only CONNECT; an associate goes through the client and its event.
  const client = new SocksClient({
    command: 'associate',
    proxy: { host: '127.0.0.1', port: p.port, type: 5 },
    destination: { host: '127.0.0.1', port: socket.address().port },
  });
  const { socket: control, remoteHost } = await new Promise<{ socket: Socket; remoteHost?: SocksRemoteHost }>((resolve, reject) => {
    client.once('established', resolve);
    client.once('error', reject);
    client.connect();
  });
  cleanups.push(() => { control.destroy(); socket.close(); });
  return { socket, control, relay: remoteHost! };
}

function sendVia(c: Client, host: string, port: number, data: Buffer): void {
  c.socket.send(SocksClient.createUDPFrame({ remoteHost: { host, port }, data }), c.relay.port, c.relay.host);
}

/** Sends count numbered datagrams, at most window unanswered; resolves with the distinct echoes. */
function exchange(c: Client, host: string, port: number, count: number, window: number): Promise<{ answered: number; from: Set<string> }> {
  return new Promise((resolve, reject) => {
    const seen = new Set<number>();
    const from = new Set<string>();
    let next = 0;
    const timer = setTimeout(() => reject(new Error(`only ${seen.size} of ${count} echoed`)), 20_000);
    const payload = (i: number): Buffer => Buffer.from(`n ${i} `.padEnd(100, 'y'));
    const pump = (): void => {
      while (next < count && next - seen.size < window) sendVia(c, host, port, payload(next++));
    };
    c.socket.on('message', (msg) => {
      const frame = SocksClient.parseUDPFrame(msg);
      from.add(`${frame.remoteHost.host}:${frame.remoteHost.port}`);
      const i = Number(/^n (\d+) /.exec(frame.data.toString())?.[1]);
      if (frame.data.equals(payload(i))) seen.add(i);
      if (seen.size === count) { clearTimeout(timer); resolve({ answered: count, from }); } else pump();
    });
    pump();
  });
}

describe('SOCKS5 UDP ASSOCIATE', () => {
  it('answers with a relay on loopback and carries 1,000 datagrams to an address, none lost', async () => {
    const c = await associate();
    expect(c.relay.host).toBe('127.0.0.1');
    const { answered, from } = await exchange(c, '127.0.0.1', world.echoPort, 1000, 32);
    expect(answered).toBe(1000);
    expect([...from]).toEqual([`127.0.0.1:${world.echoPort}`]);
    expect(proxy.stats().udp).toMatchObject({ associations: 1, flows: 1, dropped: 0 });
  });

  it('resolves a name in the cluster and answers with the name as the client wrote it', async () => {
    const c = await associate();
    const { answered, from } = await exchange(c, ECHO_NAME, world.echoPort, 200, 16);
    expect(answered).toBe(200);
    expect([...from]).toEqual([`${ECHO_NAME}:${world.echoPort}`]);
  });

  it('drops fragments, malformed headers and datagrams from another port than the client named', async () => {
    const c = await associate();
    const before = proxy.stats().udp.dropped;
    const got: Buffer[] = [];
    c.socket.on('message', (m) => got.push(m));
    const fragment = Buffer.concat([socksUdpHeader('127.0.0.1', world.echoPort, 1), Buffer.from('frag')]);
    fragment[2] = 1;
    c.socket.send(fragment, c.relay.port, c.relay.host);
    c.socket.send(Buffer.from([0, 0, 0, 9, 1, 2]), c.relay.port, c.relay.host);
    const stranger = createSocket('udp4');
    cleanups.push(() => stranger.close());
    stranger.send(Buffer.concat([socksUdpHeader('127.0.0.1', world.echoPort, 1), Buffer.from('stranger')]), c.relay.port, c.relay.host);
    await waitFor('three drops', () => proxy.stats().udp.dropped === before + 3);
    sendVia(c, '127.0.0.1', world.echoPort, Buffer.from('whole'));
    await waitFor('the whole one echoed', () => got.length === 1);
    expect(parseSocksUdp(got[0]!)?.payload.toString()).toBe('whole');
  });

  it('closes the relay and the flows when the control connection closes', async () => {
    const c = await associate();
    await exchange(c, '127.0.0.1', world.echoPort, 10, 4);
    const openAtShadow = world.shadow.udpStats()!.open;
    expect(openAtShadow).toBeGreaterThan(0);
    c.control.destroy();
    await waitFor('the association ends', () => proxy.stats().udp.associations === 0);
    await waitFor('the shadow closes the flow', () => world.shadow.udpStats()!.open === openAtShadow - 1);
    const got: Buffer[] = [];
    c.socket.on('message', (m) => got.push(m));
    sendVia(c, '127.0.0.1', world.echoPort, Buffer.from('after'));
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
  });

  it('expires an idle flow (idle 1 s here) and opens a fresh one on the next datagram', async () => {
    const c = await associate();
    const before = proxy.stats().udp;
    await exchange(c, '127.0.0.1', world.echoPort, 5, 5);
    await waitFor('the flow expires', () => proxy.stats().udp.flowsExpired === before.flowsExpired + 1, 5000);
    expect(proxy.stats().udp.flows).toBe(before.flows);
    c.socket.removeAllListeners('message');
    const { answered } = await exchange(c, '127.0.0.1', world.echoPort, 5, 5);
    expect(answered).toBe(5);
    expect(proxy.stats().udp.flowsOpened).toBe(before.flowsOpened + 2);
  });

  it('a name the cluster does not know: the datagram is dropped, the association stays', async () => {
    const c = await associate();
    const failed = proxy.stats().udp.flowsFailed;
    sendVia(c, 'no-such-service', 9, Buffer.from('x'));
    await waitFor('the flow fails', () => proxy.stats().udp.flowsFailed === failed + 1);
    const { answered } = await exchange(c, '127.0.0.1', world.echoPort, 3, 3);
    expect(answered).toBe(3);
  });

  it('a proxy without UDP flows answers "command not supported"', async () => {
    const plain = await startProxy({ port: 0, dial: world.tunnel.dial });
    cleanups.push(() => void plain.close());
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(plain.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 2 && all.length === 2) s.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
        if (all.length >= 4) { s.destroy(); resolve(all.subarray(2)); }
      });
      s.on('error', reject);
      s.write(Buffer.from([5, 1, 0]));
    });
    expect(reply[1]).toBe(0x07);
  });
});
