// A VPN (or any other interface) may already own part of a cluster range: capturing that part
// would silently take its traffic away, the classic "connected, but nothing routes". Before any
// rule exists, the ranges are compared with the machine's routes (`ip -j route show table all`,
// policy tables included, where WireGuard and Tailscale put theirs):
//   - a route of another interface strictly inside a range: that part is left out (a RETURN rule,
//     like --exclude-cidr), with one line naming it; `--include-cidr <that route>` forces it;
//   - a route of another interface covering a whole range (the default route aside): refused,
//     naming the route; `--include-cidr <the range>` forces it, `--exclude-cidr <the range>` drops it.
// Routes via lo are kt's own (routes.ts) or the machine's local ones, never a clash. IPv6 ranges
// are checked against IPv6 routes the same way (`ip -6`); link-local routes (fe80::/64 on every
// interface) never count, as kt never captures link-local.
import { cidrContains, NEVER_CAPTURED, normalizeCidr, parseCidr, type Cidr } from './cidr.ts';

/** One route of `ip -j route`, as far as the clash check needs it. */
export interface SystemRoute {
  dst: string;
  dev?: string;
  type?: string;
  table?: string;
  gateway?: string;
}

type Net = Cidr;
const toNet = parseCidr;
const contains = cidrContains;
const linkLocal = parseCidr(NEVER_CAPTURED[6][1]!)!;

/** The routes of `ip -j route show table all` output (either family) that can clash: unicast, not lo, not default, not link-local. */
export function parseIpRoutes(json: string): SystemRoute[] {
  let rows: unknown;
  try { rows = JSON.parse(json); } catch { return []; }
  if (!Array.isArray(rows)) return [];
  const out: SystemRoute[] = [];
  for (const r of rows as Record<string, unknown>[]) {
    const dst = typeof r.dst === 'string' ? r.dst : '';
    const type = typeof r.type === 'string' ? r.type : 'unicast';
    const dev = typeof r.dev === 'string' ? r.dev : undefined;
    const net = toNet(dst);
    if (type !== 'unicast' || dev === 'lo' || dst === 'default' || net === undefined || contains(linkLocal, net)) continue;
    out.push({
      dst, dev, type,
      ...(typeof r.table === 'string' ? { table: r.table } : {}),
      ...(typeof r.gateway === 'string' ? { gateway: r.gateway } : {}),
    });
  }
  return out;
}

/** A route as `ip route` prints it, for messages. */
export function describeRoute(r: SystemRoute): string {
  const dst = normalizeCidr(r.dst) ?? r.dst;
  return [dst, r.gateway ? `via ${r.gateway}` : '', r.dev ? `dev ${r.dev}` : '', r.table && r.table !== 'main' ? `table ${r.table}` : '']
    .filter((s) => s !== '').join(' ');
}

export interface ClashInput {
  /** The ranges learned from the cluster. */
  ranges: readonly string[];
  /** --include-cidr: captured too, and the way to force a clash. */
  include: readonly string[];
  /** --exclude-cidr and the API server: never captured. */
  exclude: readonly string[];
  routes: readonly SystemRoute[];
}

export interface ClashPlan {
  /** The ranges to capture (learned and included, once each). */
  cidrs: string[];
  /** Parts left out because another interface owns them: excluded like --exclude-cidr. */
  leftOut: string[];
  /** One line per left-out or forced part. */
  lines: string[];
  /** When set, transparent mode must not start: one sentence naming the conflicting route. */
  refusal?: string;
}

export function planCapture(input: ClashInput): ClashPlan {
  const nets = (l: readonly string[]): Net[] => l.map(toNet).filter((n): n is Net => n !== undefined);
  const include = nets(input.include);
  const exclude = nets(input.exclude);
  const named = (n: Net): boolean => include.some((i) => i.text === n.text);
  const excluded = (n: Net): boolean => exclude.some((e) => contains(e, n));
  const cidrs = [...new Set([...input.ranges, ...input.include])];
  const leftOut: string[] = [];
  const lines: string[] = [];
  for (const text of cidrs) {
    const range = toNet(text);
    if (range === undefined || excluded(range)) continue; // left out already
    for (const route of input.routes) {
      const r = toNet(route.dst);
      if (r === undefined || r.bits === 0 || excluded(r)) continue;
      if (contains(r, range)) {
        if (named(range)) {
          lines.push(`capturing ${range.text} although the route ${describeRoute(route)} covers it (named by --include-cidr)`);
          continue;
        }
        return {
          cidrs, leftOut, lines,
          refusal: `the cluster range ${range.text} lies inside the route ${describeRoute(route)} of another interface (a VPN?), so capturing it would take that traffic away; pass --include-cidr ${range.text} to capture it anyway, or --exclude-cidr ${range.text} to leave it out.`,
        };
      }
      if (contains(range, r)) {
        // A named part is captured by its own entry, which says so.
        if (!named(r) && !leftOut.includes(r.text)) {
          leftOut.push(r.text);
          lines.push(`leaving ${r.text} out of ${range.text}: the route ${describeRoute(route)} claims it (a VPN?); pass --include-cidr ${r.text} to send it to the cluster anyway`);
        }
      }
    }
  }
  return { cidrs, leftOut, lines };
}
