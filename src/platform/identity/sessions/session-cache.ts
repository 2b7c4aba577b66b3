import { LRUCache } from 'lru-cache';
import { userTag, type Cache, type CacheKey } from '../../cache/index.ts';
import type { IdentityDb } from '../db.ts';
import type { Logger } from '../../observability/index.ts';
import * as repo from '../repository.ts';
import { liveSessionUntil } from './repository.ts';
import type { AuthMethod, UserTier } from '../tables.ts';

/** What is cached of a session check: the live session's facts, or null for "not live". */
interface Cached {
  tier: UserTier;
  /** Epoch milliseconds (an ISO string in entries written by earlier versions). */
  authenticatedAt: number | string;
  amr: AuthMethod[];
  /** The session's absolute end (ms): a cached answer never outlives the session. */
  expiresAt: number;
}

/** The tag of every cached session check of one user (logout-all, lock, reset, deletion). */
export const sessionsTag = (userId: string) => `identity-sessions:${userId}`;

/**
 * A repeat of each invalidation this long after it, for the check that read the database before
 * the revocation committed and stores its (stale) answer after the first invalidation, in another
 * process. In this process the epoch below already stops such a store.
 */
const REPEAT_INVALIDATION_MS = 1_000;

type Lookup = typeof liveSessionUntil;

export interface SessionCacheOptions {
  cache: Cache | null;
  ttlS: number;
  logger: Logger;
  /** The database lookup on a miss (tests replace it to order a race). */
  lookup?: Lookup;
}

/**
 * The per-request session check (`repo.liveSession`) behind the platform cache, keyed per user
 * and session and tagged per user. Sessions never come back to life, so "not live" is cached
 * too; anything else that changes a session's answer (revocation, lock, tier, re-authentication,
 * deletion) must call `invalidateSession` or `invalidateUser` after its transaction commits.
 */
export class SessionCache {
  readonly #cache: Cache | null;
  readonly #ttlS: number;
  readonly #log: Logger;
  readonly #lookup: Lookup;
  /** Bumped by every invalidation: a check that began before one does not store its answer. */
  #epoch = 0;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: SessionCacheOptions) {
    this.#cache = options.cache;
    this.#ttlS = options.ttlS;
    this.#log = options.logger;
    this.#lookup = options.lookup ?? liveSessionUntil;
  }

  /**
   * The cache key of a session's check, made once per session: building and validating it
   * (`userKey`) was a measured part of every authenticated request. A session id belongs to one
   * user, so the id alone finds its key, which is checked to be the user's.
   */
  readonly #keys = new LRUCache<string, { userId: string; key: CacheKey }>({ max: 10_000 });

  #keyOf(cache: Cache, userId: string, sessionId: string): CacheKey {
    const known = this.#keys.get(sessionId);
    if (known !== undefined && known.userId === userId) return known.key;
    const key = cache.userKey(userId, 'identity-session', sessionId);
    this.#keys.set(sessionId, { userId, key });
    return key;
  }

  /** Whether checks are cached at all, and where. */
  get backend(): 'memory' | 'redis' | 'off' {
    return this.#cache?.backend ?? 'off';
  }

  /**
   * The live session's facts (as `repo.liveSession`), from the cache when it holds them: at once
   * (no promise) when the in-process cache does, so an authenticated request costs no extra turn.
   */
  live(
    db: IdentityDb,
    sessionId: string,
    userId: string,
  ): repo.LiveSession | undefined | Promise<repo.LiveSession | undefined> {
    const cache = this.#cache;
    if (cache === null) return repo.liveSession(db, sessionId, userId);
    const key = this.#keyOf(cache, userId, sessionId);
    const answer = (hit: Cached | null | undefined) => {
      if (hit === null) return undefined;
      if (hit !== undefined && hit.expiresAt > Date.now()) return revive(hit);
      return this.#lookUp(cache, db, key, sessionId, userId);
    };
    const now = cache.peek<Cached | null>(key);
    return now !== undefined ? answer(now.value) : cache.get<Cached | null>(key).then(answer);
  }

  /** A miss: the database's answer, stored unless an invalidation came meanwhile. */
  async #lookUp(
    cache: Cache,
    db: IdentityDb,
    key: CacheKey,
    sessionId: string,
    userId: string,
  ): Promise<repo.LiveSession | undefined> {
    const epoch = this.#epoch;
    const row = await this.#lookup(db, sessionId, userId);
    if (epoch === this.#epoch) {
      const value: Cached | null =
        row === undefined
          ? null
          : {
              tier: row.tier,
              authenticatedAt: row.authenticatedAt.getTime(),
              amr: row.amr,
              expiresAt: row.expiresAt.getTime(),
            };
      await cache.set(key, value, {
        ttlSeconds: this.#ttlS,
        tags: [sessionsTag(userId), userTag(userId)],
      });
    }
    if (row === undefined) return undefined;
    return { tier: row.tier, authenticatedAt: row.authenticatedAt, amr: row.amr };
  }

  /** Drops the cached checks of these sessions of the user (after the revocation committed). */
  async invalidateSession(userId: string, ...sessionIds: string[]): Promise<void> {
    const cache = this.#cache;
    if (cache === null || sessionIds.length === 0) return;
    const keys = sessionIds.map((id) => cache.userKey(userId, 'identity-session', id));
    await this.#invalidate(() => cache.delete(...keys));
  }

  /** Drops every cached check of the user's sessions (logout-all, lock, password reset, deletion). */
  async invalidateUser(userId: string): Promise<void> {
    const cache = this.#cache;
    if (cache === null) return;
    await this.#invalidate(() => cache.invalidateTag(sessionsTag(userId)));
  }

  async #invalidate(drop: () => Promise<void>): Promise<void> {
    this.#epoch += 1;
    await drop();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#epoch += 1;
      drop().catch((error: unknown) => {
        this.#log.warn({ err: error }, 'repeated session cache invalidation failed');
      });
    }, REPEAT_INVALIDATION_MS);
    timer.unref();
    this.#timers.add(timer);
  }

  /** Cancels the pending repeats (the app is closing). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

function revive(hit: Cached): repo.LiveSession {
  return { tier: hit.tier, authenticatedAt: new Date(hit.authenticatedAt), amr: hit.amr };
}
