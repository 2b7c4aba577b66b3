import { randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { fastCounter, type FastCounter, type Logger } from '../observability/index.ts';
import type { Redis } from '../redis/index.ts';
import { cacheKey, namespaceOf, userCacheKey, type CacheKey, type KeyPart } from './keys.ts';
import { MemoryStore } from './memory-store.ts';
import { NearCache, type Fill, type NearCacheSettings, type NearState } from './near.ts';
import { RedisStore, type StoredEntry } from './redis-store.ts';
import type { CacheStore } from './store.ts';

export interface CacheOptions {
  /** The process's Redis client (`connectRedis`); null: an in-process LRU, private to this process. */
  redis: Redis | null;
  logger: Logger;
  /** Registry for the cache metrics; none when absent. */
  metrics?: Registry;
  /** Namespace of the cache's Redis keys, under the client's own prefix. Default `cache:`. */
  keyPrefix?: string;
  /** In-process backend: most entries kept. Default 10,000. */
  maxEntries?: number;
  /** In-process backend: most bytes kept (keys and values, two bytes a character). Default 64 MiB. */
  maxBytes?: number;
  /**
   * With Redis: an in-process near cache in front of it, kept coherent across processes by
   * pub/sub (`config.cache.near`). Absent or disabled: every lookup reads Redis.
   */
  near?: NearCacheSettings;
}

export interface CacheSetOptions {
  /** How long the value may be served; also the longest a lost invalidation can leave it stale. */
  ttlSeconds: number;
  /** Tags to invalidate it by, such as `user:42` (`userTag(42)`) or `product:7`. */
  tags?: readonly string[];
}

/** A JSON cache: Redis shared by every process, or an in-process LRU when there is no Redis. */
export interface Cache {
  readonly backend: 'memory' | 'redis';
  /** A key for data that is the same for every caller: see `cacheKey`. */
  key(namespace: string, ...parts: KeyPart[]): CacheKey;
  /** A key only this user can reach; required for anything that depends on who asks. */
  userKey(userId: KeyPart, namespace: string, ...parts: KeyPart[]): CacheKey;
  /** The cached value, or undefined on a miss (and when the backend does not answer). */
  get<T>(key: CacheKey): Promise<T | undefined>;
  /**
   * `get` answered at once, when the backend is in process: `{ value }` (value undefined on a
   * miss), counted like `get`. Undefined when the backend can only answer asynchronously (Redis):
   * then call `get`. For hot paths that should not make a promise per call.
   */
  peek<T>(key: CacheKey): { value: T | undefined } | undefined;
  /** Stores `value` (JSON-serialised; undefined is refused) for `ttlSeconds`. */
  set(key: CacheKey, value: unknown, options: CacheSetOptions): Promise<void>;
  /**
   * The cached value, or `compute()`'s result, stored unless it is undefined. Concurrent misses for
   * one key in this process run `compute` once; if it throws, every waiter gets the error and
   * nothing is cached.
   */
  getOrSet<T>(key: CacheKey, compute: () => T | Promise<T>, options: CacheSetOptions): Promise<T>;
  /** Removes keys. */
  delete(...keys: CacheKey[]): Promise<void>;
  /** Removes every value stored with this tag. */
  invalidateTag(tag: string): Promise<void>;
  /** Removes every value stored with any of these tags. */
  invalidateTags(tags: readonly string[]): Promise<void>;
  /**
   * The near cache in front of Redis: `off` (none), `healthy` (answering from process memory),
   * `connecting` or `fallback` (invalidation channel not known healthy: bypassed).
   */
  readonly near: NearState | 'off';
  /**
   * Drops in-process entries and listeners, and the near cache's subscriber connection; does not
   * close the Redis client (its owner does).
   */
  close(): void;
}

const MAX_TTL_SECONDS = 30 * 24 * 3600;
const MAX_TAGS = 32;
const MAX_TAG_LENGTH = 256;
/** Invalidations that failed while Redis was away, replayed when it is back; oldest dropped. */
const MAX_PENDING_INVALIDATIONS = 10_000;
/** While the backend keeps failing, one warning per this many milliseconds. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

type Operation = 'get' | 'set' | 'delete' | 'invalidate';
type Result = 'hit' | 'near-hit' | 'miss' | 'coalesced';

interface CacheMetrics {
  requests: FastCounter<'namespace' | 'result'>;
  errors: Counter<'operation'>;
}

/** A metric of this name already in the registry (a second cache on it), or a new one. */
function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function checkOptions(options: CacheSetOptions): number {
  const { ttlSeconds, tags = [] } = options;
  if (!(Number.isFinite(ttlSeconds) && ttlSeconds > 0 && ttlSeconds <= MAX_TTL_SECONDS))
    throw new RangeError(`cache ttlSeconds must be above 0 and at most ${MAX_TTL_SECONDS}`);
  if (tags.length > MAX_TAGS) throw new RangeError(`a cache entry takes at most ${MAX_TAGS} tags`);
  for (const tag of tags) checkTag(tag);
  return Math.max(1, Math.ceil(ttlSeconds * 1000));
}

function checkTag(tag: string): void {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH)
    throw new RangeError(`a cache tag is a string of 1 to ${MAX_TAG_LENGTH} characters`);
}

function serialize(value: unknown): string {
  const json: unknown = JSON.stringify(value);
  if (typeof json !== 'string') throw new TypeError('cache values must be JSON-serialisable');
  return json;
}

class CacheImpl implements Cache {
  readonly #store: CacheStore;
  /** With a near cache: the Redis store behind it (read with expiry and tags). */
  readonly #redis: RedisStore | undefined;
  readonly #near: NearCache | undefined;
  readonly #log: Logger;
  readonly #metrics: CacheMetrics | undefined;
  /** The counter of each namespace and result, made once (on the path of every lookup). */
  readonly #counted = new Map<string, Partial<Record<Result, { inc(): void }>>>();
  readonly #flights = new Map<string, Promise<unknown>>();
  /** Keyed `k:<key>` / `t:<tag>`; insertion order is age. */
  readonly #pending = new Map<string, { kind: 'key' | 'tag'; name: string }>();
  /** Set while failed invalidations wait for the backend to reconnect. */
  #unsubscribe: (() => void) | undefined;
  #failing = false;
  #failures = 0;
  #lastWarnAt = 0;

  constructor(
    store: CacheStore,
    logger: Logger,
    metrics: CacheMetrics | undefined,
    near?: { redis: RedisStore; near: NearCache },
  ) {
    this.#store = store;
    this.#redis = near?.redis;
    this.#near = near?.near;
    this.#log = logger;
    this.#metrics = metrics;
  }

  get backend(): 'memory' | 'redis' {
    return this.#store.backend;
  }

  get near(): NearState | 'off' {
    return this.#near?.state ?? 'off';
  }

  key(namespace: string, ...parts: KeyPart[]): CacheKey {
    return cacheKey(namespace, ...parts);
  }

  userKey(userId: KeyPart, namespace: string, ...parts: KeyPart[]): CacheKey {
    return userCacheKey(userId, namespace, ...parts);
  }

  peek<T>(key: CacheKey): { value: T | undefined } | undefined {
    const near = this.#near;
    if (near !== undefined) {
      const raw = near.get(key);
      if (raw === undefined) return undefined;
      const value = this.#parse<T>(raw);
      this.#count(key, 'near-hit');
      return { value };
    }
    if (this.#store.backend !== 'memory') return undefined;
    const raw = this.#store.get(key) as string | undefined;
    const value = raw === undefined ? undefined : this.#parse<T>(raw);
    this.#count(key, value === undefined ? 'miss' : 'hit');
    return { value };
  }

  async get<T>(key: CacheKey): Promise<T | undefined> {
    const near = this.#near;
    if (near !== undefined) {
      const held = near.get(key);
      if (held !== undefined) {
        this.#count(key, 'near-hit');
        return this.#parse<T>(held);
      }
      const fill = near.begin(key);
      try {
        const found = await this.#readNear(near, fill);
        const value = found === undefined ? undefined : this.#parse<T>(found);
        this.#count(key, value === undefined ? 'miss' : 'hit');
        return value;
      } finally {
        near.end(fill);
      }
    }
    const raw = this.#store.get(key);
    const found = typeof raw === 'object' ? await this.#read(raw) : raw;
    const value = found === undefined ? undefined : this.#parse<T>(found);
    this.#count(key, value === undefined ? 'miss' : 'hit');
    return value;
  }

  async set(key: CacheKey, value: unknown, options: CacheSetOptions): Promise<void> {
    const ttlMs = checkOptions(options);
    if (value === undefined) throw new TypeError('cache values cannot be undefined');
    const json = serialize(value);
    const tags = options.tags ?? [];
    const near = this.#near;
    if (near === undefined) {
      await this.#write(key, json, ttlMs, tags);
      return;
    }
    // Our own copy goes first; the write announces the overwrite to the other processes.
    near.dropKeys([key]);
    const fill = near.begin(key, tags);
    try {
      if (await this.#write(key, json, ttlMs, tags))
        near.keep(fill, json, Date.now() + ttlMs, tags);
    } finally {
      near.end(fill);
    }
  }

  getOrSet<T>(key: CacheKey, compute: () => T | Promise<T>, options: CacheSetOptions): Promise<T> {
    let ttlMs: number;
    try {
      ttlMs = checkOptions(options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const flight = this.#flights.get(key);
    if (flight !== undefined) {
      this.#count(key, 'coalesced');
      return flight as Promise<T>;
    }
    const near = this.#near;
    if (near !== undefined) {
      const held = near.get(key);
      if (held !== undefined) {
        const value = this.#parse<T>(held);
        if (value !== undefined) {
          this.#count(key, 'near-hit');
          return Promise.resolve(value);
        }
      }
      return this.#fly(key, this.#fillNear(near, key, compute, ttlMs, options.tags ?? []));
    }
    const raw = this.#store.get(key);
    if (typeof raw === 'string') {
      // The in-process store answers synchronously: a hit needs no flight.
      const value = this.#parse<T>(raw);
      if (value !== undefined) {
        this.#count(key, 'hit');
        return Promise.resolve(value);
      }
    }
    return this.#fly(
      key,
      this.#fill(key, typeof raw === 'object' ? raw : undefined, compute, ttlMs, options),
    );
  }

  /** Registered before the first await, so a caller arriving meanwhile joins this flight. */
  #fly<T>(key: CacheKey, started: Promise<T>): Promise<T> {
    this.#flights.set(key, started);
    const done = () => this.#flights.delete(key);
    started.then(done, done);
    return started;
  }

  async delete(...keys: CacheKey[]): Promise<void> {
    if (keys.length === 0) return;
    this.#near?.dropKeys(keys);
    try {
      await this.#store.delete(keys);
      this.#succeeded();
    } catch (error) {
      this.#failed('delete', error);
      for (const key of keys) this.#remember('key', key);
    }
  }

  async invalidateTag(tag: string): Promise<void> {
    await this.invalidateTags([tag]);
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    for (const tag of tags) checkTag(tag);
    if (tags.length === 0) return;
    this.#near?.dropTags(tags);
    try {
      await this.#store.invalidateTags(tags);
      this.#succeeded();
    } catch (error) {
      this.#failed('invalidate', error);
      for (const tag of tags) this.#remember('tag', tag);
    }
  }

  close(): void {
    this.#near?.close();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#store.close();
    this.#pending.clear();
  }

  async #fill<T>(
    key: CacheKey,
    lookup: Promise<string | undefined> | undefined,
    compute: () => T | Promise<T>,
    ttlMs: number,
    options: CacheSetOptions,
  ): Promise<T> {
    const found = lookup === undefined ? undefined : await this.#read(lookup);
    if (found !== undefined) {
      const value = this.#parse<T>(found);
      if (value !== undefined) {
        this.#count(key, 'hit');
        return value;
      }
    }
    this.#count(key, 'miss');
    const value = await compute();
    if (value !== undefined) await this.#write(key, serialize(value), ttlMs, options.tags ?? []);
    return value;
  }

  /**
   * With a near cache, on a miss there: getOrSet's Redis read, then (on a miss in Redis too)
   * `compute`. The fill spans both, so an invalidation of the key or of one of its tags arriving
   * meanwhile (from any process) keeps the result out of both caches: it may predate the change.
   */
  async #fillNear<T>(
    near: NearCache,
    key: CacheKey,
    compute: () => T | Promise<T>,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<T> {
    const fill = near.begin(key, tags);
    try {
      const found = await this.#readNear(near, fill);
      if (found !== undefined) {
        const value = this.#parse<T>(found);
        if (value !== undefined) {
          this.#count(key, 'hit');
          return value;
        }
      }
      this.#count(key, 'miss');
      const value = await compute();
      if (value === undefined || fill.stale) return value;
      const json = serialize(value);
      if (await this.#write(key, json, ttlMs, tags))
        near.keep(fill, json, Date.now() + ttlMs, tags);
      return value;
    } finally {
      near.end(fill);
    }
  }

  /** A Redis read for the near cache: held there when found (unless the fill went stale). */
  async #readNear(near: NearCache, fill: Fill): Promise<string | undefined> {
    const redis = this.#redis as RedisStore;
    const entry: StoredEntry | undefined = await this.#read(redis.entry(fill.key));
    if (entry === undefined) return undefined;
    near.keep(fill, entry.value, entry.expiresAt, entry.tags);
    return entry.value;
  }

  /** A backend read; a failure is a miss. */
  async #read<R>(lookup: Promise<R | undefined>): Promise<R | undefined> {
    try {
      const raw = await lookup;
      this.#succeeded();
      return raw;
    } catch (error) {
      this.#failed('get', error);
      return undefined;
    }
  }

  /** A backend write; a failure leaves the value uncached (false). */
  async #write(
    key: string,
    json: string,
    ttlMs: number,
    tags: readonly string[],
  ): Promise<boolean> {
    try {
      await this.#store.set(key, json, ttlMs, tags);
      this.#succeeded();
      return true;
    } catch (error) {
      this.#failed('set', error);
      return false;
    }
  }

  #parse<T>(raw: string): T | undefined {
    try {
      return JSON.parse(raw) as T;
    } catch (error) {
      this.#failed('get', error);
      return undefined;
    }
  }

  #count(key: CacheKey, result: Result): void {
    if (this.#metrics === undefined) return;
    const namespace = namespaceOf(key);
    let byResult = this.#counted.get(namespace);
    if (byResult === undefined) this.#counted.set(namespace, (byResult = {}));
    (byResult[result] ??= this.#metrics.requests.child({ namespace, result })).inc();
  }

  #succeeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#log.info({ failures: this.#failures }, 'cache backend answering again');
    this.#failures = 0;
  }

  #failed(operation: Operation, error: unknown): void {
    this.#metrics?.errors.inc({ operation });
    this.#failures += 1;
    const now = Date.now();
    if (this.#failing && now - this.#lastWarnAt < FAILURE_LOG_INTERVAL_MS) return;
    this.#failing = true;
    this.#lastWarnAt = now;
    this.#log.warn(
      {
        operation,
        failures: this.#failures,
        err: { message: error instanceof Error ? error.message : String(error) },
      },
      'cache backend failing: serving misses, not caching',
    );
  }

  #remember(kind: 'key' | 'tag', name: string): void {
    const id = `${kind === 'key' ? 'k' : 't'}:${name}`;
    this.#pending.delete(id);
    this.#pending.set(id, { kind, name });
    if (this.#pending.size > MAX_PENDING_INVALIDATIONS) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
    // Listen for the reconnection only while something waits for it.
    this.#unsubscribe ??= this.#store.onReconnect?.(() => {
      this.#unsubscribe = undefined;
      void this.#replayInvalidations();
    });
  }

  /** Once Redis is back, applies the deletes and invalidations that failed while it was away. */
  async #replayInvalidations(): Promise<void> {
    if (this.#pending.size === 0) return;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const keys = pending.filter((p) => p.kind === 'key').map((p) => p.name as CacheKey);
    const tags = pending.filter((p) => p.kind === 'tag').map((p) => p.name);
    this.#log.info({ keys: keys.length, tags: tags.length }, 'cache replaying lost invalidations');
    await this.delete(...keys);
    await this.invalidateTags(tags);
  }
}

/**
 * The process's cache: Redis when a client is given (shared by every process), otherwise an
 * in-process LRU bounded by `maxEntries` and `maxBytes` (each process has its own). A backend
 * that fails makes reads miss and writes no-ops; it never throws to the caller.
 */
export function createCache(options: CacheOptions): Cache {
  const logger = options.logger.child({ component: 'cache' });
  const keyPrefix = options.keyPrefix ?? 'cache:';
  let near: { redis: RedisStore; near: NearCache } | undefined;
  let store: CacheStore;
  if (options.redis === null) {
    store = new MemoryStore({
      maxEntries: options.maxEntries ?? 10_000,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
    });
  } else {
    // Every Redis cache announces its writes, with a near cache of its own or not (a CLI command
    // that changes roles, a process with CACHE_NEAR off): the near caches of the others must hear.
    // The client's key prefix does not apply to channels: it is part of the name here, so that
    // deployments sharing a server do not hear each other.
    const channel = `${options.redis.options.keyPrefix ?? ''}${keyPrefix}near`;
    const origin = randomUUID();
    const redis = new RedisStore(options.redis, keyPrefix, { channel, origin });
    store = redis;
    if (options.near?.enabled)
      near = {
        redis,
        near: new NearCache(options.redis, channel, origin, options.near, logger),
      };
  }
  let metrics: CacheMetrics | undefined;
  if (options.metrics) {
    metrics = {
      // On every lookup: a fast counter (prom-client's hashes its labels on every increment).
      requests: fastCounter(
        options.metrics,
        'cache_requests_total',
        'Cache lookups by key namespace and result (near-hit: answered from process memory in front of Redis, hit, miss, coalesced: joined a running computation)',
      ),
      errors: counter(
        options.metrics,
        'cache_errors_total',
        'Cache backend failures by operation (each served as a miss or skipped)',
        ['operation'],
      ),
    };
    if (store instanceof MemoryStore && !options.metrics.getSingleMetric('cache_entries')) {
      const memory = store;
      new Gauge({
        name: 'cache_entries',
        help: 'Entries in the in-process cache',
        registers: [options.metrics],
        collect() {
          this.set(memory.stats().entries);
        },
      });
      new Gauge({
        name: 'cache_size_bytes',
        help: 'Bytes charged to the in-process cache (keys and values at two bytes a character)',
        registers: [options.metrics],
        collect() {
          this.set(memory.stats().bytes);
        },
      });
    }
  }
  if (options.metrics && near && !options.metrics.getSingleMetric('cache_near_entries')) {
    const held = near.near;
    new Gauge({
      name: 'cache_near_entries',
      help: 'Entries held in process by the near cache in front of Redis',
      registers: [options.metrics],
      collect() {
        this.set(held.size);
      },
    });
    new Gauge({
      name: 'cache_near_healthy',
      help: 'Near cache invalidation channel: 1 subscribed and answering (entries served from process memory), 0 not known healthy (near cache bypassed)',
      registers: [options.metrics],
      collect() {
        this.set(held.state === 'healthy' ? 1 : 0);
      },
    });
  }
  return new CacheImpl(store, logger, metrics, near);
}
