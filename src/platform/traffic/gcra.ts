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

// KEYS = the distinct keys of one batch; ARGV = limit, period (ms) and the number of units asked
// (the decisions asked, then the units leased ahead), for each key in order. Returns the server's
// time (ms), then for each key its stored TAT before the batch ("" when none). The decisions for one key are made one after the other at one
// instant, so each key is read and written once however often it was asked for, and the caller
// makes the same decisions from the stored TAT with `gcra()` (the same arithmetic, in doubles).
// Uses the server's clock, so processes never disagree.
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

/** Most distinct keys sent as one script call (more wait for the next call). */
const MAX_BATCH = 256;
/** How long units leased ahead may be spent in this process; unspent ones then lapse. */
export const LEASE_MS = 100;
/** The most units leased ahead at once, as a share of the limit (below 100 per period: none). */
export const LEASE_SHARE = 0.01;
/** Keys whose lease is remembered (least recently used go first). */
const MAX_LEASES = 10_000;

/** Units of a busy key's quota taken from Redis ahead of its requests, spent here. */
interface Lease {
  limit: number;
  periodMs: number;
  /** Units left to spend, until `expiresAt`. */
  credits: number;
  expiresAt: number;
  /** The quota left to others when the lease was taken, and its reset, for the headers. */
  remaining: number;
  resetSeconds: number;
  /** Decisions asked for the key since the lease was taken: the size of the next one. */
  demand: number;
}

interface GcraClient extends Redis {
  gwGcraBatch(keyCount: number, ...keysAndArgs: (string | number)[]): Promise<(number | string)[]>;
}

interface Ask {
  resolve(decision: Decision): void;
  reject(error: unknown): void;
}

/** The decisions asked for one key in one turn, in the order they were asked. */
interface KeyAsks {
  key: string;
  limit: number;
  periodMs: number;
  asks: Ask[];
  /** Units to take beyond the asks, as a lease (0 when the key is not busy). */
  lease: number;
}

/**
 * Redis store, atomic across every process sharing the server. The decisions asked for in one
 * turn of the event loop go to Redis as one script call (one round trip, one script run),
 * instead of one EVALSHA per request, and a key asked for several times in the turn (one busy
 * client) is sent once with its count: under load, the round trips and the encoding of every
 * request's arguments and answer were most of the limiter's cost. A batch waits at most until
 * the event loop's check phase, so nothing is delayed by a timer. Multi-key scripts need the keys
 * on one server: a single Redis (or a primary with replicas), not Redis Cluster.
 *
 * A busy key leases units ahead: with a key's decisions, the batch takes as many more units as
 * the key was asked for since its last lease (at most 1% of its limit), and the next requests
 * spend them here at once, with no round trip and no promise, for up to 100 ms. The limit is
 * never exceeded, since leased units are taken from the shared quota first; units a process does
 * not spend in time lapse, so a busy client may get up to 1% of its limit fewer per lease. Limits
 * under 100 per period never lease: every decision is Redis's (the sign-in, registration and mail
 * limits, the anonymous API limit and the free tier's are exact).
 *
 * While the client's circuit is open (Redis frozen or gone), `take` throws at once and nothing is
 * sent: the limiter applies each policy's fail mode with no wait. Units already leased are spent.
 */
export class RedisRateStore implements RateStore {
  readonly kind = 'redis' as const;
  readonly #client: GcraClient;
  readonly #breaker: RedisBreaker;
  #pending = new Map<string, KeyAsks>();
  #scheduled = false;
  readonly #leases = new LRUCache<string, Lease>({ max: MAX_LEASES });

  constructor(client: Redis) {
    if (!('gwGcraBatch' in client)) client.defineCommand('gwGcraBatch', { lua: SCRIPT });
    this.#client = client as GcraClient;
    this.#breaker = redisBreaker(client);
  }

  take(key: string, limit: number, periodMs: number): Decision | Promise<Decision> {
    const redisKey = `rl:${key}`;
    const lease = this.#leases.get(redisKey);
    let want = 0;
    if (lease !== undefined && lease.limit === limit && lease.periodMs === periodMs) {
      lease.demand += 1;
      if (lease.credits > 0 && Date.now() < lease.expiresAt) {
        lease.credits -= 1;
        return {
          allowed: true,
          limit,
          remaining: lease.remaining + lease.credits,
          resetSeconds: lease.resetSeconds,
          retryAfterSeconds: 0,
        };
      }
      want = Math.min(lease.demand, Math.floor(limit * LEASE_SHARE));
    }
    if (!this.#breaker.closed) throw REDIS_CIRCUIT_OPEN;
    return new Promise<Decision>((resolve, reject) => {
      let entry = this.#pending.get(redisKey);
      // The same key with other figures (a limit changed by a deploy mid-turn): its own entry,
      // under a name that cannot be a key, decided after the first.
      if (entry && (entry.limit !== limit || entry.periodMs !== periodMs)) {
        const alias = `${redisKey}\n${String(limit)}\n${String(periodMs)}`;
        entry = this.#pending.get(alias);
        if (!entry)
          this.#pending.set(
            alias,
            (entry = { key: redisKey, limit, periodMs, asks: [], lease: 0 }),
          );
      } else if (!entry) {
        this.#pending.set(
          redisKey,
          (entry = { key: redisKey, limit, periodMs, asks: [], lease: want }),
        );
      }
      entry.asks.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#flush();
        });
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const all = [...this.#pending.values()];
    this.#pending = new Map();
    // A key's entry with other figures goes in a later call than the key's first entry.
    let batch: KeyAsks[] = [];
    let keys = new Set<string>();
    for (const entry of all) {
      if (batch.length === MAX_BATCH || keys.has(entry.key)) {
        this.#send(batch);
        batch = [];
        keys = new Set();
      }
      batch.push(entry);
      keys.add(entry.key);
    }
    if (batch.length > 0) this.#send(batch);
  }

  #send(batch: KeyAsks[]): void {
    // The circuit opened between the asks and this turn's check phase: refuse them unsent.
    if (!this.#breaker.closed) {
      for (const e of batch) for (const ask of e.asks) ask.reject(REDIS_CIRCUIT_OPEN);
      return;
    }
    const args: (string | number)[] = batch.map((e) => e.key);
    for (const e of batch) args.push(e.limit, e.periodMs, e.asks.length + e.lease);
    this.#client.gwGcraBatch(batch.length, ...args).then(
      (out) => {
        this.#breaker.succeeded();
        const now = Number(out[0]);
        batch.forEach((e, i) => {
          const raw = out[i + 1];
          let tat: number | null = raw === '' || raw === undefined ? null : Number(raw);
          let last: Decision | undefined;
          for (const ask of e.asks) {
            const step = gcra(tat, now, e.limit, e.periodMs);
            if (step.tat !== null) tat = step.tat;
            last = step.decision;
            ask.resolve(step.decision);
          }
          this.#lease(e, tat, now, last);
        });
      },
      (error: unknown) => {
        this.#breaker.failed(error);
        for (const e of batch) for (const ask of e.asks) ask.reject(error);
      },
    );
  }

  /**
   * After a key's decisions: the units the script took beyond them (the same arithmetic, so the
   * same count) become its lease, and the key starts counting its demand for the next one.
   */
  #lease(e: KeyAsks, tat: number | null, now: number, last: Decision | undefined): void {
    const existing = this.#leases.get(e.key);
    if (existing !== undefined && (existing.limit !== e.limit || existing.periodMs !== e.periodMs))
      return;
    let credits = 0;
    let figures = last;
    if (last?.allowed === true) {
      for (let i = 0; i < e.lease; i++) {
        const step = gcra(tat, now, e.limit, e.periodMs);
        if (step.tat === null) break;
        tat = step.tat;
        figures = step.decision;
        credits += 1;
      }
    }
    this.#leases.set(e.key, {
      limit: e.limit,
      periodMs: e.periodMs,
      credits,
      expiresAt: Date.now() + LEASE_MS,
      remaining: figures?.remaining ?? 0,
      resetSeconds: figures?.resetSeconds ?? 0,
      // The next lease is as large as the demand seen while this one lasts: a client that slows
      // down or stops leaves at most one lease's units to lapse.
      demand: 0,
    });
  }
}
