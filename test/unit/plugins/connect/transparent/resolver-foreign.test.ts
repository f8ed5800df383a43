// A resolver file kt did not write, where kt would put one (macOS: /etc/resolver/<domain>): the
// session is refused in one sentence before any step of the plan runs, so nothing is changed.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../../../plugins/cli/errors.ts';
import { desktopNamesPlan } from '../../../../../plugins/connect/transparent/desktop-names.ts';

const input = { sessionId: 'abc123', clusterDomain: 'cluster.local', namespaces: ['dev'], port: 5353, isLive: () => false };

describe('a resolver file kt did not write', () => {
  it('refuses the session in one sentence, with no plan to carry out', () => {
    const foreign = (p: string): string | undefined => (p === '/etc/resolver/cluster.local' ? 'nameserver 10.0.0.2\n' : undefined);
    let err: unknown;
    try {
      desktopNamesPlan('darwin', input, foreign);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('/etc/resolver/cluster.local exists and kt did not write it; move it away, or the cluster\'s names would replace its resolver.');
    expect((err as UserError).message.split('\n')).toHaveLength(1);
    expect((err as UserError).exitCode).not.toBe(0);
  });

  it('takes the place of a file a dead kt session left', () => {
    const stale = (): string => '# kt-session=gone1 (kubectl kt-connect)\nnameserver 127.0.0.1\nport 5353\n';
    expect(desktopNamesPlan('darwin', input, stale).apply.write.map((w) => w.path)).toEqual(['/etc/resolver/cluster.local', '/etc/resolver/dev']);
  });
});
