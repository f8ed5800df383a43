// Sessions running on this machine, one JSON file each under ~/.kt/sessions (or $KT_STATE_DIR):
// which process runs it, where, and its last health snapshot. `kt-connect status` reads them, and
// kt-clean treats a session whose process is gone as orphaned at once, without waiting for its
// heartbeat to go stale.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface LocalSession {
  id: string;
  kind: string;
  pid: number;
  namespace: string;
  context: string;
  server: string;
  mode?: string;
  startedAt: number;
  updatedAt: number;
  details: Record<string, unknown>;
}

export function stateDir(): string {
  return process.env.KT_STATE_DIR ?? join(homedir(), '.kt', 'sessions');
}

export function writeLocalSession(s: LocalSession): void {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${s.id}.tmp`);
  writeFileSync(tmp, JSON.stringify(s, null, 2), { mode: 0o600 });
  renameSync(tmp, join(dir, `${s.id}.json`));
}

export function removeLocalSession(id: string): void {
  rmSync(join(stateDir(), `${id}.json`), { force: true });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function listLocalSessions(): LocalSession[] {
  let names: string[];
  try { names = readdirSync(stateDir()); } catch { return []; }
  const out: LocalSession[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try { out.push(JSON.parse(readFileSync(join(stateDir(), n), 'utf8')) as LocalSession); } catch { /* half-written or foreign */ }
  }
  return out;
}
