// What a session wrote on this machine for --env-file and --mount (the pod's values, Secrets among
// them) is named in its local record before it is written, so when kt dies without cleaning up
// (SIGKILL, a crash) the next run, or kt-clean, removes it.
import { chmodSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Cleaner } from '../connect/mode.ts';
import { listLocalSessions, processAlive, writeLocalSession, type LocalSession } from '../session/local-state.ts';

/** What a session records under `details.podenv`. */
export interface WrittenFiles {
  envFile?: string | undefined;
  keepEnvFile?: boolean | undefined;
  mountDir?: string | undefined;
  /** kt created the directory (else it was empty, and only what is inside goes). */
  mountDirCreated?: boolean | undefined;
  /** The mode an existing empty directory had before kt made it 0700: given back on exit. */
  mountDirMode?: number | undefined;
}

export function removeWritten(w: WrittenFiles): string[] {
  const done: string[] = [];
  if (w.envFile && !w.keepEnvFile && isAbsolute(w.envFile)) {
    rmSync(w.envFile, { force: true });
    done.push(`removed the env file ${w.envFile}`);
  }
  if (w.mountDir && isAbsolute(w.mountDir)) {
    if (w.mountDirCreated) {
      rmSync(w.mountDir, { recursive: true, force: true });
    } else {
      let names: string[] = [];
      try { names = readdirSync(w.mountDir); } catch { /* gone */ }
      for (const n of names) rmSync(join(w.mountDir, n), { recursive: true, force: true });
      if (w.mountDirMode !== undefined) try { chmodSync(w.mountDir, w.mountDirMode & 0o7777); } catch { /* gone */ }
    }
    done.push(`removed the mounted files under ${w.mountDir}`);
  }
  return done;
}

function deadSessionsFiles(isLive: (id: string) => boolean): { id: string; files: WrittenFiles; forget: () => void }[] {
  return listLocalSessions()
    .filter((s) => s.details?.podenv && !isLive(s.id) && !processAlive(s.pid))
    .map((s) => ({ id: s.id, files: s.details.podenv as WrittenFiles, forget: () => forget(s) }));
}

// Once removed, the paths leave the dead record: a later session may write to the same paths.
function forget(s: LocalSession): void {
  const { podenv: _gone, ...details } = s.details;
  try { writeLocalSession({ ...s, details }); } catch { /* kt-clean removes the record anyway */ }
}

/** kt-clean's part: the env files and mount directories of sessions whose process is gone. */
export function podenvCleaner(isLive: (id: string) => boolean): Cleaner {
  return (dryRun) => {
    const out: string[] = [];
    for (const { id, files, forget } of deadSessionsFiles(isLive)) {
      if (dryRun) {
        if (files.envFile && !files.keepEnvFile) out.push(`would remove the env file ${files.envFile} (session ${id})`);
        if (files.mountDir) out.push(`would remove the mounted files under ${files.mountDir} (session ${id})`);
        continue;
      }
      for (const line of removeWritten(files)) out.push(`${line} (session ${id})`);
      forget();
    }
    return Promise.resolve(out);
  };
}

/** At the start of a run: what dead sessions left is removed before anything new is written. */
export function removeDeadSessionsFiles(): string[] {
  return deadSessionsFiles(() => false).flatMap(({ id, files, forget: done }) => {
    const lines = removeWritten(files).map((l) => `${l} (left by session ${id}, whose process is gone)`);
    done();
    return lines;
  });
}
