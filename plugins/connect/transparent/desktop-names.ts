// Cluster names on macOS and Windows (process.platform checks in start.ts): the plans of
// resolver-macos.ts and resolver-windows.ts, carried out with their undo registered first. Linux
// points resolv.conf at the local DNS server instead (resolver-config.ts).
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../../cli/errors.ts';
import { NO_STEPS, runSteps, type OsPlan } from '../os-plan.ts';
import { macResolverPlan } from './resolver-macos.ts';
import { nrptPlan } from './resolver-windows.ts';

export interface DesktopNamesInput {
  sessionId: string;
  clusterDomain: string;
  namespaces: readonly string[];
  /** The local DNS server's port (Windows: 53 only). */
  port: number;
  isLive: (sessionId: string) => boolean;
}

export function desktopNamesPlan(platform: NodeJS.Platform, input: DesktopNamesInput, existing: (path: string) => string | undefined): OsPlan {
  const r = platform === 'darwin'
    ? macResolverPlan({ ...input, existing })
    : platform === 'win32'
      ? input.port === 53 ? nrptPlan({ ...input, nameserver: '127.0.0.1' }) : { error: 'on Windows the local DNS server must listen on port 53: a name resolution policy cannot name another port.' }
      : { plan: { apply: NO_STEPS, undo: NO_STEPS } };
  if ('error' in r) throw new UserError(r.error);
  return r.plan;
}

/** Carries out the plan; `defer` gets the undo before anything is changed. */
export async function wireDesktopNames(platform: NodeJS.Platform, input: DesktopNamesInput, defer: (what: string, undo: () => Promise<void>) => void): Promise<void> {
  const plan = desktopNamesPlan(platform, input, (p) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined));
  defer(platform === 'darwin' ? 'remove the /etc/resolver files' : 'remove the name resolution policy rule', () => runSteps(plan.undo));
  await runSteps(plan.apply);
}
