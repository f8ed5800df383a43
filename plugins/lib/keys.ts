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

export function generateSessionKeys(): SessionKeys {
  const client = ssh2.utils.generateKeyPairSync('ed25519');
  const host = ssh2.utils.generateKeyPairSync('ed25519');
  const parsed = ssh2.utils.parseKey(host.public);
  if (parsed instanceof Error) throw parsed;
  const hostKey = Array.isArray(parsed) ? parsed[0] : parsed;
  return {
    clientPrivate: client.private,
    clientPublic: client.public,
    hostPrivate: host.private,
    hostPublicBlob: hostKey!.getPublicSSH(),
  };
}

/** A host-key verifier that accepts exactly the pinned key: no trust on first use. */
export function pinnedHostVerifier(pinned: Buffer): (key: Buffer) => boolean {
  return (key: Buffer) => key.length === pinned.length && timingSafeEqual(key, pinned);
}
