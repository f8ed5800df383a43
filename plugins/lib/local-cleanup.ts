// Undoing the local changes of sessions that died without cleaning up (SIGKILL, a crash, a power
// cut): iptables chains, the resolver and the hosts file. A session is live while its local record
// names a running process.
import { listLocalSessions, processAlive } from './local-state.ts';

export type Cleaner = (dryRun: boolean) => Promise<string[]>;

function liveIds(): Set<string> {
  return new Set(listLocalSessions().filter((s) => processAlive(s.pid)).map((s) => s.id));
}

const isLive = (id: string): boolean => {
  const live = liveIds();
  // Chains carry the full id in a comment; an 8-character prefix is matched too.
  return [...live].some((l) => l === id || l.startsWith(id));
};

export function localCleaners(hostsFile = '/etc/hosts', resolvConf = '/etc/resolv.conf'): Cleaner[] {
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  const cleaners: Cleaner[] = [];
  if (root) {
    cleaners.push(async (dryRun) => {
      const { cleanupStaleChains, parseSavedChains } = await import('./transparent.ts');
      if (dryRun) {
        const { execFileSync } = await import('node:child_process');
        let saved: string;
        try { saved = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }); } catch { return []; }
        return parseSavedChains(saved).filter((c) => !isLive(c.sessionId)).map((c) => `would remove iptables chain ${c.chain}`);
      }
      const removed = await cleanupStaleChains(isLive).catch(() => [] as string[]);
      return removed.map((c) => `removed iptables chain ${c}`);
    });
    cleaners.push(async (dryRun) => {
      const { restoreStale, wiredSessions } = await import('./resolver-config.ts');
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(resolvConf).catch(() => undefined);
      if (!text) return [];
      const stale = wiredSessions(text).filter((id) => !isLive(id));
      if (stale.length === 0) return [];
      if (dryRun) return stale.map((id) => `would restore ${resolvConf} (session ${id})`);
      const undone = await restoreStale(resolvConf, isLive);
      return undone.map((id) => `restored ${resolvConf} (session ${id})`);
    });
  }
  if (root) {
    cleaners.push(async (dryRun) => {
      const { execFile } = await import('node:child_process');
      const { promisify } = await import('node:util');
      const out: string[] = [];
      for (const rec of listLocalSessions()) {
        const routes = rec.details.routes;
        if (processAlive(rec.pid) || !Array.isArray(routes)) continue;
        for (const r of routes) {
          if (typeof r !== 'string') continue;
          if (!dryRun) await promisify(execFile)('ip', ['route', 'del', r, 'dev', 'lo']).catch(() => undefined);
          out.push(`${dryRun ? 'would remove' : 'removed'} the route ${r} via lo (session ${rec.id})`);
        }
      }
      return out;
    });
  }
  cleaners.push(async (dryRun) => {
    const { listKtSessions, removeStaleHostsSections } = await import('./hosts-file.ts');
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(hostsFile, 'latin1').catch(() => undefined);
    if (!text) return [];
    const stale = listKtSessions(text).filter((id) => !isLive(id));
    if (stale.length === 0) return [];
    if (dryRun) return stale.map((id) => `would remove the kt section of session ${id} from ${hostsFile}`);
    await removeStaleHostsSections(hostsFile, (id) => !isLive(id));
    return stale.map((id) => `removed the kt section of session ${id} from ${hostsFile}`);
  });
  return cleaners;
}
