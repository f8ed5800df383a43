// Parses resolv.conf the way the C library's stub resolver does: nameserver lines, the search list
// (or domain), and options ndots/timeout/attempts. Kubernetes writes a pod's resolv.conf from its
// dnsPolicy, so this is where the cluster's DNS server and search list come from.
//
// One extension, for tests and local runs: a nameserver may carry a port, as 127.0.0.1:5300 or
// [::1]:5300.
import { readFile } from 'node:fs/promises';
import { isIP, isIPv4 } from 'node:net';

export interface Nameserver {
  address: string;
  port: number;
}

export interface ResolvConf {
  nameservers: Nameserver[];
  /** Search suffixes, in order, without trailing dots. */
  search: string[];
  /** A name with at least this many dots is tried as-is first. */
  ndots: number;
  /** Per-query timeout. */
  timeoutMs: number;
  /** Rounds over the nameserver list. */
  attempts: number;
}

/** The C library's defaults. */
export const RESOLV_DEFAULTS = {
  nameserver: { address: '127.0.0.1', port: 53 },
  ndots: 1,
  timeoutSeconds: 5,
  attempts: 2,
} as const;

const MAX_NDOTS = 15;
const MAX_TIMEOUT_SECONDS = 30;
const MAX_ATTEMPTS = 5;

/** A nameserver token: an IP literal, 1.2.3.4:53 or [::1]:53; undefined if not one of those. */
export function parseNameserver(token: string): Nameserver | undefined {
  if (isIP(token.split('%')[0] ?? '')) return { address: token, port: 53 };
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(token);
  if (bracketed) {
    const address = bracketed[1] ?? '';
    const port = bracketed[2] === undefined ? 53 : Number(bracketed[2]);
    if (!isIP(address.split('%')[0] ?? '') || port < 1 || port > 65535) return undefined;
    return { address, port };
  }
  const withPort = /^([^:]+):(\d+)$/.exec(token);
  if (withPort && isIPv4(withPort[1] ?? '')) {
    const port = Number(withPort[2]);
    if (port < 1 || port > 65535) return undefined;
    return { address: withPort[1] ?? '', port };
  }
  return undefined;
}

function clampInt(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Math.min(Math.max(Number(text), min), max);
}

/** resolv.conf's settings; the C library's default nameserver when it lists none. */
export function parseResolvConf(text: string): ResolvConf {
  const parsed = parseLines(text);
  return { ...parsed, nameservers: parsed.nameservers.length > 0 ? parsed.nameservers : [{ ...RESOLV_DEFAULTS.nameserver }] };
}

/** The nameservers resolv.conf lists, in order; none when it lists none (no default put in). */
export function listedNameservers(text: string): Nameserver[] {
  return parseLines(text).nameservers;
}

function parseLines(text: string): ResolvConf {
  const nameservers: Nameserver[] = [];
  let search: string[] = [];
  let ndots: number = RESOLV_DEFAULTS.ndots;
  let timeoutSeconds: number = RESOLV_DEFAULTS.timeoutSeconds;
  let attempts: number = RESOLV_DEFAULTS.attempts;

  for (const rawLine of text.split(/\r?\n/)) {
    const tokens: string[] = [];
    for (const token of rawLine.trim().split(/\s+/)) {
      if (token === '') continue;
      if (token.startsWith('#') || token.startsWith(';')) break;
      tokens.push(token);
    }
    const [keyword, ...args] = tokens;
    switch (keyword) {
      case 'nameserver': {
        const server = args[0] === undefined ? undefined : parseNameserver(args[0]);
        if (server) nameservers.push(server);
        break;
      }
      case 'search':
      case 'domain': {
        // The last search or domain line wins; domain is a one-entry search list.
        const names = (keyword === 'domain' ? args.slice(0, 1) : args)
          .map((name) => name.replace(/\.+$/, ''))
          .filter((name) => name !== '');
        search = [...new Set(names)];
        break;
      }
      case 'options':
        for (const option of args) {
          const [name, value] = option.split(':', 2);
          if (name === 'ndots') ndots = clampInt(value, 0, MAX_NDOTS) ?? ndots;
          else if (name === 'timeout') timeoutSeconds = clampInt(value, 1, MAX_TIMEOUT_SECONDS) ?? timeoutSeconds;
          else if (name === 'attempts') attempts = clampInt(value, 1, MAX_ATTEMPTS) ?? attempts;
        }
        break;
      default:
        break;
    }
  }

  return {
    nameservers,
    search,
    ndots,
    timeoutMs: timeoutSeconds * 1000,
    attempts,
  };
}

export async function readResolvConf(path: string): Promise<ResolvConf> {
  return parseResolvConf(await readFile(path, 'utf8'));
}
