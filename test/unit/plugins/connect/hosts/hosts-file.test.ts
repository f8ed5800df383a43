// kt's hosts-file sections: adding then removing gives the file back byte for byte.
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addSection,
  detectEol,
  listKtSessions,
  readSection,
  removeAllKtSections,
  removeSection,
  removeStaleHostsSections,
  restoreHosts,
  writeFileAtomic,
  writeHostsSection,
} from '../../../../../plugins/connect/hosts/hosts-file.ts';
import type { HostsEntry } from '../../../../../plugins/connect/hosts/hosts-file.ts';

const ENTRIES: HostsEntry[] = [
  { ip: '127.20.0.1', names: ['web', 'web.dev', 'web.dev.svc', 'web.dev.svc.cluster.local'] },
  { ip: '127.20.0.2', names: ['db.other', 'db.other.svc', 'db.other.svc.cluster.local'] },
];
const OTHER: HostsEntry[] = [{ ip: '127.20.0.9', names: ['api.x', 'api.x.svc'] }];

const SAMPLES: Record<string, string> = {
  'LF with a final newline': '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n',
  'LF without a final newline': '127.0.0.1\tlocalhost\n::1\tlocalhost',
  'CRLF with a final newline': '# Windows hosts\r\n127.0.0.1 localhost\r\n::1 localhost\r\n',
  'CRLF without a final newline': '# Windows hosts\r\n127.0.0.1 localhost\r\n::1 localhost',
  empty: '',
  'a single newline': '\n',
  'blank lines at the end': '127.0.0.1 localhost\n\n\n',
  'a lone CR at the end': '127.0.0.1 localhost\r',
  'mixed line endings': '127.0.0.1 localhost\r\n::1 localhost\n10.0.0.1 box',
  'non-ASCII comment (latin1 roundtrip)': '# caf\u00e9 \u00ff\n127.0.0.1 localhost\n',
};

describe('hosts-file sections', () => {
  for (const [label, original] of Object.entries(SAMPLES)) {
    it(`add then remove restores ${label} byte for byte`, () => {
      const added = addSection(original, 'sess-1', ENTRIES);
      expect(added).not.toBe(original);
      expect(added.startsWith(original)).toBe(true);
      expect(readSection(added, 'sess-1')).toEqual(ENTRIES);
      expect(removeSection(added, 'sess-1')).toBe(original);
      expect(removeAllKtSections(added)).toBe(original);
    });
  }

  it('writes the section with the file line ending and keeps a missing final newline missing', () => {
    const crlf = addSection('a\r\nb\r\n', 's', OTHER);
    expect(crlf).toBe('a\r\nb\r\n# BEGIN kt s\r\n127.20.0.9\tapi.x api.x.svc\r\n# END kt s\r\n');
    const noEol = addSection('a\nb', 's', OTHER);
    expect(noEol).toBe('a\nb\n# BEGIN kt s\n127.20.0.9\tapi.x api.x.svc\n# END kt s');
    expect(detectEol('x\r\ny')).toBe('\r\n');
    expect(detectEol('x')).toBe('\n');
  });

  it('lets two sessions coexist and removes them in either order', () => {
    for (const original of [SAMPLES['LF without a final newline']!, SAMPLES['CRLF with a final newline']!]) {
      const both = addSection(addSection(original, 'one', ENTRIES), 'two', OTHER);
      expect(listKtSessions(both)).toEqual(['one', 'two']);
      expect(readSection(both, 'one')).toEqual(ENTRIES);
      expect(readSection(both, 'two')).toEqual(OTHER);

      const withoutOne = removeSection(both, 'one');
      expect(listKtSessions(withoutOne)).toEqual(['two']);
      expect(removeSection(withoutOne, 'two')).toBe(original);

      const withoutTwo = removeSection(both, 'two');
      expect(withoutTwo).toBe(addSection(original, 'one', ENTRIES));
      expect(removeSection(withoutTwo, 'one')).toBe(original);
    }
  });

  it('replaces a session section instead of adding a second one', () => {
    const original = SAMPLES['LF without a final newline']!;
    const first = addSection(original, 'one', ENTRIES);
    const again = addSection(first, 'one', OTHER);
    expect(listKtSessions(again)).toEqual(['one']);
    expect(readSection(again, 'one')).toEqual(OTHER);
    expect(removeSection(again, 'one')).toBe(original);
    // No entries: no section at all.
    expect(addSection(first, 'one', [])).toBe(original);
  });

  it('keeps lines a person added after the section', () => {
    const original = '127.0.0.1 localhost\n';
    const added = addSection(original, 'one', ENTRIES);
    const edited = `${added}10.1.2.3 mine\n`;
    expect(removeSection(edited, 'one')).toBe(`${original}10.1.2.3 mine\n`);
  });

  it('removes only the stale sessions', () => {
    const original = '127.0.0.1 localhost';
    let content = addSection(original, 'dead-1', OTHER);
    content = addSection(content, 'alive', ENTRIES);
    content = addSection(content, 'dead-2', OTHER);
    const alive = new Set(['alive']);
    const cleaned = removeAllKtSections(content, (id) => !alive.has(id));
    expect(listKtSessions(cleaned)).toEqual(['alive']);
    expect(cleaned).toBe(addSection(original, 'alive', ENTRIES));
    expect(removeAllKtSections(content)).toBe(original);
  });

  it('leaves a BEGIN without its END and unrelated comments alone', () => {
    const content = '127.0.0.1 localhost\n# BEGIN kt broken\n10.0.0.1 x\n# BEGIN ktx y\n# END kt other\n';
    expect(listKtSessions(content)).toEqual([]);
    expect(removeAllKtSections(content)).toBe(content);
    expect(removeSection(content, 'broken')).toBe(content);
  });

  it('rejects session ids and names that would break the file', () => {
    expect(() => addSection('', 'two words', ENTRIES)).toThrow(/session id/);
    expect(() => addSection('', 'x\ny', ENTRIES)).toThrow(/session id/);
    expect(() => addSection('', 's', [{ ip: '127.20.0.1', names: ['a b'] }])).toThrow(/host name/);
    expect(() => addSection('', 's', [{ ip: '127.20.0.1', names: ['a#b'] }])).toThrow(/host name/);
    expect(() => addSection('', 's', [{ ip: 'not an ip', names: ['a'] }])).toThrow(/IP address/);
  });

  it('splits long name lists over several lines', () => {
    const names = Array.from({ length: 11 }, (_, i) => `n${i}.ns`);
    const content = addSection('', 's', [{ ip: '127.20.0.1', names }]);
    expect(content.split('\n').filter((l) => l.startsWith('127.20.0.1'))).toHaveLength(2);
    expect(readSection(content, 's')?.flatMap((e) => e.names)).toEqual(names);
  });
});

describe('hosts-file IO', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-hosts-'));
    path = join(dir, 'hosts');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes and restores a file byte for byte, keeping its mode, with no temp files left', async () => {
    const original = Buffer.from('# caf\u00e9\r\n127.0.0.1 localhost\r\n::1 localhost', 'utf8');
    await writeFile(path, original);
    await chmod(path, 0o644);

    expect(await writeHostsSection(path, 'sess', ENTRIES)).toBe(true);
    const written = await readFile(path, 'latin1');
    expect(readSection(written, 'sess')).toEqual(ENTRIES);
    expect(written).toContain('\r\n# BEGIN kt sess\r\n');
    expect((await stat(path)).mode & 0o777).toBe(0o644);

    // Same entries again: nothing to write.
    expect(await writeHostsSection(path, 'sess', ENTRIES)).toBe(false);

    expect(await restoreHosts(path, 'sess')).toBe(true);
    expect((await readFile(path)).equals(original)).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual(['hosts']);
    expect(await restoreHosts(path, 'sess')).toBe(false);
  });

  it('falls back to writing in place when the rename fails (a bind-mounted file)', async () => {
    await writeFile(path, '127.0.0.1 localhost\n');
    const busy = async (): Promise<void> => {
      throw Object.assign(new Error('rename: resource busy'), { code: 'EBUSY' });
    };
    await writeFileAtomic(path, 'replaced\n', { rename: busy });
    expect(await readFile(path, 'utf8')).toBe('replaced\n');
    expect(await readdir(dir)).toEqual(['hosts']);

    await writeHostsSection(path, 's', OTHER, { rename: busy });
    expect(readSection(await readFile(path, 'latin1'), 's')).toEqual(OTHER);
    await restoreHosts(path, 's', { rename: busy });
    expect(await readFile(path, 'utf8')).toBe('replaced\n');
    expect(await readdir(dir)).toEqual(['hosts']);
  });

  it('passes other rename errors on', async () => {
    await writeFile(path, 'x\n');
    const broken = async (): Promise<void> => {
      throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    };
    await expect(writeFileAtomic(path, 'y\n', { rename: broken })).rejects.toThrow('no space');
    expect(await readFile(path, 'utf8')).toBe('x\n');
    expect(await readdir(dir)).toEqual(['hosts']);
  });

  it('serialises concurrent writers of one file', async () => {
    await writeFile(path, '127.0.0.1 localhost\n');
    await Promise.all([
      writeHostsSection(path, 'a', ENTRIES),
      writeHostsSection(path, 'b', OTHER),
      writeHostsSection(path, 'c', OTHER),
    ]);
    expect(listKtSessions(await readFile(path, 'latin1'))).toEqual(['a', 'b', 'c']);
    await removeStaleHostsSections(path, (id) => id !== 'b');
    expect(listKtSessions(await readFile(path, 'latin1'))).toEqual(['b']);
    await restoreHosts(path, 'b');
    expect(await readFile(path, 'utf8')).toBe('127.0.0.1 localhost\n');
  });

  it('follows a symbolic link instead of replacing it', async () => {
    const { symlink, lstat } = await import('node:fs/promises');
    const real = join(dir, 'real-hosts');
    await writeFile(real, '127.0.0.1 localhost\n');
    await symlink(real, path);
    await writeHostsSection(path, 's', OTHER);
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(listKtSessions(await readFile(real, 'latin1'))).toEqual(['s']);
    await restoreHosts(path, 's');
    expect(await readFile(real, 'utf8')).toBe('127.0.0.1 localhost\n');
  });
});
