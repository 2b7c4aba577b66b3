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
import type { Redis } from '../redis/index.ts';

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
  /** Spends one unit of `key`'s quota of `limit` per `periodMs`, if there is one left. */
  take(key: string, limit: number, periodMs: number): Promise<Decision>;
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

/** In-process store: at most `maxKeys` keys (least recently used go first), each kept only while it matters. */
export class MemoryRateStore implements RateStore {
  readonly kind = 'memory' as const;
  readonly #tats: LRUCache<string, number>;

  constructor(maxKeys = 100_000) {
    this.#tats = new LRUCache<string, number>({ max: maxKeys, ttlAutopurge: false });
  }

  get size(): number {
    return this.#tats.size;
  }

  take(key: string, limit: number, periodMs: number): Promise<Decision> {
    const now = Date.now();
    const { tat, decision } = gcra(this.#tats.get(key) ?? null, now, limit, periodMs);
    // A key whose TAT has passed is the same as no key: expire it then.
    if (tat !== null) this.#tats.set(key, tat, { ttl: Math.max(1, Math.ceil(tat - now)) });
    return Promise.resolve(decision);
  }
}

// KEYS = the keys of one batch; ARGV = limit and period (ms) for each key, in order. Decisions
// are made in order, so a key named twice sees its first decision. Uses the server's clock, so
// processes never disagree. Each key is read and written once per batch, however often it appears.
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tats, changed, out = {}, {}, {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local interval = period / limit
  local stored = tats[key]
  if stored == nil then
    stored = tonumber(redis.call('GET', key)) or false
    tats[key] = stored
  end
  local tat = now
  if stored and stored > now then tat = stored end
  local nxt = tat + interval
  local allow_at = nxt - period
  if now < allow_at then
    out[#out + 1] = 0
    out[#out + 1] = tostring(tat - now)
    out[#out + 1] = tostring(allow_at - now)
  else
    tats[key] = nxt
    changed[key] = true
    out[#out + 1] = 1
    out[#out + 1] = tostring(nxt - now)
    out[#out + 1] = '0'
  end
end
for key in pairs(changed) do
  local tat = tats[key]
  redis.call('SET', key, tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
end
return out
`;

/** Largest batch sent as one script call (more wait for the next call). */
const MAX_BATCH = 256;

interface GcraClient extends Redis {
  gwGcraBatch(keyCount: number, ...keysAndArgs: (string | number)[]): Promise<(number | string)[]>;
}

interface Pending {
  key: string;
  limit: number;
  periodMs: number;
  resolve(decision: Decision): void;
  reject(error: unknown): void;
}

/**
 * Redis store, atomic across every process sharing the server. The decisions asked for in one
 * turn of the event loop go to Redis as one script call (one round trip, one script run),
 * instead of one EVALSHA per request: under load that is most of the limiter's cost. A batch
 * waits at most until the event loop's check phase, so nothing is delayed by a timer.
 * Multi-key scripts need the keys on one server: a single Redis (or a primary with replicas),
 * not Redis Cluster.
 */
export class RedisRateStore implements RateStore {
  readonly kind = 'redis' as const;
  readonly #client: GcraClient;
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(client: Redis) {
    if (!('gwGcraBatch' in client)) client.defineCommand('gwGcraBatch', { lua: SCRIPT });
    this.#client = client as GcraClient;
  }

  take(key: string, limit: number, periodMs: number): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      this.#pending.push({ key: `rl:${key}`, limit, periodMs, resolve, reject });
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
    const all = this.#pending;
    this.#pending = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) this.#send(all.slice(i, i + MAX_BATCH));
  }

  #send(batch: Pending[]): void {
    const args: (string | number)[] = batch.map((p) => p.key);
    for (const p of batch) args.push(p.limit, p.periodMs);
    this.#client.gwGcraBatch(batch.length, ...args).then(
      (out) => {
        batch.forEach((p, i) => {
          p.resolve(decisionOf(out, i * 3, p.limit, p.periodMs));
        });
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
      },
    );
  }
}

function decisionOf(
  out: readonly (number | string)[],
  at: number,
  limit: number,
  periodMs: number,
): Decision {
  const ok = out[at] === 1;
  const interval = periodMs / limit;
  const used = Number(out[at + 1]);
  const wait = Number(out[at + 2]);
  return {
    allowed: ok,
    limit,
    remaining: Math.max(0, Math.floor((periodMs - used) / interval)),
    resetSeconds: Math.ceil(used / 1000),
    retryAfterSeconds: ok ? 0 : Math.max(1, Math.ceil(wait / 1000)),
  };
}
