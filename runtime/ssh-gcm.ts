// ssh2's AES-GCM, for both ends of the tunnel, with fewer buffers per packet. ssh2's native
// crypto binding does not build on Node 26, so it encrypts and decrypts in JavaScript over
// node:crypto, and every buffer it allocates is external memory to V8: each 64 MB of it starts a
// full mark-compact of the whole heap. In a profile of a bulk transfer, garbage collection was
// 35-40% of the laptop process's CPU while AES itself was 3-4%.
// - Decrypting: a packet (32 KiB) that spans two arriving chunks (nearly always: the chunks are
//   the port-forward's WebSocket frames) was decrypted piece by piece into fresh buffers and then
//   copied into another fresh buffer. Here its ciphertext is gathered in one buffer kept for the
//   connection and decrypted once: one new buffer per packet (the plaintext) instead of two or
//   more; a packet whole in its chunk is decrypted where it lies.
// - Encrypting: each packet was built in a fresh buffer only to be encrypted into another. Here it
//   is built in a buffer kept for the connection, unless that one still holds a packet not yet
//   encrypted (ssh2 queues packets during a key exchange); its 4 length bytes, which go on the
//   wire as they are, are copied out, as the next packet reuses the buffer.
// Wire format, checks and errors are ssh2's own (a bad length or tag fails alike). Patches the
// prototypes of ssh2 1.x's AESGCMCipherNative and AESGCMDecipherNative in place; does nothing
// when ssh2's native binding is available or a class is not shaped as expected.
// runtime/ is reached only through imports, so the declaration of ssh2's untyped module is referenced.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./ssh2-crypto.d.ts" />
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import ssh2Crypto from 'ssh2/lib/protocol/crypto.js';

/** ssh2's limit on a packet's length field plus its 4 bytes and tag (crypto.js MAX_PACKET_SIZE). */
const MAX_PACKET_SIZE = 35000;

/** The fields of ssh2's AESGCMDecipherNative this decrypt reads and keeps consistent. */
interface GcmDecipher {
  inSeqno: number;
  _onPayload(payload: Buffer): unknown;
  _decipherSSLName: string;
  _decipherKey: Buffer;
  _decipherIV: Buffer;
  _len: number;
  _lenBytes: number;
  _packet: Buffer | null;
  _packetPos: number;
  _pktLen: number;
  _tagPos: number;
  /** Ciphertext and tag of a packet that spans chunks, gathered; reused for every such packet. */
  _ktGather?: Buffer;
  _ktFill?: number;
  decrypt(data: Uint8Array, p: number, dataLen: number): number | undefined;
}

/** The fields of ssh2's AESGCMCipherNative these methods read and keep consistent. */
interface GcmCipher {
  outSeqno: number;
  _onWrite(data: Buffer): void;
  _encSSLName: string;
  _encKey: Buffer;
  _encIV: Buffer;
  _dead: boolean;
  /** The buffer packets are built in, and whether it holds one not yet encrypted. */
  _ktBuild?: Buffer;
  _ktBuilding?: boolean;
  allocPacket(payloadLen: number): Buffer;
  encrypt(packet: Buffer): void;
}

interface Ssh2Crypto {
  bindingAvailable: boolean;
  CIPHER_INFO: Record<string, { sslName: string; keyLen: number; ivLen: number } | undefined>;
  createCipher(config: { outbound: Record<string, unknown> }): unknown;
  createDecipher(config: { inbound: Record<string, unknown> }): unknown;
}

/** The 64-bit invocation counter in IV bytes 4-11, big-endian, plus one (RFC 5647 section 7.1). */
function ivIncrement(iv: Buffer): void {
  for (let i = 11; i >= 4; i--) {
    iv[i] = (iv[i]! + 1) & 0xff;
    if (iv[i] !== 0) return;
  }
}

const lengthAad = Buffer.alloc(4);

function decrypt(this: GcmDecipher, data: Uint8Array, p: number, dataLen: number): number | undefined {
  while (p < dataLen) {
    if (this._lenBytes < 4) {
      let nb = Math.min(4 - this._lenBytes, dataLen - p);
      this._lenBytes += nb;
      while (nb--) this._len = (this._len << 8) + data[p++]!;
      if (this._lenBytes < 4) return undefined;
      if (this._len + 20 > MAX_PACKET_SIZE || this._len < 16 || (this._len & 15) !== 0) throw new Error('Bad packet length');
      this._ktFill = 0;
    }
    const len = this._len;
    const need = len + 16;
    let body: Uint8Array;
    const fill = this._ktFill ?? 0;
    if (fill === 0 && dataLen - p >= need) {
      body = data.subarray(p, p + need);
      p += need;
    } else {
      if (!this._ktGather) this._ktGather = Buffer.allocUnsafe(MAX_PACKET_SIZE);
      const nb = Math.min(need - fill, dataLen - p);
      this._ktGather.set(data.subarray(p, p + nb), fill);
      p += nb;
      this._ktFill = fill + nb;
      if (this._ktFill < need) return undefined;
      body = this._ktGather.subarray(0, need);
    }
    lengthAad.writeUInt32BE(len, 0);
    const decipher = createDecipheriv(this._decipherSSLName as 'aes-128-gcm', this._decipherKey, this._decipherIV);
    decipher.setAutoPadding(false);
    decipher.setAAD(lengthAad);
    let packet = decipher.update(body.subarray(0, len));
    decipher.setAuthTag(body.subarray(len, need));
    const rest = decipher.final();
    if (rest.length > 0) packet = Buffer.concat([packet, rest]);
    const payload = Buffer.from(packet.buffer, packet.byteOffset + 1, packet.length - packet[0]! - 1);

    this.inSeqno = (this.inSeqno + 1) >>> 0;
    ivIncrement(this._decipherIV);
    this._len = 0;
    this._lenBytes = 0;
    this._ktFill = 0;
    this._packet = null;
    this._packetPos = 0;
    this._pktLen = 0;
    this._tagPos = 0;
    const ret = this._onPayload(payload);
    if (ret !== undefined) return ret === false ? p : (ret as number);
  }
  return undefined;
}

function allocPacket(this: GcmCipher, payloadLen: number): Buffer {
  let pktLen = 4 + 1 + payloadLen;
  let padLen = 16 - ((pktLen - 4) & 15);
  if (padLen < 4) padLen += 16;
  pktLen += padLen;
  let packet: Buffer;
  if (!this._ktBuilding && pktLen <= MAX_PACKET_SIZE) {
    this._ktBuild ??= Buffer.allocUnsafe(MAX_PACKET_SIZE);
    this._ktBuilding = true;
    packet = this._ktBuild.subarray(0, pktLen);
  } else {
    packet = Buffer.allocUnsafe(pktLen);
  }
  packet.writeUInt32BE(pktLen - 4, 0);
  packet[4] = padLen;
  randomFillSync(packet, 5 + payloadLen, padLen);
  return packet;
}

function encrypt(this: GcmCipher, packet: Buffer): void {
  if (this._dead) return;
  const cipher = createCipheriv(this._encSSLName as 'aes-128-gcm', this._encKey, this._encIV);
  cipher.setAutoPadding(false);
  const lenData = Buffer.from(packet.subarray(0, 4));
  cipher.setAAD(lenData);
  this._onWrite(lenData);
  this._onWrite(cipher.update(packet.subarray(4)));
  const rest = cipher.final();
  if (rest.length > 0) this._onWrite(rest);
  this._onWrite(cipher.getAuthTag());
  if (this._ktBuild && packet.buffer === this._ktBuild.buffer) this._ktBuilding = false;
  ivIncrement(this._encIV);
  this.outSeqno = (this.outSeqno + 1) >>> 0;
}

let patched: boolean | undefined;

/**
 * Installs the leaner encrypt and decrypt on ssh2's AES-GCM; true when installed (once per
 * process; later calls answer the same).
 */
export function leanAesGcm(): boolean {
  if (patched !== undefined) return patched;
  patched = false;
  const crypto = ssh2Crypto as Ssh2Crypto;
  const info = crypto.CIPHER_INFO['aes128-gcm@openssh.com'];
  if (crypto.bindingAvailable || !info) return false;
  const opener = crypto.createDecipher({
    inbound: { onPayload: () => undefined, decipherInfo: info, decipherKey: Buffer.alloc(info.keyLen), decipherIV: Buffer.alloc(info.ivLen), seqno: 0 },
  }) as Partial<GcmDecipher>;
  const sealer = crypto.createCipher({
    outbound: { onWrite: () => undefined, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), cipherIV: Buffer.alloc(info.ivLen), seqno: 0 },
  }) as Partial<GcmCipher>;
  const openerProto = Object.getPrototypeOf(opener) as Partial<GcmDecipher> & { constructor: { name: string } };
  const sealerProto = Object.getPrototypeOf(sealer) as Partial<GcmCipher> & { constructor: { name: string } };
  const shaped = openerProto.constructor.name === 'AESGCMDecipherNative' && typeof openerProto.decrypt === 'function'
    && ['_decipherSSLName', '_decipherKey', '_decipherIV', '_len', '_lenBytes', '_onPayload', 'inSeqno'].every((k) => k in opener)
    && sealerProto.constructor.name === 'AESGCMCipherNative' && typeof sealerProto.encrypt === 'function' && typeof sealerProto.allocPacket === 'function'
    && ['_encSSLName', '_encKey', '_encIV', '_onWrite', '_dead', 'outSeqno'].every((k) => k in sealer);
  if (!shaped) return false;
  openerProto.decrypt = decrypt;
  sealerProto.allocPacket = allocPacket;
  sealerProto.encrypt = encrypt;
  patched = true;
  return true;
}
