// Undoing the local changes of sessions that died without cleaning up (SIGKILL, a crash, a power
// cut): iptables chains, routes, the resolver and the hosts file. A session is live while its local
// record names a running process.
import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { listKtSessions, removeStaleHostsSections } from './hosts-file.ts';
import { listLocalSessions, processAlive } from './local-state.ts';
import { restoreStale, wiredSessions } from './resolver-config.ts';
import { cleanupStaleChains, parseSavedChains } from './transparent.ts';

export type Cleaner = (dryRun: boolean) => Promise<string[]>;

const run = promisify(execFile);

function liveIds(): Set<string> {
  return new Set(listLocalSessions().filter((s) => processAlive(s.pid)).map((s) => s.id));
}

const isLive = (id: string): boolean => {
  // Chains carry the full id in a comment; an 8-character prefix is matched too.
  return [...liveIds()].some((l) => l === id || l.startsWith(id));
};

const iptablesChains: Cleaner = async (dryRun) => {
  if (dryRun) {
    let saved: string;
    try { saved = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }); } catch { return []; }
    return parseSavedChains(saved).filter((c) => !isLive(c.sessionId)).map((c) => `would remove iptables chain ${c.chain}`);
  }
  const removed = await cleanupStaleChains(isLive).catch(() => [] as string[]);
  return removed.map((c) => `removed iptables chain ${c}`);
};

const routes: Cleaner = async (dryRun) => {
  const out: string[] = [];
  for (const rec of listLocalSessions()) {
    const added = rec.details.routes;
    if (processAlive(rec.pid) || !Array.isArray(added)) continue;
    for (const r of added) {
      if (typeof r !== 'string') continue;
      if (!dryRun) await run('ip', ['route', 'del', r, 'dev', 'lo']).catch(() => undefined);
      out.push(`${dryRun ? 'would remove' : 'removed'} the route ${r} via lo (session ${rec.id})`);
    }
  }
  return out;
};

const resolver = (resolvConf: string): Cleaner => async (dryRun) => {
  const text = await readFile(resolvConf).catch(() => undefined);
  if (!text) return [];
  const stale = wiredSessions(text).filter((id) => !isLive(id));
  if (stale.length === 0) return [];
  if (dryRun) return stale.map((id) => `would restore ${resolvConf} (session ${id})`);
  const undone = await restoreStale(resolvConf, isLive);
  return undone.map((id) => `restored ${resolvConf} (session ${id})`);
};

const hostsFile = (path: string): Cleaner => async (dryRun) => {
  const text = await readFile(path, 'latin1').catch(() => undefined);
  if (!text) return [];
  const stale = listKtSessions(text).filter((id) => !isLive(id));
  if (stale.length === 0) return [];
  if (dryRun) return stale.map((id) => `would remove the kt section of session ${id} from ${path}`);
  await removeStaleHostsSections(path, (id) => !isLive(id));
  return stale.map((id) => `removed the kt section of session ${id} from ${path}`);
};

export function localCleaners(hosts = '/etc/hosts', resolvConf = '/etc/resolv.conf'): Cleaner[] {
  // iptables, routes and resolv.conf are only ever changed as root (transparent mode).
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  return [...(root ? [iptablesChains, routes, resolver(resolvConf)] : []), hostsFile(hosts)];
}
