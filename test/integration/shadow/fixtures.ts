// Helpers the shadow's integration tests share.
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { TCPServer, UDPServer, type Packet } from 'dns2';
import { SESSION_SECRET } from '../../../contract/index.ts';
import { generateKeyPair } from '../../../plugins/session/keys.ts';
import { silentLogger } from '../../../runtime/log.ts';
import { startShadow } from '../../../shadow/main.ts';
import type { ShadowHandle, ShadowOptions } from '../../../shadow/main.ts';

/** A fresh ed25519 key pair that ssh2 can parse (see generateKeyPair for the ssh2 bug it avoids). */
export function keyPair(): { private: string; public: string } {
  const { private: priv, public: pub } = generateKeyPair();
  return { private: priv, public: pub };
}

/**
 * Writes a session directory as the shadow reads it from its Secret (host key, the client's
 * authorized key) plus a resolv.conf whose nameserver is 127.0.0.1:`upstreamPort`, with the
 * search list of a pod in namespace `demo`.
 */
export function writeSessionDir(dir: string, hostPrivateKey: string, clientPublicKey: string, upstreamPort: number): void {
  writeFileSync(join(dir, SESSION_SECRET.hostKey), hostPrivateKey);
  writeFileSync(join(dir, SESSION_SECRET.authorizedKey), `${clientPublicKey}\n`);
  writeFileSync(
    join(dir, 'resolv.conf'),
    `nameserver 127.0.0.1:${upstreamPort}\nsearch demo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:1\n`,
  );
}

/** Starts the shadow on 127.0.0.1 from the session directory `dir`, every port picked by the system. */
export function startLoopbackShadow(dir: string, extra: Partial<ShadowOptions> = {}): Promise<ShadowHandle> {
  return startShadow({
    env: {},
    sessionDir: dir,
    resolvConfPath: join(dir, 'resolv.conf'),
    host: '127.0.0.1',
    ports: { ssh: 0, dns: 0, health: 0 },
    logger: silentLogger,
    ...extra,
  });
}

/** GET http://127.0.0.1:port/path; resolves with the status code. */
export function httpGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A DNS server on 127.0.0.1 serving UDP and TCP on one port (TCP picks it, UDP takes the same
 * number, again if taken), answering with `handle`: the fake upstream resolver of the tests.
 */
export async function listenDns(handle: (request: Packet, send: (response: Packet) => Promise<Buffer>) => void): Promise<{ port: number; close(): Promise<void> }> {
  for (;;) {
    const tcp = new TCPServer();
    tcp.on('request', handle);
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, '127.0.0.1', () => {
        const address = tcp.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
    const udp = new UDPServer({ type: 'udp4' });
    udp.on('request', handle);
    const bound = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      continue;
    }
    return {
      port,
      close: async () => {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}
