/**
 * GCRA (generic cell rate algorithm) rate limiting, with a Redis store (one Lua script, atomic
 * across processes) and a bounded in-process store.
 *
 * Hand-written on purpose: the well-kept Node limiters (rate-limiter-flexible, @fastify/rate-limit)
 * count fixed windows, which let a client send twice the limit across a window edge; the sliding
 * ones on npm are unmaintained or keep one entry per request (O(limit) memory per key). GCRA keeps
 * one timestamp per key and is exact: `limit` requests per `period`, a burst of at most `limit`.
 */
import { LRUCache } from 'lru-cache';
import { REDIS_CIRCUIT_OPEN, redisBreaker, type Redis, type RedisBreaker } from '../redis/index.ts';

export interface Decision {
  allowed: boolean;
  limit: number;
  /** Requests left right now. */
  remaining: number;
  /** Seconds until the quota is fully restored. */
  resetSeconds: number;
  /** Seconds until the next request would be allowed (0 when allowed). */
  retryAfterSeconds: number;
}

export interface RateStore {
  /**
   * Spends one unit of `key`'s quota of `limit` per `periodMs`, if there is one left. An
   * in-process store answers at once (no promise per request), a remote one with a promise, or
   * throws at once when it knows it cannot answer (Redis's circuit open).
   */
  take(key: string, limit: number, periodMs: number): Decision | Promise<Decision>;
  readonly kind: 'redis' | 'memory';
}

/** The pure decision: new theoretical arrival time (null when refused) and the figures. */
export function gcra(
  storedTat: number | null,
  now: number,
  limit: number,
  periodMs: number,
): { tat: number | null; decision: Decision } {
  const interval = periodMs / limit;
  const tat = Math.max(storedTat ?? now, now);
  const next = tat + interval;
  const allowAt = next - periodMs;
  if (now < allowAt) {
    const used = tat - now;
    return {
      tat: null,
      decision: {
        allowed: false,
        limit,
        remaining: Math.max(0, Math.floor((periodMs - used) / interval)),
        resetSeconds: Math.ceil(used / 1000),
        retryAfterSeconds: Math.max(1, Math.ceil((allowAt - now) / 1000)),
      },
    };
  }
  return {
    tat: next,
    decision: {
      allowed: true,
      limit,
      remaining: Math.max(0, Math.floor((periodMs - (next - now)) / interval)),
      resetSeconds: Math.ceil((next - now) / 1000),
      retryAfterSeconds: 0,
    },
  };
}

/**
 * In-process store: at most `maxKeys` keys, the least recently used going first. Entries carry no
 * TTL: a TAT in the past means the same as no entry (`gcra` reads it so), so nothing has to
 * expire. (With a TTL, a lone key's entry expired between one client's requests, and lru-cache
 * deleting the last entry clears the whole cache, rewriting arrays of `maxKeys` slots: 26 µs on
 * every request of bench/db.)
 */
export class MemoryRateStore implements RateStore {
  readonly kind = 'memory' as const;
  readonly #tats: LRUCache<string, number>;

  constructor(maxKeys = 100_000) {
    this.#tats = new LRUCache<string, number>({ max: maxKeys });
  }

  get size(): number {
    return this.#tats.size;
  }

  take(key: string, limit: number, periodMs: number): Decision {
    const now = Date.now();
    const { tat, decision } = gcra(this.#tats.get(key) ?? null, now, limit, periodMs);
    if (tat !== null) this.#tats.set(key, tat);
    return decision;
  }
}

// KEYS = the keys of one call; ARGV = limit, period (ms) and the number of units asked (the
// decisions asked, then the units reserved ahead), for each key in order. Returns the server's time
// (ms), then for each key its stored TAT before the call ("" when none). The units of one key are
// taken one after the other at one instant until one is refused, so each key is read and written
// once however often it was asked for, and the caller makes the same decisions from the stored TAT
// with `gcra()` (the same arithmetic, in doubles). Uses the server's clock, so processes never
// disagree.
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = { now }
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[3 * i - 2])
  local period = tonumber(ARGV[3 * i - 1])
  local count = tonumber(ARGV[3 * i])
  local interval = period / limit
  local raw = redis.call('GET', key)
  local stored = tonumber(raw)
  out[#out + 1] = raw or ''
  local tat = now
  if stored and stored > now then tat = stored end
  local changed = false
  for _ = 1, count do
    local nxt = tat + interval
    if now < nxt - period then break end
    tat = nxt
    changed = true
  end
  if changed then
    redis.call('SET', key, tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
  end
end
return out
`;

/** Most keys sent in one script call (more go in further calls, sent at the same time). */
const MAX_BATCH = 256;
/** Limits under this many per period are never decided in process: every decision is Redis's. */
export const LOCAL_MIN_LIMIT = 100;

export interface RedisRateStoreOptions {
  /** How long a key's reserve may stay low before it is topped up, in ms (default 50). */
  syncIntervalMs?: number;
  /**
   * The most units a process holds reserved for one key, as a share of the key's limit (at least
   * 1; default 0.01). 0: nothing is decided in process, every decision is Redis's.
   */
  localShare?: number;
  /** The most keys a process keeps a view of (the least recently used go first; default 100,000). */
  localMaxKeys?: number;
}

/**
 * The most units reserved for one key at once: the script and `gcra()` take units one by one, so
 * a huge limit (the benchmarks' 100 million a minute) must not make a call loop a million times.
 */
export const MAX_ALLOWANCE = 1_000;

/**
 * A key's allowance A: the most units one process holds reserved for it (held, or asked for and
 * not answered yet): max(1, floor(limit × share)), at most `MAX_ALLOWANCE`. 0 (every decision
 * Redis's) for limits under `LOCAL_MIN_LIMIT` or a share of 0.
 */
export function localAllowance(limit: number, share: number): number {
  if (!(share > 0) || limit < LOCAL_MIN_LIMIT) return 0;
  return Math.min(MAX_ALLOWANCE, Math.max(1, Math.floor(limit * share)));
}

interface GcraClient extends Redis {
  gwGcraBatch(keyCount: number, ...keysAndArgs: (string | number)[]): Promise<(number | string)[]>;
}

interface Ask {
  resolve(decision: Decision): void;
  reject(error: unknown): void;
}

/** This process's view of a key decided in process (a limit of at least `LOCAL_MIN_LIMIT`). */
interface View {
  readonly key: string;
  readonly limit: number;
  readonly periodMs: number;
  readonly allowance: number;
  /** Redis has answered for the key once: until then every decision on it is Redis's. */
  known: boolean;
  /**
   * The key's TAT in Redis's last answer (server clock), the units held here included. Redis's
   * own is never earlier (units are only added), so a refusal by this TAT is one Redis would make.
   */
  tat: number;
  /** Units reserved in Redis and not spent yet: spent here, at once. */
  held: number;
  /** Units asked to reserve in calls not answered yet. */
  reserving: number;
  /** Decisions waiting for Redis this turn (null when none). */
  waiters: Ask[] | null;
}

/** One key of a script call: the decisions asked, the units to reserve, its view if any. */
interface Entry {
  key: string;
  limit: number;
  periodMs: number;
  asks: Ask[];
  reserve: number;
  view: View | null;
}

/** What a store has done since it was made (benchmarks and tests read it). */
export interface RedisRateStoreStats {
  /** Script calls sent (one round trip each; several may share a turn's write). */
  calls: number;
  /** Decisions made in process: reserved units spent, and refusals by the view. */
  local: number;
  /** Decisions made by Redis. */
  remote: number;
}

/**
 * Redis store, shared by every process using the server. Multi-key scripts need the keys on one
 * server: a single Redis (or a primary with replicas), not Redis Cluster.
 *
 * **Exact keys** (limits under 100 per period: sign-in, registration, mail, the anonymous API
 * and not-found limits): every decision is Redis's, and such a limit is never exceeded. The
 * decisions asked in one turn of the event loop go as one script call (one round trip), a key asked
 * several times in the turn sent once with its count. A batch waits at most until the event loop's
 * check phase, so nothing is delayed by a timer.
 *
 * **Keys decided in process** (limits of at least 100): one round trip per turn made 1,000
 * distinct clients, each well below its limit, cost about a Redis call per request on a busy
 * server. So a process **reserves** units of such a key in Redis (the script takes them from the
 * shared quota like decisions, by the same GCRA) and spends them here, at once, with no promise:
 * at most A = max(1, floor(limit × `localShare`)) units (and at most 1,000) held or being
 * reserved per key and process. A key's first decision in a process is Redis's, with A units reserved behind it (so no
 * process admits a burst blindly); once a key's reserve is down to half of A, it is topped up
 * within `syncIntervalMs`, in one call for all such keys (256 keys a call). With no units in hand,
 * a decision waits for Redis (with a top-up), unless the TAT of the key's last answer refuses it:
 * then it is refused here, with the same figures (Redis's TAT can only be later).
 *
 * Margin, exactly: every unit spent was taken by Redis's GCRA, either within a window or before
 * it and still held when the window began, so with N processes a key is allowed at most its GCRA
 * figure (its limit, plus one unit per `period / limit` of the window's length) plus N × A units
 * in any window; over the long run no more than its rate. The other way, units held by a process
 * a client no longer reaches, or dropped with a view (LRU of `localMaxKeys`, Redis failures), are
 * lost to it: a client may get up to N × A units fewer than its limit in a window.
 *
 * While the client's circuit is open (Redis frozen or gone), `take` throws at once and nothing is
 * sent: the limiter applies each policy's fail mode with no wait. There is no unsent spending (a
 * unit is spent only once Redis has taken it); the units held are dropped with the views, then and
 * on every reconnection (the server may have lost its keys): each key's next decision is Redis's.
 */
export class RedisRateStore implements RateStore {
  readonly kind = 'redis' as const;
  readonly #client: GcraClient;
  readonly #breaker: RedisBreaker;
  readonly #syncIntervalMs: number;
  readonly #share: number;
  readonly #views: LRUCache<string, View>;
  /** Exact decisions asked this turn, by key (and figures, when one key comes with two). */
  #exact = new Map<string, Entry>();
  /** Views whose decisions wait for Redis this turn. */
  #waiting: View[] = [];
  #turnScheduled = false;
  /** Views whose reserve is low, topped up by the next sync. */
  readonly #low = new Set<View>();
  #syncTimer: NodeJS.Timeout | undefined;
  /** Redis's clock minus this process's, as of the last answer (read a little late: safe). */
  #offset = 0;
  readonly #stats: RedisRateStoreStats = { calls: 0, local: 0, remote: 0 };

  constructor(client: Redis, options: RedisRateStoreOptions = {}) {
    if (!('gwGcraBatch' in client)) client.defineCommand('gwGcraBatch', { lua: SCRIPT });
    this.#client = client as GcraClient;
    this.#breaker = redisBreaker(client);
    this.#syncIntervalMs = options.syncIntervalMs ?? 50;
    this.#share = options.localShare ?? 0.01;
    this.#views = new LRUCache<string, View>({ max: options.localMaxKeys ?? 100_000 });
    // A reconnection may be to a server that lost its keys, where views would refuse too long.
    const arm = (): void => {
      this.#breaker.onRecovered(() => {
        this.#forget();
        arm();
      });
    };
    arm();
  }

  /** Counters since the store was made. */
  get stats(): Readonly<RedisRateStoreStats> {
    return this.#stats;
  }

  /** Keys whose view this process holds. */
  get localKeys(): number {
    return this.#views.size;
  }

  take(key: string, limit: number, periodMs: number): Decision | Promise<Decision> {
    if (!this.#breaker.closed) {
      this.#forget();
      throw REDIS_CIRCUIT_OPEN;
    }
    const redisKey = `rl:${key}`;
    const allowance = localAllowance(limit, this.#share);
    if (allowance === 0) return this.#askExact(redisKey, limit, periodMs);
    let view = this.#views.get(redisKey);
    if (view === undefined || view.limit !== limit || view.periodMs !== periodMs) {
      // New here (or its limit changed): Redis decides first.
      view = {
        key: redisKey,
        limit,
        periodMs,
        allowance,
        known: false,
        tat: 0,
        held: 0,
        reserving: 0,
        waiters: null,
      };
      this.#views.set(redisKey, view);
    } else if (view.known) {
      const now = Date.now() + this.#offset;
      if (view.held > 0) {
        view.held -= 1;
        this.#stats.local += 1;
        if (view.held + view.reserving <= allowance >> 1) this.#lowOn(view);
        return spentFigures(view, now);
      }
      const step = gcra(view.tat, now, limit, periodMs);
      if (step.tat === null) {
        this.#stats.local += 1;
        return step.decision;
      }
    }
    const waiting = view;
    return new Promise<Decision>((resolve, reject) => {
      if (waiting.waiters === null) {
        waiting.waiters = [];
        this.#waiting.push(waiting);
      }
      waiting.waiters.push({ resolve, reject });
      this.#scheduleTurn();
    });
  }

  #askExact(redisKey: string, limit: number, periodMs: number): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      let entry = this.#exact.get(redisKey);
      // The same key with other figures (a limit changed by a deploy mid-turn): its own entry,
      // under a name that cannot be a key, decided after the first.
      if (entry && (entry.limit !== limit || entry.periodMs !== periodMs)) {
        const alias = `${redisKey}\n${String(limit)}\n${String(periodMs)}`;
        entry = this.#exact.get(alias);
        if (!entry) this.#exact.set(alias, (entry = newEntry(redisKey, limit, periodMs)));
      } else if (!entry) {
        this.#exact.set(redisKey, (entry = newEntry(redisKey, limit, periodMs)));
      }
      entry.asks.push({ resolve, reject });
      this.#scheduleTurn();
    });
  }

  #scheduleTurn(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    setImmediate(() => {
      this.#flushTurn();
    });
  }

  /** A view's reserve is low: topped up by the next sync. */
  #lowOn(view: View): void {
    this.#low.add(view);
    if (this.#syncTimer === undefined) {
      this.#syncTimer = setTimeout(() => {
        this.#sync();
      }, this.#syncIntervalMs);
      this.#syncTimer.unref();
    }
  }

  /** A view's entry in a call: the decisions waiting on it, and the units that top it up to A. */
  #viewEntry(view: View, asks: Ask[]): Entry {
    const reserve = Math.max(0, view.allowance - view.held - view.reserving);
    view.reserving += reserve;
    this.#low.delete(view);
    return { key: view.key, limit: view.limit, periodMs: view.periodMs, asks, reserve, view };
  }

  #flushTurn(): void {
    this.#turnScheduled = false;
    const entries = [...this.#exact.values()];
    this.#exact = new Map();
    for (const view of this.#waiting) {
      entries.push(this.#viewEntry(view, view.waiters ?? []));
      view.waiters = null;
    }
    this.#waiting = [];
    this.#send(entries);
  }

  #sync(): void {
    this.#syncTimer = undefined;
    const entries: Entry[] = [];
    for (const view of this.#low) {
      // A view gone from the LRU meanwhile (evicted, replaced, dropped) is not topped up.
      if (this.#views.peek(view.key) !== view) continue;
      const entry = this.#viewEntry(view, []);
      if (entry.reserve > 0) entries.push(entry);
    }
    this.#low.clear();
    this.#send(entries);
  }

  #send(entries: Entry[]): void {
    // A key twice (other figures, or a view replaced while a call for it was made) goes in a
    // later call than its first entry; calls on one connection run in the order sent.
    let batch: Entry[] = [];
    let keys = new Set<string>();
    for (const entry of entries) {
      if (batch.length === MAX_BATCH || keys.has(entry.key)) {
        this.#call(batch);
        batch = [];
        keys = new Set();
      }
      batch.push(entry);
      keys.add(entry.key);
    }
    if (batch.length > 0) this.#call(batch);
  }

  #call(batch: Entry[]): void {
    // The circuit opened between the asks and this call: refuse them unsent.
    if (!this.#breaker.closed) {
      this.#failed(batch, REDIS_CIRCUIT_OPEN);
      return;
    }
    const args: (string | number)[] = batch.map((e) => e.key);
    for (const e of batch) args.push(e.limit, e.periodMs, e.asks.length + e.reserve);
    this.#stats.calls += 1;
    this.#client.gwGcraBatch(batch.length, ...args).then(
      (out) => {
        this.#breaker.succeeded();
        const now = Number(out[0]);
        this.#offset = now - Date.now();
        batch.forEach((e, i) => {
          const raw = out[i + 1];
          let tat: number | null = raw === '' || raw === undefined ? null : Number(raw);
          for (const ask of e.asks) {
            const step = gcra(tat, now, e.limit, e.periodMs);
            if (step.tat !== null) tat = step.tat;
            ask.resolve(step.decision);
          }
          this.#stats.remote += e.asks.length;
          const view = e.view;
          if (view === null) return;
          // The units the script reserved after the decisions (the same arithmetic: the same count).
          let reserved = 0;
          while (reserved < e.reserve) {
            const step = gcra(tat, now, e.limit, e.periodMs);
            if (step.tat === null) break;
            tat = step.tat;
            reserved += 1;
          }
          view.reserving -= e.reserve;
          view.held += reserved;
          view.tat = tat ?? now;
          view.known = true;
        });
      },
      (error: unknown) => {
        this.#breaker.failed(error);
        this.#failed(batch, error);
      },
    );
  }

  /** A call failed: its decisions fail (the fail modes apply), its views are dropped. */
  #failed(batch: Entry[], error: unknown): void {
    for (const e of batch) {
      for (const ask of e.asks) ask.reject(error);
      const view = e.view;
      if (view === null) continue;
      view.reserving -= e.reserve;
      this.#low.delete(view);
      if (this.#views.peek(view.key) === view) this.#views.delete(view.key);
    }
  }

  /** Every view and the units it holds dropped: each key's next decision is Redis's. */
  #forget(): void {
    if (this.#views.size > 0) this.#views.clear();
    this.#low.clear();
  }
}

function newEntry(key: string, limit: number, periodMs: number): Entry {
  return { key, limit, periodMs, asks: [], reserve: 0, view: null };
}

/** The figures of a unit spent from a view's reserve, `now` on the server's clock. */
function spentFigures(view: View, now: number): Decision {
  const interval = view.periodMs / view.limit;
  const ahead = Math.max(view.tat, now) - now;
  // The quota left to the others by Redis's last answer, and what is still held here.
  const free = Math.max(0, Math.floor((view.periodMs - ahead) / interval));
  return {
    allowed: true,
    limit: view.limit,
    remaining: Math.min(view.limit - 1, free + view.held),
    resetSeconds: Math.ceil(ahead / 1000),
    retryAfterSeconds: 0,
  };
}
