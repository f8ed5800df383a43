// Address ranges of both families, written the way iptables-save and ip6tables-save print them
// (`10.96.0.0/16`, `fd00:10:96::/112`; a single address gets /32 or /128), so a rule kt planned
// and the same rule read back compare as text. IPv6 text is compressed as RFC 5952 says (Node's
// SocketAddress does it), which is also what the kernel's conntrack tool and `ip -j route` print.
import { BlockList, SocketAddress, isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** The first address as a number (128 bits for IPv6). */
  base: bigint;
  bits: number;
  /** Normalised text: `10.96.0.0/16`, `fd00:10:96::/112`. */
  text: string;
}

/**
 * Never captured, whatever the cluster or the flags say: loopback (the listeners themselves live
 * there) and, for IPv6, link-local (fe80::/10: every interface has its own, and a cluster never
 * owns one).
 */
export const NEVER_CAPTURED: Record<Family, readonly string[]> = {
  4: ['127.0.0.0/8'],
  6: ['::1/128', 'fe80::/10'],
};

const WIDTH: Record<Family, number> = { 4: 32, 6: 128 };

function addressToBigint(address: string, family: Family): bigint {
  if (family === 4) return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  // Expanded by hand: `::` stands for as many zero groups as are missing (an embedded IPv4 tail
  // counts as two groups).
  let text = address;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const n = Number(addressToBigint(v4tail[1]!, 4));
    text = `${text.slice(0, -v4tail[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigintToAddress(n: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** `10.96.7.7/16` as 10.96.0.0/16, `fd00::1` as fd00::1/128; undefined for anything else. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, bitsText, extra] = text.trim().split('/');
  if (address === undefined || extra !== undefined) return undefined;
  const family: Family | undefined = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) return undefined;
  const width = WIDTH[family];
  const bits = bitsText === undefined ? width : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= width)) return undefined;
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - bits)) - 1n);
  const base = addressToBigint(address, family) & mask;
  return { family, base, bits, text: `${bigintToAddress(base, family)}/${bits}` };
}

/** The normalised text of a CIDR of `family` (either when not given); undefined otherwise. */
export function normalizeCidr(text: string, family?: Family): string | undefined {
  const c = parseCidr(text);
  return c && (family === undefined || c.family === family) ? c.text : undefined;
}

export function cidrFamily(text: string): Family | undefined {
  return parseCidr(text)?.family;
}

/** Whether `outer` contains `inner` (equal counts); ranges of two families never do. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.bits > inner.bits) return false;
  return inner.base >> BigInt(WIDTH[outer.family] - outer.bits) === outer.base >> BigInt(WIDTH[outer.family] - outer.bits);
}

/** Whether the address `ip` is inside `cidr` (either family). */
export function ipInCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  const family = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
  if (c === undefined || family !== c.family) return false;
  const list = new BlockList();
  const [network] = c.text.split('/');
  list.addSubnet(network!, c.bits, family === 4 ? 'ipv4' : 'ipv6');
  return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** The address `offset` after the start of `cidr` (the first usable one for 1). */
export function addressInCidr(cidr: string, offset: number): string | undefined {
  const c = parseCidr(cidr);
  return c && bigintToAddress(c.base + BigInt(offset), c.family);
}

/**
 * The range of `prefix` bits around an address (a cover for a range that could not be read
 * exactly): /16 for IPv4, /64 for IPv6 (the size of a node's pod range by default).
 */
export function around(ip: string, prefix: Record<Family, number> = { 4: 16, 6: 64 }): string | undefined {
  const family: Family | undefined = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
  return family && normalizeCidr(`${ip}/${prefix[family]}`);
}

/** The ranges of `family` among `cidrs` that some part of is captured (not wholly inside an `exclude`). */
export function capturedOf(cidrs: readonly string[], exclude: readonly string[], family: Family): string[] {
  const out = exclude.map(parseCidr).filter((c): c is Cidr => c !== undefined);
  return cidrs.map(parseCidr).filter((c): c is Cidr => c?.family === family && !out.some((e) => cidrContains(e, c))).map((c) => c.text);
}
