import { EventEmitter } from 'node:events';
import ssh2 from 'ssh2';
import type { AuthContext, ParsedKey } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { SSH_USER } from '../../../../contract/index.ts';
import { decide, parseAuthorizedKey, parseHostKey, sameKey } from '../../../../shadow/ssh/ssh-auth.ts';

const { utils } = ssh2;

function parsed(text: string): ParsedKey {
  const key = utils.parseKey(text);
  if (key instanceof Error) throw key;
  return key;
}

/**
 * A fresh ed25519 key pair. ssh2 1.17's generateKeyPairSync('ed25519') strips leading zero bytes
 * of the public key, so about one key in 256 comes out 31 bytes long and its own parser rejects
 * it: draw again until both halves parse.
 */
function keyPair(): { private: string; public: string } {
  for (;;) {
    const keys = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(keys.private) instanceof Error) && !(utils.parseKey(keys.public) instanceof Error)) return keys;
  }
}

const session = keyPair();
const other = utils.generateKeyPairSync('ecdsa', { bits: 256 });
const sessionPrivate = parsed(session.private);
const authorized = parseAuthorizedKey(session.public);

/** A publickey attempt as ssh2 hands it over; signed by `signer` over `blob` unless `signature` is given. */
function attempt(options: {
  user?: string;
  offered?: string;
  signer?: ParsedKey;
  blob?: Buffer;
  signature?: Buffer | null;
  method?: 'publickey' | 'hostbased';
}): AuthContext {
  const offered = parsed(options.offered ?? session.public);
  const blob = options.blob ?? Buffer.from('session id and userauth request');
  const signature =
    options.signature === null ? undefined : (options.signature ?? (options.signer ?? sessionPrivate).sign(blob));
  // One object for both methods: ssh2's typings tell the two contexts apart by `method`.
  return Object.assign(new EventEmitter(), {
    username: options.user ?? SSH_USER,
    service: 'ssh-connection',
    method: options.method ?? 'publickey',
    key: { algo: offered.type, data: offered.getPublicSSH() },
    signature,
    blob: signature === undefined ? undefined : blob,
    hashAlgo: undefined,
    accept: () => {},
    reject: () => {},
  }) as unknown as AuthContext;
}

describe('decide', () => {
  it('accepts the session key with a valid signature', () => {
    expect(decide(authorized, attempt({}))).toBe('accept');
  });

  it('accepts it as hostbased, only signed, only by the session key', () => {
    expect(decide(authorized, attempt({ method: 'hostbased' }))).toBe('accept');
    expect(decide(authorized, attempt({ method: 'hostbased', signature: null }))).toBe('reject');
    expect(decide(authorized, attempt({ method: 'hostbased', signature: Buffer.alloc(64) }))).toBe('reject');
    expect(decide(authorized, attempt({ method: 'hostbased', offered: other.public, signer: parsed(other.private) }))).toBe('reject');
    expect(decide(authorized, attempt({ method: 'hostbased', user: 'root' }))).toBe('reject');
  });

  it('accepts a key query (no signature yet) for the session key', () => {
    expect(decide(authorized, attempt({ signature: null }))).toBe('accept');
  });

  it('rejects another key, even when signed by it', () => {
    const otherPrivate = parsed(other.private);
    expect(decide(authorized, attempt({ offered: other.public, signer: otherPrivate }))).toBe('reject');
    expect(decide(authorized, attempt({ offered: other.public, signature: null }))).toBe('reject');
  });

  it('rejects the session key with a bad signature', () => {
    const bad = sessionPrivate.sign(Buffer.from('something else'));
    expect(decide(authorized, attempt({ signature: bad }))).toBe('reject');
    expect(decide(authorized, attempt({ signature: Buffer.alloc(64) }))).toBe('reject');
    expect(decide(authorized, attempt({ signature: Buffer.from('short') }))).toBe('reject');
  });

  it('rejects another user', () => {
    expect(decide(authorized, attempt({ user: 'root' }))).toBe('reject');
  });

  it('rejects every other method', () => {
    const password = Object.assign(new EventEmitter(), {
      username: SSH_USER,
      service: 'ssh-connection',
      method: 'password' as const,
      password: 'kt',
      accept: () => {},
      reject: () => {},
      requestChange: () => {},
    });
    expect(decide(authorized, password)).toBe('reject');
  });
});

describe('keys', () => {
  it('compares public blobs', () => {
    const offered = parsed(other.public);
    expect(sameKey(authorized, { algo: offered.type, data: offered.getPublicSSH() })).toBe(false);
    expect(sameKey(authorized, { algo: 'ssh-ed25519', data: authorized.getPublicSSH() })).toBe(true);
  });

  it('insists on a public authorized key and a private host key', () => {
    expect(() => parseAuthorizedKey(session.private)).toThrow(/public key line/);
    expect(() => parseAuthorizedKey('ssh-ed25519 garbage')).toThrow(/cannot be parsed/);
    expect(() => parseHostKey(session.public)).toThrow(/private key/);
    expect(parseHostKey(session.private).type).toBe('ssh-ed25519');
    expect(parseHostKey(Buffer.from(other.private)).type).toBe('ecdsa-sha2-nistp256');
  });

  it('refuses, with a clear error, an ed25519 key whose public half lost its leading zero byte', () => {
    // As ssh2 1.17's generateKeyPairSync('ed25519') emits about once in 256 keys (31-byte public key).
    const broken = [
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMgAAAAtz',
      'c2gtZWQyNTUxOQAAAB+8y3SCWbDr7VL5Q4XTW5HvjaSXY7IFPt6RCa22y2MvAAAA',
      'iNPAYUPTwGFDAAAAC3NzaC1lZDI1NTE5AAAAH7zLdIJZsOvtUvlDhdNbke+NpJdj',
      'sgU+3pEJrbbLYy8AAAA/y8syJlsBKbzI8AR9Su/6ofi1eBP6sqm+QEPXEwdqM4O8',
      'y3SCWbDr7VL5Q4XTW5HvjaSXY7IFPt6RCa22y2MvAAAAAAECAwQFBgc=',
      '-----END OPENSSH PRIVATE KEY-----',
    ].join('\n');
    expect(() => parseHostKey(broken)).toThrow('the host key cannot be parsed: Malformed OpenSSH private key');
  });
});
