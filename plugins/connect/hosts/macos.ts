// Hosts mode on macOS: lo0 answers only on 127.0.0.1 until an address is aliased, so each
// Service's loopback address is aliased while the session runs (`ifconfig lo0 alias`, root) and
// un-aliased when it ends; the aliases are kept in the session's local record, so kt-clean can
// remove those of a session that died.
import type { Cleaner } from '../mode.ts';
import { listLocalSessions, processAlive } from '../../session/local-state.ts';
import { runSteps, type OsPlan, type OsSteps } from '../os-plan.ts';

/** The local record's key for the aliases a session holds. */
export const ALIASES_KEY = 'loopbackAliases';

export function loopbackAliasPlan(ip: string): OsPlan {
  return {
    apply: { commands: [{ argv: ['ifconfig', 'lo0', 'alias', ip, 'up'], admin: true }], write: [], remove: [] },
    undo: { commands: [{ argv: ['ifconfig', 'lo0', '-alias', ip], admin: true }], write: [], remove: [] },
  };
}

/** The addAlias/removeAlias hooks of hosts mode on macOS, recording the aliases held. */
export function macosAliasHooks(record: (details: Record<string, unknown>) => void, runner: (steps: OsSteps) => Promise<void> = runSteps): {
  addAlias: (ip: string) => Promise<void>;
  removeAlias: (ip: string) => Promise<void>;
} {
  const held = new Set<string>();
  return {
    addAlias: async (ip) => {
      // Recorded before it exists: kt-clean's undo of an alias that never came is harmless.
      held.add(ip);
      record({ [ALIASES_KEY]: [...held] });
      await runner(loopbackAliasPlan(ip).apply);
    },
    removeAlias: async (ip) => {
      await runner(loopbackAliasPlan(ip).undo);
      held.delete(ip);
      record({ [ALIASES_KEY]: [...held] });
    },
  };
}

/** The aliases dead sessions left, from their local records. */
export function staleAliases(records: readonly { id: string; alive: boolean; details: Record<string, unknown> }[]): { id: string; ip: string }[] {
  return records.filter((r) => !r.alive).flatMap((r) => {
    const ips = r.details[ALIASES_KEY];
    return Array.isArray(ips) ? ips.filter((ip): ip is string => typeof ip === 'string' && /^127\.\d+\.\d+\.\d+$/.test(ip)).map((ip) => ({ id: r.id, ip })) : [];
  });
}

export function macosAliasCleaner(): Cleaner {
  return async (dryRun) => {
    const stale = staleAliases(listLocalSessions().map((s) => ({ id: s.id, alive: processAlive(s.pid), details: s.details })));
    const out: string[] = [];
    for (const { id, ip } of stale) {
      if (!dryRun) await runSteps(loopbackAliasPlan(ip).undo).catch(() => undefined);
      out.push(`${dryRun ? 'would remove' : 'removed'} the loopback alias ${ip} on lo0 (session ${id})`);
    }
    return out;
  };
}
