// Hosts mode's UDP ports on loopback: a Service's UDP port gets a socket on its loopback address,
// datagrams go through (fake) flows to the Service's FQDN, replies come from the address and port
// the program sent to; ports that go away and close() free their sockets. Linux only, as the rest
// of hosts mode's loopback tests.
import { once } from 'node:events';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoopbackAllocator, startHostsMode, type HostsService } from '../../../../../plugins/connect/hosts/hosts-mode.ts';
import type { Dialer } from '../../../../../plugins/tunnel/dialer.ts';
import { fakeFlows, noTunnel } from '../udp-fakes.ts';

const ORIGINAL = '127.0.0.1\tlocalhost\n';
const dial: Dialer = () => Promise.reject(new Error('no TCP in this test'));

async function freeUdpPort(host: string): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function ask(client: Socket, host: string, port: number, text: string): Promise<{ text: string; from: string } | undefined> {
  const reply = new Promise<{ text: string; from: string }>((resolve) => {
    client.once('message', (m, r) => resolve({ text: m.toString(), from: `${r.address}:${r.port}` }));
  });
  client.send(text, port, host);
  return Promise.race([reply, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
}

describe.runIf(process.platform === 'linux')('hosts mode UDP on loopback', () => {
  let dir: string;
  let hostsFile: string;
  let client: Socket;
  const warnings: string[] = [];
  const log = { debug: () => undefined, info: () => undefined, warn: (m: string) => void warnings.push(m) };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-hosts-udp-'));
    hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, ORIGINAL);
    client = createSocket('udp4');
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    warnings.length = 0;
  });
  afterEach(async () => {
    client.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('relays a UDP Service port on the Service\'s address; replies come from that address and port', async () => {
    const ip = '127.20.71.1';
    const udpPort = await freeUdpPort(ip);
    const flows = fakeFlows();
    const services: HostsService[] = [{ name: 'stats', namespace: 'dev', ports: [{ port: udpPort, protocol: 'UDP' }] }];
    const mode = await startHostsMode({
      services, namespace: 'dev', dial, hostsFile, sessionId: 'udp-test', log,
      allocator: createLoopbackAllocator(ip), udp: { tunnel: noTunnel, open: flows.open },
    });
    try {
      expect(mode.entries()).toMatchObject([{ name: 'stats', ip, ports: [], udpPorts: [udpPort], skippedUdpPorts: [] }]);
      expect(await ask(client, ip, udpPort, 'hello')).toEqual({ text: `stats.dev.svc.cluster.local:${udpPort}|hello`, from: `${ip}:${udpPort}` });
      expect(flows.opened).toEqual([`stats.dev.svc.cluster.local:${udpPort}`]);

      // The port leaves the Service: its socket goes.
      await mode.update([{ name: 'stats', namespace: 'dev', ports: [] }]);
      expect(mode.entries()[0]!.udpPorts).toEqual([]);
      expect(await ask(client, ip, udpPort, 'gone')).toBeUndefined();
      await mode.update(services);
      expect(mode.entries()[0]!.udpPorts).toEqual([udpPort]);
    } finally {
      await mode.close();
    }
    // Closed: the port is free again, the hosts file as it was.
    const again = createSocket('udp4');
    again.bind(udpPort, ip);
    await once(again, 'listening');
    again.close();
    expect(await readFile(hostsFile, 'utf8')).toBe(ORIGINAL);
  });

  it('skips a UDP port that is taken on that address, with one warning, and keeps the rest', async () => {
    const ip = '127.20.72.1';
    const busy = createSocket('udp4');
    busy.bind(0, ip);
    await once(busy, 'listening');
    const busyPort = busy.address().port;
    const freePort = await freeUdpPort(ip);
    const flows = fakeFlows();
    const mode = await startHostsMode({
      services: [{ name: 'dns', namespace: 'dev', ports: [{ port: busyPort, protocol: 'UDP' }, { port: freePort, protocol: 'UDP' }] }],
      namespace: 'dev', dial, hostsFile, sessionId: 'udp-test', log,
      allocator: createLoopbackAllocator(ip), udp: { tunnel: noTunnel, open: flows.open },
    });
    try {
      expect(mode.entries()).toMatchObject([{ udpPorts: [freePort], skippedUdpPorts: [busyPort] }]);
      expect(warnings).toEqual([`cannot listen on UDP ${ip}:${busyPort} for dns.dev: the port is in use on that address; skipping this port`]);
      expect((await ask(client, ip, freePort, 'q'))?.from).toBe(`${ip}:${freePort}`);
    } finally {
      await mode.close();
      busy.close();
    }
  });
});
