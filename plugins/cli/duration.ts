// Durations as people write and read them: 90s, 5m, 1h.
import { UserError } from './errors.ts';

/**
 * A duration in ms: 90s, 5m, 1h, 1m30s, 500ms (Go's form, as kubectl reads its durations); a plain
 * number is seconds. `flag` names the flag it came from in the error, `min` the least allowed.
 */
export function parseDuration(text: string, flag?: string, min = 0): number {
  const what = flag ? `--${flag} ` : '';
  const ms = goDuration(text);
  if (ms === undefined) throw new UserError(`${what}"${text}" is not a duration; use e.g. 90s, 5m or 1h.`, 2);
  if (ms < min) throw new UserError(`${what}must be at least ${formatDuration(min)}, not "${text}".`, 2);
  return ms;
}

/** A plain number of seconds, or Go duration units one after another; undefined if neither. */
function goDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const parts = t.match(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g);
  if (t === '' || !parts || parts.join('') !== t) return undefined;
  let ms = 0;
  for (const p of parts) {
    const m = /^(.+?)(ns|us|µs|ms|s|m|h)$/.exec(p)!;
    ms += Number(m[1]) * GO_UNITS[m[2]!]!;
  }
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
