// A bounded cache whose entries expire after their own TTL; least recently used goes first when
// full. Counts hits and misses.

export interface CacheStats {
  hits: number;
  misses: number;
  /** Entries dropped to make room (not those that expired). */
  evictions: number;
  size: number;
}

export interface CacheHit<V> {
  value: V;
  /** How long ago the value was stored, to age the TTLs handed out. */
  ageMs: number;
}

interface Entry<V> {
  value: V;
  storedAt: number;
  expiresAt: number;
}

export interface TtlCacheOptions {
  /** Default 10 000. */
  maxEntries?: number;
  /** Milliseconds clock, for tests. Default Date.now. */
  now?: () => number;
}

export const DEFAULT_CACHE_ENTRIES = 10_000;

export class TtlCache<V> {
  readonly maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry<V>>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: TtlCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_CACHE_ENTRIES);
    this.#now = options.now ?? Date.now;
  }

  /** The live value under `key`, counting a hit; else undefined, counting a miss. */
  get(key: string): CacheHit<V> | undefined {
    const entry = this.#entries.get(key);
    const now = this.#now();
    if (entry === undefined || entry.expiresAt <= now) {
      if (entry !== undefined) this.#entries.delete(key);
      this.#misses++;
      return undefined;
    }
    // Map order is recency order: move the entry to the back.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#hits++;
    return { value: entry.value, ageMs: now - entry.storedAt };
  }

  /** Stores `value` for `ttlSeconds`; a TTL of 0 or less stores nothing (and drops any old value). */
  set(key: string, value: V, ttlSeconds: number): void {
    this.#entries.delete(key);
    if (!(ttlSeconds > 0)) return;
    const now = this.#now();
    while (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
      this.#evictions++;
    }
    this.#entries.set(key, { value, storedAt: now, expiresAt: now + ttlSeconds * 1000 });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, evictions: this.#evictions, size: this.#entries.size };
  }
}
