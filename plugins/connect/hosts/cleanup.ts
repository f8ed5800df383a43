// Hosts mode's crash cleanup: the kt sections that dead sessions left in the hosts file.
import { readFile } from 'node:fs/promises';
import type { Cleaner } from '../mode.ts';
import { listKtSessions, removeStaleHostsSections } from './hosts-file.ts';

export function hostsCleaner(isLive: (sessionId: string) => boolean, path: string): Cleaner {
  return async (dryRun) => {
    const text = await readFile(path, 'latin1').catch(() => undefined);
    if (!text) return [];
    const stale = listKtSessions(text).filter((id) => !isLive(id));
    if (stale.length === 0) return [];
    if (dryRun) return stale.map((id) => `would remove the kt section of session ${id} from ${path}`);
    await removeStaleHostsSections(path, (id) => !isLive(id));
    return stale.map((id) => `removed the kt section of session ${id} from ${path}`);
  };
}
