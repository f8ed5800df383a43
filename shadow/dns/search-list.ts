// Search-list expansion as a stub resolver does it: which fully qualified names to try, in order,
// for a name as typed.

export interface SearchOptions {
  /** Search suffixes, in order (no trailing dots). */
  search: readonly string[];
  /** A name with at least this many dots is tried as-is first, else last. */
  ndots: number;
  /**
   * The cluster domain (e.g. cluster.local). A name inside it is already fully qualified
   * (echo.ns.svc.cluster.local) and is tried as-is only, never with a suffix appended.
   */
  clusterDomain?: string;
}

/** DNS names are at most 253 characters in text form. */
const MAX_NAME = 253;

/** Whether `name` is `domain` or below it, ignoring case. */
export function isWithin(name: string, domain: string): boolean {
  const n = name.toLowerCase();
  const d = domain.toLowerCase();
  return d !== '' && (n === d || n.endsWith(`.${d}`));
}

/** Reverse-lookup names are never expanded. */
export function isReverseName(name: string): boolean {
  return isWithin(name, 'in-addr.arpa') || isWithin(name, 'ip6.arpa');
}

/**
 * The names to try for `name`, in order. A trailing dot marks a name as absolute: it is tried
 * as-is only. Otherwise a name with fewer than ndots dots is tried with each search suffix, then
 * as-is; a name with ndots or more dots as-is first, then with each suffix.
 */
export function searchCandidates(name: string, options: SearchOptions): string[] {
  const absolute = name.endsWith('.');
  const bare = name.replace(/\.+$/, '');
  if (absolute || bare === '' || isReverseName(bare)) return [bare];
  if (options.clusterDomain && isWithin(bare, options.clusterDomain)) return [bare];

  const suffixed = options.search.filter((suffix) => suffix !== '').map((suffix) => `${bare}.${suffix}`);
  const dots = bare.split('.').length - 1;
  const ordered = dots >= options.ndots ? [bare, ...suffixed] : [...suffixed, bare];

  const seen = new Set<string>();
  const out: string[] = [];
  for (const candidate of ordered) {
    const key = candidate.toLowerCase();
    if (seen.has(key) || candidate.length > MAX_NAME) continue;
    seen.add(key);
    out.push(candidate);
  }
  return out;
}
