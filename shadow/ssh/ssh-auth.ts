// Who may log in: only SSH_USER, only with the session's key, and only with a valid signature from
// it. The key comes as "publickey" or as "hostbased": the laptop uses the latter because its first
// request already carries the signature, where publickey first asks whether the key would do (one
// round trip more). Both sign the same session-bound data; the hostbased claims (host and user
// names) are not trusted for anything.
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import type { AuthContext, ParsedKey, PublicKey } from 'ssh2';
import { SSH_USER } from '../../contract/index.ts';

const { utils } = ssh2;

function parseOne(data: Buffer | string, what: string): ParsedKey {
  // parseKey returns an Error rather than throwing, and an array for some OpenSSH files.
  const parsed: unknown = utils.parseKey(data);
  if (parsed instanceof Error) throw new Error(`${what} cannot be parsed: ${parsed.message}`);
  const key: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof key !== 'object' || key === null) throw new Error(`${what} holds no key`);
  return key as ParsedKey;
}

/** The public key of an OpenSSH authorized_keys line ("ssh-ed25519 AAAA… comment"). */
export function parseAuthorizedKey(line: string): ParsedKey {
  const key = parseOne(line.trim(), 'the authorized key');
  if (key.isPrivateKey()) throw new Error('the authorized key must be a public key line, not a private key');
  return key;
}

/** The private host key (PEM or OpenSSH text); throws if it is not a private key. */
export function parseHostKey(pem: Buffer | string): ParsedKey {
  const key = parseOne(pem, 'the host key');
  if (!key.isPrivateKey()) throw new Error('the host key must be a private key');
  return key;
}

/** Whether `offered` is `authorized`, compared in constant time. */
export function sameKey(authorized: ParsedKey, offered: PublicKey): boolean {
  const expected = authorized.getPublicSSH();
  const actual = offered.data;
  if (!Buffer.isBuffer(actual) || actual.length !== expected.length) return false;
  return timingSafeEqual(expected, actual);
}

export type AuthDecision =
  /** Accept: a valid signature by the session key (or, without a signature, the key is acceptable). */
  | 'accept'
  | 'reject';

/** The methods the shadow accepts (see above), as it tells a client that tried another. */
export const AUTH_METHODS: ('publickey' | 'hostbased')[] = ['hostbased', 'publickey'];

/**
 * The decision for one authentication attempt. A publickey attempt without a signature is a
 * query ("would you accept this key?"): accepting it makes ssh2 answer PK_OK, not log the user in.
 * A hostbased attempt always carries its signature.
 */
export function decide(authorized: ParsedKey, ctx: AuthContext): AuthDecision {
  if ((ctx.method !== 'publickey' && ctx.method !== 'hostbased') || ctx.username !== SSH_USER) return 'reject';
  if (!sameKey(authorized, ctx.key)) return 'reject';
  if (ctx.signature === undefined) return ctx.method === 'publickey' ? 'accept' : 'reject';
  if (ctx.blob === undefined) return 'reject';
  // verify returns an Error for a malformed signature: only `true` lets anyone in.
  // ssh2 sets hashAlgo on both contexts; its typings declare it on the publickey one only.
  const { hashAlgo } = ctx as { hashAlgo?: string };
  const verified: unknown = authorized.verify(ctx.blob, ctx.signature, hashAlgo);
  return verified === true ? 'accept' : 'reject';
}
