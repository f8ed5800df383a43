// The UDP tests' world on loopback: the shadow in-process (its upstream DNS a fake that knows
// udp-echo.demo.svc.cluster.local as 127.0.0.1), kt's own Tunnel to it, and a UDP echo server.
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Packet } from 'dns2';
import ssh2 from 'ssh2';
import { silentLogger } from '../../../../plugins/cli/log.ts';
import { Tunnel } from '../../../../plugins/tunnel/tunnel.ts';
import type { ShadowHandle, ShadowOptions } from '../../../../shadow/main.ts';
import { keyPair, listenDns, startLoopbackShadow, writeSessionDir } from '../fixtures.ts';

/** The name the fake upstream resolves (to 127.0.0.1); every other name is NXDOMAIN. */
export const ECHO_NAME = 'udp-echo';

export interface UdpLoopback {
  shadow: ShadowHandle;
  tunnel: Tunnel;
  /** The UDP echo's port on 127.0.0.1. */
  echoPort: number;
  close(): Promise<void>;
}

export async function startUdpLoopback(extra: Partial<ShadowOptions> = {}): Promise<UdpLoopback> {
  const hostKeys = keyPair();
  const clientKeys = keyPair();
  const parsed = ssh2.utils.parseKey(hostKeys.public);
  if (parsed instanceof Error) throw parsed;
  const upstream = await listenDns((req, send) => {
    const response = Packet.createResponseFromRequest(req);
    const q = req.questions[0];
    if (q?.name.toLowerCase() === `${ECHO_NAME}.demo.svc.cluster.local`) {
      if (q.type === Packet.TYPE.A) response.answers.push(new Packet.Resource({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address: '127.0.0.1' }));
    } else {
      response.header.rcode = Packet.RCODE.NXDOMAIN;
    }
    void send(response).catch(() => {});
  });
  const dir = mkdtempSync(join(tmpdir(), 'kt-shadow-udp-'));
  writeSessionDir(dir, hostKeys.private, clientKeys.public, upstream.port);
  const shadow = await startLoopbackShadow(dir, extra);
  const echo: UdpSocket = createSocket('udp4');
  echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
  const tunnel = new Tunnel({
    pod: { create: () => Promise.resolve({ running: Promise.resolve() }), ensure: () => Promise.resolve() },
    openStream: () =>
      new Promise<Duplex>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: shadow.ports.ssh });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      }),
    keys: { clientPrivate: clientKeys.private, hostPublicBlob: parsed.getPublicSSH() },
    log: silentLogger,
    dialWaitMs: 5000,
  });
  await tunnel.start();
  return {
    shadow,
    tunnel,
    echoPort: echo.address().port,
    async close() {
      tunnel.close();
      echo.close();
      await shadow.close();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls check every 20 ms until it holds; throws naming what after ms. */
export async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
