// An --include-cidr that covers the API server's address would send kt's own connection to the
// cluster into the cluster: refused before anything exists, in one sentence naming both.
import { BlockList, isIP } from 'node:net';
import { UserError } from '../../cli/errors.ts';
import { apiServerAddresses } from './cluster-ranges.ts';

/** The sentence for the first included range that holds one of `servers`, or undefined. */
export function includeCoversApiServer(include: readonly string[], servers: readonly string[]): string | undefined {
  for (const range of include) {
    const [network, bitsText] = range.split('/');
    const family = isIP(network ?? '');
    if (family === 0) continue;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const list = new BlockList();
    try {
      list.addSubnet(network!, bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText), type);
    } catch {
      continue; // not a CIDR: the flag check says so
    }
    const hit = servers.find((s) => isIP(s) === family && list.check(s, type));
    if (hit !== undefined) {
      return `--include-cidr ${range} covers the API server's address ${hit}, and capturing it would cut kt's own connection to the cluster; name a range without it.`;
    }
  }
  return undefined;
}

/** Throws the one-sentence refusal when an --include-cidr covers the API server of `server` (its URL). */
export async function refuseIncludedApiServer(include: readonly string[], server: string): Promise<void> {
  if (include.length === 0) return;
  const refusal = includeCoversApiServer(include, await apiServerAddresses(server));
  if (refusal !== undefined) throw new UserError(refusal, 2);
}
