import { createHash } from 'node:crypto';
import { REDIS_CIRCUIT_OPEN, redisBreaker, type Redis, type RedisBreaker } from '../redis/index.ts';
import type { CacheStore } from './store.ts';

interface Script {
  readonly text: string;
  readonly sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

/**
 * KEYS[1] the value, KEYS[2..] its tag sets; ARGV[1] the JSON, ARGV[2] the TTL in ms.
 * A tag set lives at least as long as its newest member; each write also drops up to two members
 * that have expired, so a long-lived tag over short-lived keys does not keep growing.
 * KEYS[n] already carry the client's key prefix, so the members are real key names.
 */
const SET = script(`
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  for _, member in ipairs(redis.call('SRANDMEMBER', KEYS[i], 2)) do
    if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[i], member) end
  end
end
return 1
`);

/** KEYS: tag sets. Deletes every member of each set, then the set, in one atomic step. */
const INVALIDATE = script(`
local deleted = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members, 500 do
    deleted = deleted + redis.call('DEL', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
end
return deleted
`);

/**
 * Values at `<prefix>v:<key>` with PX, tags as sets at `<prefix>t:<tag>`, both under the client's
 * own key prefix (REDIS_KEY_PREFIX). Every command fails fast when Redis is away (the client has
 * no offline queue and a command timeout), and is not sent at all while the client's circuit is
 * open (Redis frozen or gone): the cache layer turns that into a miss.
 */
export class RedisStore implements CacheStore {
  readonly backend = 'redis';
  readonly #client: Redis;
  readonly #breaker: RedisBreaker;
  readonly #values: string;
  readonly #tags: string;

  constructor(client: Redis, prefix: string) {
    this.#client = client;
    this.#breaker = redisBreaker(client);
    this.#values = `${prefix}v:`;
    this.#tags = `${prefix}t:`;
  }

  async get(key: string): Promise<string | undefined> {
    const breaker = this.#breaker;
    if (!breaker.closed) throw REDIS_CIRCUIT_OPEN;
    try {
      const value = await this.#client.get(this.#values + key);
      breaker.succeeded();
      return value ?? undefined;
    } catch (error) {
      breaker.failed(error);
      throw error;
    }
  }

  async set(key: string, value: string, ttlMs: number, tags: readonly string[]): Promise<void> {
    const breaker = this.#breaker;
    if (!breaker.closed) throw REDIS_CIRCUIT_OPEN;
    try {
      if (tags.length === 0) {
        await this.#client.set(this.#values + key, value, 'PX', ttlMs);
      } else {
        await this.#eval(
          SET,
          [this.#values + key, ...tags.map((t) => this.#tags + t)],
          [value, String(ttlMs)],
        );
      }
      breaker.succeeded();
    } catch (error) {
      breaker.failed(error);
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (!this.#breaker.closed) throw REDIS_CIRCUIT_OPEN;
    await this.#breaker.observe(this.#client.del(...keys.map((k) => this.#values + k)));
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    if (!this.#breaker.closed) throw REDIS_CIRCUIT_OPEN;
    await this.#breaker.observe(
      this.#eval(
        INVALIDATE,
        tags.map((t) => this.#tags + t),
        [],
      ),
    );
  }

  /**
   * Once Redis is usable again: the client reconnected, or the circuit closed after a freeze (the
   * connection never dropped, so no reconnection would come).
   */
  onReconnect(listener: () => void): () => void {
    return this.#breaker.onRecovered(listener);
  }

  close(): void {}

  /** EVALSHA, loading the script with EVAL the first time a server has not seen it. */
  async #eval(s: Script, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#client.eval(s.text, keys.length, ...keys, ...args);
    }
  }
}
