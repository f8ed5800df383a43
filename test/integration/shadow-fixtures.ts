// Helpers the shadow's integration tests share.
import { request } from 'node:http';
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
