// Transparent mode's crash cleanup: what a transparent session that died without undoing (SIGKILL, a
// crash, a power cut) left on this machine: its iptables chain, its routes via lo, its line in
// resolv.conf. kt-clean runs it; a session counts as live while its local record names a running
// process.
import { execFile, execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { listLocalSessions, processAlive } from '../../session/local-state.ts';
import type { Cleaner } from '../mode.ts';
import { restoreStale, wiredSessions } from './resolver-config.ts';
import { cleanupStaleChains, parseSavedChains } from './transparent.ts';


const run = promisify(execFile);

export function transparentCleaners(isLive: (sessionId: string) => boolean, resolvConf: string): Cleaner[] {
  const iptablesChains: Cleaner = async (dryRun) => {
    if (dryRun) {
      // A session in a cluster with IPv6 ranges has the same chain in ip6tables too.
      return [['iptables-save', ''], ['ip6tables-save', ' (ip6tables)']].flatMap(([tool, label]) => {
        let saved: string;
        try { saved = execFileSync(tool!, ['-t', 'nat'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return []; }
        return parseSavedChains(saved).filter((c) => !isLive(c.sessionId)).map((c) => `would remove iptables chain ${c.chain}${label!}`);
      });
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
  return [iptablesChains, routes, resolver(resolvConf)];
}
