// The leaner AES-GCM: packets match an independent implementation of the format (RFC 5647 as
// OpenSSH uses it) both ways, cut into chunks of every size; the reused build buffer never
// changes bytes already handed to the writer, also when ssh2 builds a packet while another waits
// (a key exchange); a changed byte or a bad length fails as ssh2 fails; a pause request from the
// parser returns where it stopped; and a real ssh2 connection carries data both ways.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { type AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { beforeAll, describe, expect, it } from 'vitest';
import { leanAesGcm } from '../../../runtime/ssh-gcm.ts';

interface CipherInfo { sslName: string; keyLen: number; ivLen: number }
interface Ssh2Crypto {
  CIPHER_INFO: Record<string, CipherInfo>;
  createCipher(config: { outbound: Record<string, unknown> }): { allocPacket(n: number): Buffer; encrypt(packet: Buffer): void };
  createDecipher(config: { inbound: Record<string, unknown> }): { decrypt(data: Buffer, p: number, dataLen: number): number | undefined };
}
const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as Ssh2Crypto;

const sslName = (keyLen: number): 'aes-128-gcm' | 'aes-256-gcm' => (keyLen === 16 ? 'aes-128-gcm' : 'aes-256-gcm');
const nextIv = (iv: Buffer): void => { iv.writeBigUInt64BE((iv.readBigUInt64BE(4) + 1n) & 0xffffffffffffffffn, 4); };

/** The format written out independently: length, AES-GCM of padding length, payload, padding; tag. */
function referenceSeal(payloads: Buffer[], key: Buffer, iv0: Buffer): Buffer {
  const iv = Buffer.from(iv0);
  return Buffer.concat(payloads.flatMap((payload) => {
    let padLen = 16 - ((1 + payload.length) & 15);
    if (padLen < 4) padLen += 16;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(1 + payload.length + padLen);
    const c = createCipheriv(sslName(key.length), key, iv);
    c.setAAD(len);
    const body = Buffer.concat([c.update(Buffer.concat([Buffer.from([padLen]), payload, randomBytes(padLen)])), c.final()]);
    nextIv(iv);
    return [len, body, c.getAuthTag()];
  }));
}

function referenceOpen(wire: Buffer, key: Buffer, iv0: Buffer): Buffer[] {
  const iv = Buffer.from(iv0);
  const out: Buffer[] = [];
  for (let off = 0; off < wire.length;) {
    const len = wire.readUInt32BE(off);
    const d = createDecipheriv(sslName(key.length), key, iv);
    d.setAAD(wire.subarray(off, off + 4));
    d.setAuthTag(wire.subarray(off + 4 + len, off + 4 + len + 16));
    const plain = Buffer.concat([d.update(wire.subarray(off + 4, off + 4 + len)), d.final()]);
    out.push(plain.subarray(1, plain.length - plain[0]!));
    nextIv(iv);
    off += 4 + len + 16;
  }
  return out;
}

/** Packets as ssh2's AES-GCM cipher writes them (kept as handed over, uncopied), and their payloads. */
function sealed(name: string, sizes: number[], key: Buffer, iv: Buffer): { wire: Buffer; payloads: Buffer[] } {
  const out: Buffer[] = [];
  const cipher = crypto.createCipher({ outbound: { onWrite: (b: Buffer) => out.push(b), cipherInfo: crypto.CIPHER_INFO[name], cipherKey: key, cipherIV: Buffer.from(iv), seqno: 0 } });
  const payloads = sizes.map((n) => {
    const payload = randomBytes(n);
    const packet = cipher.allocPacket(n);
    payload.copy(packet, 5);
    cipher.encrypt(packet);
    return payload;
  });
  return { wire: Buffer.concat(out), payloads };
}

function opener(name: string, key: Buffer, iv: Buffer, onPayload: (p: Buffer) => unknown): ReturnType<Ssh2Crypto['createDecipher']> {
  return crypto.createDecipher({ inbound: { onPayload, decipherInfo: crypto.CIPHER_INFO[name], decipherKey: key, decipherIV: Buffer.from(iv), seqno: 0 } });
}

/** Feeds `wire` in chunks of the given sizes, cycling through them. */
function feed(d: ReturnType<Ssh2Crypto['createDecipher']>, wire: Buffer, cuts: number[]): void {
  let off = 0;
  for (let i = 0; off < wire.length; i++) {
    const n = Math.min(cuts[i % cuts.length]!, wire.length - off);
    d.decrypt(wire.subarray(off, off + n), 0, n);
    off += n;
  }
}

describe('leanAesGcm', () => {
  beforeAll(() => {
    expect(leanAesGcm()).toBe(true);
    expect(leanAesGcm()).toBe(true);
  });

  for (const name of ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com']) {
    it(`${name}: what it seals the reference opens, what the reference seals it opens, whatever the chunking`, () => {
      const info = crypto.CIPHER_INFO[name]!;
      const key = randomBytes(info.keyLen);
      const iv = randomBytes(info.ivLen);
      const sizes = [0, 1, 15, 16, 100, 32768, 32768 + 13, 4000, 34000 - 64, 7];
      const ours = sealed(name, sizes, key, iv);
      expect(referenceOpen(ours.wire, key, iv).map((p) => p.toString('hex'))).toEqual(ours.payloads.map((p) => p.toString('hex')));
      const payloads = sizes.map((n) => randomBytes(n));
      const wire = referenceSeal(payloads, key, iv);
      for (const cuts of [[wire.length], [1], [3, 5, 7], [16384], [32700, 65536, 11], [4, 20, 40000]]) {
        const got: Buffer[] = [];
        feed(opener(name, key, iv, (p) => { got.push(Buffer.from(p)); }), wire, cuts);
        expect(got.length, `cuts ${cuts.join(',')}`).toBe(payloads.length);
        got.forEach((g, i) => expect(g.equals(payloads[i]!), `packet ${i}, cuts ${cuts.join(',')}`).toBe(true));
      }
    });
  }

  it('an IV counter that carries over a byte boundary still matches the cipher', () => {
    const info = crypto.CIPHER_INFO['aes128-gcm@openssh.com']!;
    const key = randomBytes(16);
    const iv = Buffer.from('000000000000000000fffffe', 'hex');
    const { wire, payloads } = sealed('aes128-gcm@openssh.com', [10, 20, 30, 40], key, iv);
    const got: Buffer[] = [];
    feed(opener('aes128-gcm@openssh.com', key, iv, (p) => { got.push(Buffer.from(p)); }), wire, [9]);
    expect(got.map((g) => g.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
    expect(info.ivLen).toBe(12);
  });

  it('a packet built while another waits for encryption gets a buffer of its own (ssh2 queues packets during a key exchange)', () => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const out: Buffer[] = [];
    const cipher = crypto.createCipher({ outbound: { onWrite: (b: Buffer) => out.push(b), cipherInfo: crypto.CIPHER_INFO['aes128-gcm@openssh.com'], cipherKey: key, cipherIV: Buffer.from(iv), seqno: 0 } });
    const payloads = [randomBytes(300), randomBytes(200), randomBytes(100)];
    const packets = payloads.map((p) => { const packet = cipher.allocPacket(p.length); p.copy(packet, 5); return packet; });
    expect(packets[1]!.buffer).not.toBe(packets[0]!.buffer);
    for (const packet of packets) cipher.encrypt(packet);
    const again = cipher.allocPacket(10);
    expect(again.buffer).toBe(packets[0]!.buffer);
    expect(referenceOpen(Buffer.concat(out), key, iv).map((p) => p.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
  });

  it('a changed byte fails authentication, a bad length fails as ssh2 does', () => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const { wire } = sealed('aes128-gcm@openssh.com', [500], key, iv);
    const tampered = Buffer.from(wire);
    tampered[100]! ^= 1;
    expect(() => feed(opener('aes128-gcm@openssh.com', key, iv, () => undefined), tampered, [64])).toThrow(/authenticate/);
    const badLength = Buffer.from(wire);
    badLength.writeUInt32BE(17, 0);
    expect(() => feed(opener('aes128-gcm@openssh.com', key, iv, () => undefined), badLength, [64])).toThrow('Bad packet length');
  });

  it("returns where it stopped when the parser asks to pause (false), as ssh2's decrypt does", () => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const { wire, payloads } = sealed('aes128-gcm@openssh.com', [50, 60], key, iv);
    const d = opener('aes128-gcm@openssh.com', key, iv, () => false);
    const first = 4 + 16 * Math.ceil((1 + 50 + 4) / 16) + 16;
    expect(d.decrypt(wire, 0, wire.length)).toBe(first);
    expect(payloads).toHaveLength(2);
  });

  it('a real ssh2 connection over TCP with AES-GCM carries 8 MiB each way intact', async () => {
    const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    const data = randomBytes(8 * 1024 * 1024);
    const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { cipher: ['aes128-gcm@openssh.com'] } }, (client) => {
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () => client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec) => {
          const ch = acceptExec();
          const parts: Buffer[] = [];
          ch.on('data', (d: Buffer) => parts.push(d));
          ch.on('end', () => { ch.end(Buffer.concat(parts)); });
        });
      }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const conn = new ssh2.Client();
    try {
      await new Promise<void>((resolve, reject) => {
        conn.once('ready', resolve).once('error', reject);
        conn.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, username: 'u', password: 'p', algorithms: { cipher: ['aes128-gcm@openssh.com'] } });
      });
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        conn.exec('echo', (err, ch) => {
          if (err) { reject(err); return; }
          const parts: Buffer[] = [];
          ch.on('data', (d: Buffer) => parts.push(d));
          ch.on('close', () => resolve(Buffer.concat(parts)));
          ch.end(data);
        });
      });
      expect(echoed.length).toBe(data.length);
      expect(echoed.equals(data)).toBe(true);
    } finally {
      conn.end();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 60_000);
});
