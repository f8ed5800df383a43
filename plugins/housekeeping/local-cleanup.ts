// Undoing the local changes of sessions that died without cleaning up (SIGKILL, a crash, a power
// cut): each connect mode brings its own cleaners (connect/transparent/cleanup.ts,
// connect/hosts/cleanup.ts); this decides which run and what counts as live. A session is live
// while its local record names a running process.
import { hostsCleaner } from '../connect/hosts/cleanup.ts';
import { macosAliasCleaner } from '../connect/hosts/macos.ts';
import { defaultHostsFile } from '../connect/hosts/windows.ts';
import { macResolverCleaner } from '../connect/transparent/resolver-macos.ts';
import { nrptCleaner } from '../connect/transparent/resolver-windows.ts';
import type { Cleaner } from '../connect/mode.ts';
import { transparentCleaners } from '../connect/transparent/cleanup.ts';
import { listLocalSessions, processAlive } from '../session/local-state.ts';
import { podenvCleaner } from '../podenv/cleanup.ts';

export type { Cleaner } from '../connect/mode.ts';

function liveIds(): Set<string> {
  return new Set(listLocalSessions().filter((s) => processAlive(s.pid)).map((s) => s.id));
}

const isLive = (id: string): boolean => {
  // Chains carry the full id in a comment; an 8-character prefix is matched too.
  return [...liveIds()].some((l) => l === id || l.startsWith(id));
};

export function localCleaners(hosts = defaultHostsFile(), resolvConf = '/etc/resolv.conf'): Cleaner[] {
  // iptables, routes and resolv.conf are only ever changed as root (transparent mode).
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  const macos = process.platform === 'darwin' ? [macosAliasCleaner(), macResolverCleaner(isLive)] : process.platform === 'win32' ? [nrptCleaner(isLive)] : [];
  return [...(root ? transparentCleaners(isLive, resolvConf) : []), ...macos, hostsCleaner(isLive, hosts), podenvCleaner(isLive)];
}
