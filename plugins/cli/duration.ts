// Durations as people write and read them: 90s, 5m, 1h.
import { UserError } from './errors.ts';

/** A duration in ms; `flag` names the flag it came from in the error, `min` the least allowed. */
export function parseDuration(text: string, flag?: string, min = 0): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const what = flag ? `--${flag} ` : '';
  if (!m) throw new UserError(`${what}"${text}" is not a duration; use e.g. 90s, 5m or 1h.`, 2);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
  if (ms < min) throw new UserError(`${what}must be at least ${formatDuration(min)}, not "${text}".`, 2);
  return ms;
}

/**
 * The least --recover-after: a laptop whose port-forward was cut reconnects within a few seconds
 * (with backoff); a shorter wait would undo a session that is only reconnecting.
 */
export const MIN_RECOVER_AFTER_MS = 5_000;

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  return `${Math.round(m / 60)}h`;
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * kubectl's --request-timeout, in ms (0: none): a plain integer is seconds, else a Go duration
 * (`1s`, `2m`, `1m30s`, `500ms`), as clientcmd's ParseTimeout reads it.
 */
export function parseRequestTimeout(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const parts = t.match(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g);
  if (t === '' || !parts || parts.join('') !== t) {
    throw new UserError(`--request-timeout "${text}" is not a timeout; use a number of seconds, or a number with a unit (1s, 2m, 3h).`, 2);
  }
  let ms = 0;
  for (const p of parts) {
    const m = /^(.+?)(ns|us|µs|ms|s|m|h)$/.exec(p)!;
    ms += Number(m[1]) * GO_UNITS[m[2]!]!;
  }
  return ms;
}
