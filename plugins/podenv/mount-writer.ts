// Puts a mount plan on disk under DIR (0700, so files keep the modes the pod gives them and still
// are the user's alone), and keeps it in step: a changed file is replaced atomically (a reader sees
// the old or the new content, never half), a file the plan no longer has goes.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MountPlan } from './volumes.ts';

export interface WriteResult {
  written: string[];
  removed: string[];
}

function same(path: string, content: Buffer, mode: number): boolean {
  try {
    const st = statSync(path);
    return (st.mode & 0o777) === mode && readFileSync(path).equals(content);
  } catch {
    return false;
  }
}

/** Every file under `dir`, relative, with `/` separators. */
export function listFiles(dir: string, base = ''): string[] {
  let names: { name: string; isDirectory(): boolean }[];
  try { names = readdirSync(join(dir, base), { withFileTypes: true }); } catch { return []; }
  return names.flatMap((d) => (d.isDirectory() ? listFiles(dir, base ? `${base}/${d.name}` : d.name) : [base ? `${base}/${d.name}` : d.name]));
}

export function writePlan(dir: string, plan: MountPlan): WriteResult {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const written: string[] = [];
  const wanted = new Set(plan.files.map((f) => f.path));
  for (const d of plan.dirs) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  for (const f of plan.files) {
    const target = join(dir, f.path);
    if (same(target, f.content, f.mode)) continue;
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    // A subPath file replaced by a directory (or the reverse) between two plans.
    try { if (statSync(target).isDirectory()) rmSync(target, { recursive: true, force: true }); } catch { /* absent */ }
    const tmp = join(dirname(target), `.kt-${process.pid}.tmp`);
    writeFileSync(tmp, f.content, { mode: 0o600 });
    chmodSync(tmp, f.mode);
    renameSync(tmp, target);
    written.push(f.path);
  }
  const removed = listFiles(dir).filter((p) => !wanted.has(p));
  for (const p of removed) rmSync(join(dir, p), { force: true });
  pruneEmpty(dir, new Set(plan.dirs));
  return { written, removed };
}

/** Removes directories left empty by removed files, except those the plan keeps. */
function pruneEmpty(dir: string, keep: Set<string>, base = ''): void {
  let names: { name: string; isDirectory(): boolean }[];
  try { names = readdirSync(join(dir, base), { withFileTypes: true }); } catch { return; }
  for (const d of names) {
    if (!d.isDirectory()) continue;
    const rel = base ? `${base}/${d.name}` : d.name;
    pruneEmpty(dir, keep, rel);
    const inside = [...keep].some((k) => k === rel || k.startsWith(`${rel}/`));
    if (!inside) try { rmdirSync(join(dir, rel)); } catch { /* not empty */ }
  }
}
