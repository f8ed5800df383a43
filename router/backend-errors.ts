// Backend failures: the one-line text the client gets (502 body, grpc-message) and the
// rate-limited log line the router writes.
import type { Route } from '../contract/index.ts';
import type { Logger } from '../runtime/log.ts';
import { hostPort } from './routes.ts';

/** Where a request was sent: the route (undefined: the default target) and the table's host:port. */
export interface Destination {
  route: Route | undefined;
  host: string;
  port: number;
}

/** Maps a table host:port to the address actually dialled (tests point Service names at loopback). */
export type Dial = (host: string, port: number) => { host: string; port: number };

export const identityDial: Dial = (host, port) => ({ host, port });

/** The shortest useful reason: the error code (ECONNREFUSED, ENOTFOUND, ...), else the message. */
export function errorReason(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: unknown }).cause;
  // HTTP/2 streams cancelled because their session failed carry the session's error as the cause.
  if ((code === 'ERR_HTTP2_STREAM_CANCEL' || code === 'ERR_HTTP2_GOAWAY_SESSION') && cause !== undefined) return errorReason(cause);
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.message : String(err);
}

/** `kt router: version "v1" (session abc by alice) unreachable at host:8080: ECONNREFUSED` */
export function unreachableMessage(dest: Destination, reason: string): string {
  const at = hostPort(dest.host, dest.port);
  if (dest.route === undefined) return `kt router: default target unreachable at ${at}: ${reason}`;
  const { version, session, user } = dest.route;
  return `kt router: version "${version}" (session ${session} by ${user}) unreachable at ${at}: ${reason}`;
}

/**
 * grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export interface FailureLogOptions {
  log: Logger;
  /** At most one line per destination and reason within this window. Default 10000. */
  intervalMs?: number;
  now?: () => number;
}

export interface FailureLog {
  report(dest: Destination, reason: string, protocol: string): void;
}

/**
 * Logs backend failures at warn, at most once per destination and reason per interval; the next
 * line after a quiet spell says how many were left out.
 */
export function createFailureLog(options: FailureLogOptions): FailureLog {
  const { log } = options;
  const interval = options.intervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  const seen = new Map<string, { at: number; suppressed: number }>();
  return {
    report(dest, reason, protocol) {
      const key = `${dest.route?.version ?? ''}\u0000${dest.host}\u0000${dest.port}\u0000${reason}`;
      const t = now();
      const entry = seen.get(key);
      if (entry !== undefined && t - entry.at < interval) {
        entry.suppressed++;
        return;
      }
      if (seen.size > 1000) {
        for (const [k, v] of seen) if (t - v.at >= interval) seen.delete(k);
      }
      seen.set(key, { at: t, suppressed: 0 });
      const fields: Record<string, unknown> = {
        target: hostPort(dest.host, dest.port),
        version: dest.route?.version ?? null,
        reason,
        protocol,
      };
      if (dest.route) {
        fields.session = dest.route.session;
        fields.user = dest.route.user;
      }
      if (entry !== undefined && entry.suppressed > 0) fields.suppressed = entry.suppressed;
      log.warn('backend unreachable', fields);
    },
  };
}
