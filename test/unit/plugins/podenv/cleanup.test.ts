import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { podenvCleaner, removeDeadSessionsFiles, removeWritten } from '../../../../plugins/podenv/cleanup.ts';
import { listLocalSessions, writeLocalSession } from '../../../../plugins/session/local-state.ts';

let work = '';
let savedStateDir: string | undefined;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'kt-podenv-cleanup-'));
  savedStateDir = process.env.KT_STATE_DIR;
  process.env.KT_STATE_DIR = join(work, 'state');
});
afterEach(() => {
  if (savedStateDir === undefined) delete process.env.KT_STATE_DIR;
  else process.env.KT_STATE_DIR = savedStateDir;
  rmSync(work, { recursive: true, force: true });
});

/** An existing empty --mount directory as a session leaves it: 0700, files inside. */
function usedMountDir(originalMode: number): string {
  const dir = join(work, 'mnt');
  mkdirSync(dir);
  chmodSync(dir, originalMode);
  chmodSync(dir, 0o700);
  mkdirSync(join(dir, 'etc/app'), { recursive: true });
  writeFileSync(join(dir, 'etc/app/config.yaml'), 'version: 1\n');
  return dir;
}

describe('what --env-file and --mount wrote is removed', () => {
  it('an existing empty --mount directory is emptied and gets its own mode back', () => {
    const dir = usedMountDir(0o755);
    expect(removeWritten({ mountDir: dir, mountDirCreated: false, mountDirMode: 0o755 })).toEqual([`removed the mounted files under ${dir}`]);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).mode & 0o7777).toBe(0o755);
  });

  it('special bits of the original mode come back too (a sticky, group-writable directory)', () => {
    const dir = usedMountDir(0o1775);
    removeWritten({ mountDir: dir, mountDirCreated: false, mountDirMode: 0o1775 });
    expect(statSync(dir).mode & 0o7777).toBe(0o1775);
  });

  it('a directory kt created goes whole', () => {
    const dir = usedMountDir(0o700);
    removeWritten({ mountDir: dir, mountDirCreated: true });
    expect(existsSync(dir)).toBe(false);
  });

  /** What a session killed with SIGKILL leaves: its files, and its local record naming them. */
  function deadSession(mode: number): { dir: string; envFile: string } {
    const dir = usedMountDir(mode);
    const envFile = join(work, 'api.env');
    writeFileSync(envFile, 'A=1\n', { mode: 0o600 });
    // A pid that is not alive: the highest a Linux pid can be, plus one.
    writeLocalSession({
      id: 'dead1', kind: 'exchange', pid: 4194305, namespace: 'dev', context: 'c', server: 's', startedAt: 0, updatedAt: 0,
      details: { podenv: { envFile, mountDir: dir, mountDirCreated: false, mountDirMode: mode } },
    });
    return { dir, envFile };
  }

  it('kt-clean gives a dead session\'s existing directory its mode back, from the local record', async () => {
    const { dir, envFile } = deadSession(0o750);
    const clean = podenvCleaner(() => false);
    expect(await clean(true)).toEqual([`would remove the env file ${envFile} (session dead1)`, `would remove the mounted files under ${dir} (session dead1)`]);
    expect(statSync(dir).mode & 0o7777).toBe(0o700);
    expect(await clean(false)).toEqual([`removed the env file ${envFile} (session dead1)`, `removed the mounted files under ${dir} (session dead1)`]);
    expect(existsSync(envFile)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).mode & 0o7777).toBe(0o750);
    expect(await clean(false)).toEqual([]);
  });

  it('the next run removes what a dead session wrote before it writes anything, and forgets the paths', () => {
    const { dir, envFile } = deadSession(0o711);
    expect(removeDeadSessionsFiles()).toEqual([
      `removed the env file ${envFile} (left by session dead1, whose process is gone)`,
      `removed the mounted files under ${dir} (left by session dead1, whose process is gone)`,
    ]);
    expect(existsSync(envFile)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).mode & 0o7777).toBe(0o711);
    expect(listLocalSessions().find((l) => l.id === 'dead1')?.details).toEqual({});
    expect(removeDeadSessionsFiles()).toEqual([]);
  });
});
