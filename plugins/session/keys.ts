// Per-session SSH keys: a client key the shadow accepts and a host key the laptop pins. Both are
// fresh for every session and never written to disk on the laptop.
import ssh2 from 'ssh2';
import { timingSafeEqual } from 'node:crypto';

export interface SessionKeys {
  /** OpenSSH private key of the client (laptop side). */
  clientPrivate: string;
  /** OpenSSH public key line of the client, for the shadow's authorized key. */
  clientPublic: string;
  /** OpenSSH private host key, for the shadow. */
  hostPrivate: string;
  /** SSH wire-format public host key, pinned by the laptop. */
  hostPublicBlob: Buffer;
}

type Parsed = Exclude<ReturnType<typeof ssh2.utils.parseKey>, Error | unknown[]>;

function parseOne(text: string): Parsed | undefined {
  const k = ssh2.utils.parseKey(text);
  if (k instanceof Error) return undefined;
  return (Array.isArray(k) ? k[0] : k) as Parsed | undefined;
}

/**
 * ssh2 1.17's ed25519 generator drops leading zero bytes of the public key, so about one key in
 * 256 comes out 31 bytes long and no parser accepts it: generate again until both halves parse.
 */
export function generateKeyPair(): { private: string; public: string; parsedPublic: Parsed } {
  for (let i = 0; i < 32; i++) {
    const kp = ssh2.utils.generateKeyPairSync('ed25519');
    const pub = parseOne(kp.public);
    if (pub && parseOne(kp.private)) return { private: kp.private, public: kp.public, parsedPublic: pub };
  }
  throw new Error('could not generate a usable ed25519 key pair');
}

export function generateSessionKeys(): SessionKeys {
  const client = generateKeyPair();
  const host = generateKeyPair();
  return {
    clientPrivate: client.private,
    clientPublic: client.public,
    hostPrivate: host.private,
    hostPublicBlob: host.parsedPublic.getPublicSSH(),
  };
}

/** A host-key verifier that accepts exactly the pinned key: no trust on first use. */
export function pinnedHostVerifier(pinned: Buffer): (key: Buffer) => boolean {
  return (key: Buffer) => key.length === pinned.length && timingSafeEqual(key, pinned);
}
