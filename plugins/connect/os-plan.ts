// Steps on macOS and Windows are written as plans: the exact commands and files, with their undo,
// computed by pure functions that unit tests check to the character (no such machine runs the
// tests here), and carried out by one small runner.
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OsCommand {
  argv: string[];
  /** Needs administrator rights (root / an elevated shell). */
  admin: boolean;
}

export interface OsFile {
  path: string;
  content: string;
}

/** One direction of a plan: commands run in order, then files written, then files removed. */
export interface OsSteps {
  commands: OsCommand[];
  write: OsFile[];
  remove: string[];
}

export interface OsPlan {
  apply: OsSteps;
  undo: OsSteps;
}

export const NO_STEPS: OsSteps = { commands: [], write: [], remove: [] };

/** Carries out steps; the first failure stops and is thrown as it came. */
export async function runSteps(steps: OsSteps): Promise<void> {
  for (const c of steps.commands) await run(c.argv[0]!, c.argv.slice(1));
  for (const f of steps.write) await writeFile(f.path, f.content, { mode: 0o644 });
  for (const p of steps.remove) await rm(p, { force: true });
}
