// Who may use the dashboard: whoever holds the random token in the URL it printed (as Jupyter
// does), asking by the name it was started on (a page of another site cannot point a name it owns
// at our address and read us: DNS rebinding), and, for anything that changes the cluster, from the
// page itself (Origin equal to ours, token in a header a form cannot send: no CSRF).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_HEADER = 'x-kt-token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export interface Verdict {
  ok: boolean;
  status: 200 | 400 | 401 | 403 | 405;
  reason: string;
}

const OK: Verdict = { ok: true, status: 200, reason: '' };
const deny = (status: Verdict['status'], reason: string): Verdict => ({ ok: false, status, reason });

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The Host values the dashboard answers to: the address it is bound to, and localhost on loopback. */
export function allowedHosts(address: string, port: number): Set<string> {
  const hosts = new Set<string>();
  const add = (h: string): void => { hosts.add(`${h}:${port}`); };
  add(address.includes(':') ? `[${address}]` : address);
  if (address === '127.0.0.1' || address === '::1') { add('localhost'); add('127.0.0.1'); add('[::1]'); }
  return hosts;
}

/**
 * Judges one request. Reads (GET/HEAD) need the token, in the query or the header; writes (POST)
 * need it in the header and an Origin of this very dashboard.
 */
export function checkRequest(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, token: string, hosts: Set<string>): Verdict {
  const host = req.headers.host;
  if (!host || !hosts.has(host.toLowerCase())) return deny(403, 'unknown host');
  const url = new URL(req.url ?? '/', `http://${host}`);
  const header = req.headers[TOKEN_HEADER];
  const fromHeader = typeof header === 'string' ? header : undefined;
  if (req.method === 'GET' || req.method === 'HEAD') {
    return sameToken(fromHeader ?? url.searchParams.get('token') ?? undefined, token) ? OK : deny(401, 'missing or wrong token');
  }
  if (req.method !== 'POST') return deny(405, 'method not allowed');
  if (!sameToken(fromHeader, token)) return deny(401, 'missing or wrong token');
  if (req.headers.origin !== `http://${host}`) return deny(403, 'cross-origin request');
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return deny(400, 'expected application/json');
  return OK;
}
