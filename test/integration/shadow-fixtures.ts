// Helpers the shadow's integration tests share.
import { request } from 'node:http';
import { TCPServer, UDPServer, type Packet } from 'dns2';
import { generateKeyPair } from '../../plugins/lib/keys.ts';

/** A fresh ed25519 key pair that ssh2 can parse (see generateKeyPair for the ssh2 bug it avoids). */
export function keyPair(): { private: string; public: string } {
  const { private: priv, public: pub } = generateKeyPair();
  return { private: priv, public: pub };
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
