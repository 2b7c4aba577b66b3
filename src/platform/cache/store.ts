/**
 * Where cached values live. Values are JSON text; the cache layer above handles keys, metrics,
 * single-flight and failures. The in-process store answers synchronously and never throws; the
 * Redis store returns promises that reject when Redis does not answer.
 */
export interface CacheStore {
  readonly backend: 'memory' | 'redis';
  get(key: string): string | undefined | Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number, tags: readonly string[]): void | Promise<void>;
  delete(keys: readonly string[]): void | Promise<void>;
  invalidateTags(tags: readonly string[]): void | Promise<void>;
  /** Calls `listener` once, the next time the backend (re)connects; returns the unsubscribe function. */
  onReconnect?(listener: () => void): () => void;
  /** Drops local state (the in-process entries); never closes a shared connection. */
  close(): void;
}
