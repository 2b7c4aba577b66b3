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

// KEYS[1] = key; ARGV = limit, period ms. Uses the server's clock, so processes never disagree.
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = period / limit
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if stored and stored > now then tat = stored end
local nxt = tat + interval
local allow_at = nxt - period
if now < allow_at then
  return {0, tostring(tat - now), tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.max(1, math.ceil(nxt - now)))
return {1, tostring(nxt - now), '0'}
`;

interface GcraClient extends Redis {
  gwGcra(key: string, limit: number, periodMs: number): Promise<[number, string, string]>;
}

/** Redis store: one EVALSHA per decision, atomic across every process sharing the server. */
export class RedisRateStore implements RateStore {
  readonly kind = 'redis' as const;
  readonly #client: GcraClient;

  constructor(client: Redis) {
    if (!('gwGcra' in client)) client.defineCommand('gwGcra', { numberOfKeys: 1, lua: SCRIPT });
    this.#client = client as GcraClient;
  }

  async take(key: string, limit: number, periodMs: number): Promise<Decision> {
    const [ok, usedRaw, waitRaw] = await this.#client.gwGcra(`rl:${key}`, limit, periodMs);
    const interval = periodMs / limit;
    const used = Number(usedRaw);
    const wait = Number(waitRaw);
    return {
      allowed: ok === 1,
      limit,
      remaining: Math.max(0, Math.floor((periodMs - used) / interval)),
      resetSeconds: Math.ceil(used / 1000),
      retryAfterSeconds: ok === 1 ? 0 : Math.max(1, Math.ceil(wait / 1000)),
    };
  }
}
