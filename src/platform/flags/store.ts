import type { Cache } from '../cache/index.ts';
import type { AnyDb } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import type { FlagDefinition } from './definition.ts';
import { allFlags } from './repository.ts';
import type { FlagSettings } from './settings.ts';
import { flagsDb } from './tables.ts';

/** The tag of the flags in the platform's cache: a change invalidates it in every process. */
export const FLAGS_CACHE_TAG = 'flags';

export interface FlagStoreOptions {
  db: AnyDb;
  cache: Cache;
  logger: Logger;
  settings: FlagSettings;
  /** The clock, for tests. */
  now?: () => number;
}

/**
 * Every flag, in two levels: this process's own copy (`FLAGS_LOCAL_TTL_MS`), over the platform's
 * cache (Redis, shared by every process, or in-process without it; tag `flags`), over the
 * database. Flags are few and read on hot paths, so the whole set is cached as one value: one
 * read of the shared cache per process per `FLAGS_LOCAL_TTL_MS`, whatever the traffic.
 * A change (`invalidate`) drops this process's copy and the shared value: other processes see it
 * once their own copy is older than `FLAGS_LOCAL_TTL_MS`.
 */
export class FlagStore {
  readonly #db: AnyDb;
  readonly #cache: Cache;
  readonly #log: Logger;
  readonly #settings: FlagSettings;
  readonly #now: () => number;
  #flags: Map<string, FlagDefinition> | null = null;
  #loadedAt = 0;
  #loading: Promise<Map<string, FlagDefinition>> | null = null;
  /** Bumped by `invalidate`: a load that started before it must not install its (older) result. */
  #generation = 0;
  #failing = false;

  constructor(options: FlagStoreOptions) {
    this.#db = options.db;
    this.#cache = options.cache;
    this.#log = options.logger.child({ component: 'flags' });
    this.#settings = options.settings;
    this.#now = options.now ?? Date.now;
  }

  /** The flag with this key, or undefined. */
  async get(key: string): Promise<FlagDefinition | undefined> {
    return (await this.all()).get(key);
  }

  /** Every flag by key (this process's copy while it is fresh). */
  all(): Promise<Map<string, FlagDefinition>> {
    const flags = this.#flags;
    if (flags && this.#now() - this.#loadedAt < this.#settings.localTtlMs)
      return Promise.resolve(flags);
    // Concurrent evaluations past the deadline share one load.
    if (!this.#loading) {
      const loading = this.#load().finally(() => {
        if (this.#loading === loading) this.#loading = null;
      });
      this.#loading = loading;
    }
    return this.#loading;
  }

  async #load(): Promise<Map<string, FlagDefinition>> {
    const generation = this.#generation;
    try {
      const list = await this.#cache.getOrSet(
        this.#cache.key('flags', 'all'),
        () => allFlags(flagsDb(this.#db)),
        { ttlSeconds: this.#settings.cacheTtlSeconds, tags: [FLAGS_CACHE_TAG] },
      );
      const flags = new Map(list.map((f) => [f.key, f]));
      if (generation === this.#generation) {
        this.#flags = flags;
        this.#loadedAt = this.#now();
      }
      if (this.#failing) this.#log.info('feature flags readable again');
      this.#failing = false;
      return flags;
    } catch (error) {
      // The database is away: keep answering with the last flags known (stale beats every flag
      // falling back to its default at once), and try again after another local TTL.
      if (!this.#failing)
        this.#log.warn({ err: error }, 'feature flags unreadable; answering with the last known');
      this.#failing = true;
      if (this.#flags) {
        this.#loadedAt = this.#now();
        return this.#flags;
      }
      throw error;
    }
  }

  /** After a change committed: drop this process's copy and the shared one (every process). */
  async invalidate(): Promise<void> {
    // The shared copy first: a load that starts after this reads the database.
    await this.#cache.invalidateTag(FLAGS_CACHE_TAG);
    this.#generation += 1;
    this.#flags = null;
    this.#loading = null;
  }
}
