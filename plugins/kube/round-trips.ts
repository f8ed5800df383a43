// Time to ready, in round trips. At a real distance what a start costs is the number of times the
// laptop sends something and waits for the answer before it can go on, so every exchange with the
// API server and the shadow is recorded as a trip (its interval, and how many round trips it took:
// an API request on a new connection is 3, TCP, TLS and the request; on a kept one 1), tagged with
// the start-up phase it belongs to. Trips that overlap ran at once; the critical path is the chain
// of trips, one after another, with the most round trips (weighted interval scheduling), and
// `--debug` prints it per phase when the session says ready.
import type { Logger } from '../cli/log.ts';

export interface Trip {
  what: string;
  phase: string;
  /** performance.now() */
  start: number;
  end: number | undefined;
  turns: number;
}

interface Phase { name: string; at: number }

const trips: Trip[] = [];
const phases: Phase[] = [];
// Only start-up is of interest: recording stops at the report, and long-lived commands that never
// report (kt-dashboard) stop at a bound.
const MAX_TRIPS = 2000;
let recording = true;

/** The start-up phase running from now on (its trips are tagged with it). */
export function phase(name: string): void {
  phases.push({ name, at: performance.now() });
}

function currentPhase(): string {
  return phases[phases.length - 1]?.name ?? 'start';
}

export function begin(what: string, turns = 1): Trip {
  const t: Trip = { what, phase: currentPhase(), start: performance.now(), end: undefined, turns };
  if (recording && trips.length < MAX_TRIPS) trips.push(t);
  return t;
}

export function finish(t: Trip, extraTurns = 0): void {
  if (t.end !== undefined) return;
  t.end = performance.now();
  t.turns += extraTurns;
}

/** Times one exchange: `turns` round trips from now until `p` settles. */
export async function timed<T>(what: string, turns: number, p: Promise<T> | (() => Promise<T>)): Promise<T> {
  const t = begin(what, turns);
  try {
    return await (typeof p === 'function' ? p() : p);
  } finally {
    finish(t);
  }
}

/** A new connection (TCP and TLS handshakes) was made for the requests of `waiting` still waiting. */
function connectionMade(waiting: Set<Trip>): void {
  for (const t of waiting) if (t.end === undefined) t.turns += 2;
}

/**
 * Counts round trips on a byte stream (the SSH handshake over the port-forward): each time data
 * arrives after the laptop sent something, one more round trip passed.
 */
export function turnCounter(what: string): { out(): void; in(): void; done(): void } {
  const t = begin(what, 0);
  let sent = false;
  return {
    out: () => { sent = true; },
    in: () => { if (sent && t.end === undefined) { t.turns++; sent = false; } },
    done: () => finish(t),
  };
}

type Dispatch = (opts: { method?: string; path?: string; origin?: unknown }, handler: object) => boolean;
interface Composable {
  compose(interceptor: (dispatch: Dispatch) => Dispatch): unknown;
  on(event: 'connect', fn: () => void): unknown;
}

/**
 * Records every request an undici dispatcher sends, from dispatch to its response head (a watch
 * counts until its first answer, not its events), and the connections it opens.
 */
export function instrumentDispatcher<T>(d: T): T {
  const c = d as unknown as Composable;
  const waiting = new Set<Trip>();
  c.on('connect', () => connectionMade(waiting));
  return c.compose((dispatch) => (opts, handler) => {
    const path = (opts.path ?? '').split('?')[0]!.replace(/^\/apis?\/(?:[^/]+\/)?v\d[^/]*\//, '').replace(/^namespaces\/[^/]+\//, '');
    const t = begin(`${opts.method ?? 'GET'} ${path}`);
    waiting.add(t);
    const h = handler as Record<string, unknown>;
    const wrapped = Object.create(h) as Record<string, unknown>;
    for (const name of ['onResponseStart', 'onHeaders', 'onResponseError', 'onError']) {
      const fn = h[name];
      if (typeof fn !== 'function') continue;
      wrapped[name] = (...args: unknown[]): unknown => { finish(t); waiting.delete(t); return (fn as (...a: unknown[]) => unknown).apply(h, args); };
    }
    return dispatch(opts, wrapped);
  }) as T;
}

/** The chain of trips, one after another, with the most round trips. */
export function criticalPath(until = performance.now()): { turns: number; chain: Trip[] } {
  const done = trips.filter((t): t is Trip & { end: number } => t.end !== undefined && t.end <= until && t.turns > 0)
    .sort((a, b) => a.end - b.end);
  const best: number[] = [];
  const pick: (number | undefined)[] = [];
  const prev: number[] = [];
  for (let i = 0; i < done.length; i++) {
    let j = i - 1;
    while (j >= 0 && done[j]!.end > done[i]!.start) j--;
    prev[i] = j;
    const take = done[i]!.turns + (j >= 0 ? best[j]! : 0);
    const skip = i > 0 ? best[i - 1]! : 0;
    best[i] = Math.max(take, skip);
    pick[i] = take >= skip ? i : undefined;
  }
  const chain: Trip[] = [];
  for (let i = done.length - 1; i >= 0;) {
    if (pick[i] === undefined) { i--; continue; }
    chain.unshift(done[i]!);
    i = prev[i]!;
  }
  return { turns: best[done.length - 1] ?? 0, chain };
}

/** One debug line per phase (its wall time and the round trips it adds to the critical path), then the total. */
export function reportCriticalPath(log: Logger, what: string): void {
  recording = false;
  const now = performance.now();
  const { turns, chain } = criticalPath(now);
  const ms = (x: number): string => `${Math.round(x)} ms`;
  log.debug(`${what}: ready ${ms(now)} after the process started; ${turns} round trips on the critical path`);
  const bounds = [{ name: 'process start (Node, modules, flags)', at: 0 }, ...phases];
  for (let i = 0; i < bounds.length; i++) {
    const p = bounds[i]!;
    const end = bounds[i + 1]?.at ?? now;
    const mine = chain.filter((t) => t.phase === p.name || (i === 0 && !phases.some((x) => x.name === t.phase)));
    const n = mine.reduce((a, t) => a + t.turns, 0);
    const detail = mine.map((t) => `${t.what}${t.turns > 1 ? ` x${t.turns}` : ''} ${ms(t.end! - t.start)}`).join(', ');
    log.debug(`  ${p.name}: ${ms(end - p.at)}, ${n} round trip${n === 1 ? '' : 's'}${detail ? ` (${detail})` : ''}`);
  }
}

/** For tests of this module. */
export function resetRoundTrips(): void {
  trips.length = 0;
  phases.length = 0;
  recording = true;
}
