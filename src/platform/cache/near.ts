import type { Logger } from '../observability/index.ts';
import { redisSubscriber, type Redis } from '../redis/index.ts';
import { MemoryStore } from './memory-store.ts';

/** The near cache's settings (`CACHE_NEAR_*`). */
export interface NearCacheSettings {
  /** Off: every lookup reads Redis, as without a near cache. */
  enabled: boolean;
  /** Most entries held in process. */
  maxEntries: number;
  /** Longest an entry is held in process, whatever its own TTL. */
  maxTtlMs: number;
  /**
   * While the invalidation channel is not known healthy: 0 bypasses the near cache (every lookup
   * reads Redis), more holds entries at most this long.
   */
  fallbackTtlMs: number;
  /** A PING on the subscriber connection this often; one unanswered by the next marks it unhealthy. */
  pingIntervalMs: number;
}

/** Bytes the near cache may hold (keys and values at two bytes a character). */
const MAX_BYTES = 32 * 1024 * 1024;

/** A message on the invalidation channel: the writer's origin, then keys or tags. */
interface Message {
  o: string;
  k?: string[];
  t?: string[];
}

/**
 * A read or computation that may store its result in the near cache. An invalidation of its key
 * or of one of its tags (any tag when they are not known yet), or a flush, arriving while it runs
 * makes it stale: its result, read or computed before the invalidation, is not stored.
 */
export interface Fill {
  readonly key: string;
  readonly tags: readonly string[] | undefined;
  stale: boolean;
}

export type NearState = 'connecting' | 'healthy' | 'fallback' | 'closed';

/**
 * The in-process layer in front of Redis: a bounded LRU with a tag index, kept coherent across
 * processes by messages on a Redis channel. Every write to the shared cache publishes the keys or
 * tags it changed, atomically with the write (the Redis store's scripts do it); each process
 * subscribes on a dedicated connection and drops what it holds under them. The writer drops its
 * own entries before writing, and ignores its own messages.
 *
 * Entries are only trusted while the channel is known healthy: subscribed on the current
 * connection, and the last PING answered within `pingIntervalMs`. Otherwise (before the first
 * subscription, after the connection closed, while PINGs go unanswered) the near cache is flushed
 * and bypassed (or, with `fallbackTtlMs`, holds entries that briefly), and flushed again once
 * resubscribed, since messages may have been missed meanwhile.
 */
export class NearCache {
  readonly origin: string;
  readonly channel: string;
  readonly #settings: NearCacheSettings;
  readonly #log: Logger;
  readonly #l1: MemoryStore;
  readonly #sub: Redis;
  readonly #fills = new Set<Fill>();
  #state: NearState = 'connecting';
  /** Bumped on each new connection: a SUBSCRIBE confirmed on an older one does not count. */
  #connection = 0;
  /** The connection whose SUBSCRIBE was confirmed (-1: none since the last loss). */
  #subscribedOn = -1;
  #pingSentAt = 0;
  #pingPending = false;
  #timer: NodeJS.Timeout | undefined;
  #warned = false;

  constructor(
    client: Redis,
    channel: string,
    origin: string,
    settings: NearCacheSettings,
    logger: Logger,
  ) {
    this.origin = origin;
    this.channel = channel;
    this.#settings = settings;
    this.#log = logger;
    this.#l1 = new MemoryStore({ maxEntries: settings.maxEntries, maxBytes: MAX_BYTES });
    this.#sub = redisSubscriber(client, 'groundwork-cache-sub');
    this.#sub.on('ready', () => this.#subscribe());
    this.#sub.on('close', () => this.#lost('subscriber connection closed'));
    this.#sub.on('error', (error: Error) => {
      if (this.#warned) return;
      this.#warned = true;
      this.#log.warn({ err: { message: error.message } }, 'near cache subscriber failing');
    });
    this.#sub.on('message', (from: string, message: string) => {
      if (from === this.channel) this.#apply(message);
    });
    this.#timer = setInterval(() => this.#ping(), settings.pingIntervalMs);
    this.#timer.unref();
    this.#sub.connect().catch(() => {
      // Reconnects by itself (the retry strategy); 'ready' subscribes.
    });
  }

  get state(): NearState {
    return this.#state;
  }

  /** Entries held, for the gauge. */
  get size(): number {
    return this.#l1.stats().entries;
  }

  /** The held JSON of `key`, or undefined (a miss, or the near cache bypassed). */
  get(key: string): string | undefined {
    if (this.#state !== 'healthy' && this.#settings.fallbackTtlMs === 0) return undefined;
    return this.#l1.get(key);
  }

  /** Starts a fill of `key`; `end` it when done, whatever happened. */
  begin(key: string, tags?: readonly string[]): Fill {
    const fill: Fill = { key, tags, stale: false };
    this.#fills.add(fill);
    return fill;
  }

  end(fill: Fill): void {
    this.#fills.delete(fill);
  }

  /**
   * Holds a value read from or written to Redis, unless its fill went stale, the channel does not
   * allow it, or its tags or expiry are unknown (an entry written by an earlier version).
   */
  keep(
    fill: Fill,
    json: string,
    expiresAt: number | undefined,
    tags: readonly string[] | undefined,
  ): void {
    if (fill.stale || expiresAt === undefined || tags === undefined) return;
    const cap = this.#state === 'healthy' ? this.#settings.maxTtlMs : this.#settings.fallbackTtlMs;
    const ttlMs = Math.min(expiresAt - Date.now(), cap);
    if (ttlMs < 1) return;
    this.#l1.set(fill.key, json, ttlMs, tags);
  }

  /** Drops keys here, at once (this process's own write, or another's message). */
  dropKeys(keys: readonly string[]): void {
    this.#l1.delete(keys);
    if (this.#fills.size === 0) return;
    const named = new Set(keys);
    for (const fill of this.#fills) if (named.has(fill.key)) fill.stale = true;
  }

  /** Drops everything held under these tags here, at once. */
  dropTags(tags: readonly string[]): void {
    this.#l1.invalidateTags(tags);
    for (const fill of this.#fills)
      if (fill.tags === undefined || fill.tags.some((t) => tags.includes(t))) fill.stale = true;
  }

  /** Drops everything held, and makes every running fill stale. */
  flush(): void {
    this.#l1.close();
    for (const fill of this.#fills) fill.stale = true;
  }

  /** Stops listening and drops the subscriber connection and every entry. */
  close(): void {
    this.#state = 'closed';
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush();
    this.#sub.removeAllListeners('ready');
    this.#sub.removeAllListeners('close');
    this.#sub.removeAllListeners('message');
    // Errors of the closing socket must still have a listener.
    this.#sub.on('error', () => {});
    this.#sub.disconnect();
  }

  #subscribe(): void {
    const connection = ++this.#connection;
    this.#sub.subscribe(this.channel).then(
      () => {
        if (connection !== this.#connection || this.#state === 'closed') return;
        this.#subscribedOn = connection;
        // Messages may have been missed while unsubscribed: nothing held from before is trusted.
        this.flush();
        this.#pingPending = false;
        if (this.#state !== 'healthy') {
          if (this.#warned || this.#state === 'fallback')
            this.#log.info('near cache invalidation channel subscribed again');
          this.#warned = false;
          this.#state = 'healthy';
        }
      },
      (error: unknown) => {
        if (connection !== this.#connection || this.#state === 'closed') return;
        this.#log.warn(
          { err: { message: error instanceof Error ? error.message : String(error) } },
          'near cache subscription failed; reconnecting',
        );
        this.#sub.disconnect(true);
      },
    );
  }

  /** The channel can no longer be trusted: flush, and bypass until resubscribed. */
  #lost(reason: string): void {
    if (this.#state === 'closed') return;
    this.#connection += 1;
    this.flush();
    this.#pingPending = false;
    if (this.#state === 'healthy') {
      this.#log.warn({ reason }, 'near cache invalidation channel down: bypassing near cache');
      this.#state = 'fallback';
    }
  }

  /**
   * A PING on the subscriber: a connection that stays open while the server answers nothing (a
   * frozen host) raises no event, so an unanswered PING is what reveals it.
   */
  #ping(): void {
    if (this.#state === 'closed' || this.#sub.status !== 'ready') return;
    if (this.#pingPending) {
      // Timers run before the loop polls for I/O: after a stall of the event loop (a long GC, a
      // synchronous burst) the answer may be waiting unread in the socket. The verdict waits for
      // this turn's poll (setImmediate runs after it), so only a PING really unanswered counts.
      const sentAt = this.#pingSentAt;
      setImmediate(() => {
        if (!this.#pingPending || this.#pingSentAt !== sentAt || this.#state !== 'healthy') return;
        this.flush();
        this.#state = 'fallback';
        this.#log.warn(
          { waitedMs: Date.now() - sentAt },
          'near cache subscriber not answering PING: bypassing near cache',
        );
      });
      return;
    }
    const connection = this.#connection;
    this.#pingPending = true;
    this.#pingSentAt = Date.now();
    this.#sub.ping().then(
      () => {
        if (connection !== this.#connection || this.#state === 'closed') return;
        this.#pingPending = false;
        if (this.#state === 'fallback' && this.#subscribedOn === connection) {
          // Answering again on the same subscription: delayed messages have arrived by now.
          this.flush();
          this.#state = 'healthy';
          this.#log.info('near cache subscriber answering again');
        }
      },
      () => {
        // Unanswered within the command timeout: the channel cannot be trusted until one is.
        if (connection !== this.#connection || this.#state === 'closed') return;
        this.#pingPending = false;
        if (this.#state === 'healthy') {
          this.flush();
          this.#state = 'fallback';
          this.#log.warn('near cache subscriber PING failed: bypassing near cache');
        }
      },
    );
  }

  #apply(raw: string): void {
    let message: Message;
    try {
      message = JSON.parse(raw) as Message;
    } catch {
      return;
    }
    if (message.o === this.origin) return;
    if (Array.isArray(message.k)) this.dropKeys(message.k);
    if (Array.isArray(message.t)) this.dropTags(message.t);
  }
}
