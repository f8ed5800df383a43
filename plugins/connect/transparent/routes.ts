// Transparent mode redirects in the nat OUTPUT chain, which runs after the kernel has chosen a
// route: a machine with no route to a cluster range (no default route, say) fails the connect
// before the redirect can happen. For such ranges kt adds a route via lo for the session.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../../cli/log.ts';
import { addressInCidr } from './cidr.ts';
import { parseIpRoutes, type SystemRoute } from './route-clash.ts';

const run = promisify(execFile);

/** The machine's IPv4 and IPv6 routes in every table, for the clash check; none of a family `ip` cannot tell. */
export async function systemRoutes(log: Pick<Logger, 'debug'>): Promise<SystemRoute[]> {
  const family = async (flag: '-4' | '-6'): Promise<SystemRoute[]> => {
    try {
      const { stdout } = await run('ip', ['-j', flag, 'route', 'show', 'table', 'all']);
      return parseIpRoutes(stdout);
    } catch (e) {
      log.debug(`cannot read the ${flag === '-4' ? 'IPv4' : 'IPv6'} routes (${(e as Error).message}); no clash check for them`);
      return [];
    }
  };
  return [...await family('-4'), ...await family('-6')];
}

function firstAddress(cidr: string): string {
  return addressInCidr(cidr, 1) ?? cidr.split('/')[0]!;
}

async function hasRoute(ip: string): Promise<boolean> {
  try {
    await run('ip', ['route', 'get', ip]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds `CIDR dev lo` for each range that has no route. Each added range is pushed to `added` as
 * soon as it exists, so the caller's undo (registered before) removes exactly those, even when a
 * later one fails.
 */
export async function ensureRoutes(cidrs: readonly string[], added: string[]): Promise<void> {
  for (const c of cidrs) {
    if (await hasRoute(firstAddress(c))) continue;
    await run('ip', ['route', 'add', c, 'dev', 'lo']);
    added.push(c);
  }
}

export async function removeRoutes(added: readonly string[]): Promise<void> {
  for (const c of added) await run('ip', ['route', 'del', c, 'dev', 'lo']).catch(() => undefined);
}
