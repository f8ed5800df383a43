import { describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { generateSessionKeys, pinnedHostVerifier } from '../../../../plugins/session/keys.ts';

describe('session keys', () => {
  it('always yields keys ssh2 can parse (1000 sessions)', () => {
    for (let i = 0; i < 1000; i++) {
      const k = generateSessionKeys();
      expect(ssh2.utils.parseKey(k.clientPrivate)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(k.clientPublic)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(k.hostPrivate)).not.toBeInstanceOf(Error);
      expect(k.hostPublicBlob.length).toBe(51);
    }
  });

  it('pins exactly one host key', () => {
    const a = generateSessionKeys();
    const b = generateSessionKeys();
    const verify = pinnedHostVerifier(a.hostPublicBlob);
    expect(verify(a.hostPublicBlob)).toBe(true);
    expect(verify(b.hostPublicBlob)).toBe(false);
    expect(verify(a.hostPublicBlob.subarray(1))).toBe(false);
  });
});
