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
 * KEYS[1] the value, KEYS[2..] its tag sets; ARGV[1] the stored text, ARGV[2] the TTL in ms,
 * ARGV[3] the invalidation channel (empty: none) and ARGV[4] its message.
 * A tag set lives at least as long as its newest member; each write also drops up to two members
 * that have expired, so a long-lived tag over short-lived keys does not keep growing.
 * KEYS[n] already carry the client's key prefix, so the members are real key names. The message
 * goes out in the same atomic step as the write: no process can read the new value while another
 * still waits for the message that tells it its copy is stale.
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
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`);

/** KEYS: values; ARGV[1] the channel, ARGV[2] the message. Deletes and announces atomically. */
const DELETE = script(`
local deleted = 0
for j = 1, #KEYS, 500 do
  deleted = deleted + redis.call('DEL', unpack(KEYS, j, math.min(j + 499, #KEYS)))
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return deleted
`);

/**
 * KEYS: tag sets; ARGV[1] the channel (empty: none), ARGV[2] its message. Deletes every member of
 * each set, then the set, and announces it, in one atomic step.
 */
const INVALIDATE = script(`
local deleted = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members, 500 do
    deleted = deleted + redis.call('DEL', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return deleted
`);

/** What a read returns: the value, with its expiry and tags when it was stored with them. */
export interface StoredEntry {
  readonly value: string;
  /** Epoch ms; undefined for an entry written by an earlier version (plain JSON). */
  readonly expiresAt: number | undefined;
  readonly tags: readonly string[] | undefined;
}

/** Where the store announces its writes, for the near caches of every process. */
export interface Announce {
  /** The full channel name (the client's key prefix does not apply to channels). */
  readonly channel: string;
  /** This cache's id, so that it can ignore its own messages. */
  readonly origin: string;
}

/**
 * Opens a stored entry: `\u0001[expiresAt, ...tags]\n` then the JSON. JSON text never starts with
 * \u0001, and the header (JSON) never holds a raw line break, so both parts are found unambiguously
 * (and a process of an earlier version fails to parse it, which it counts as a miss).
 */
const HEADER = '\u0001';

function envelope(value: string, expiresAt: number, tags: readonly string[]): string {
  return `${HEADER}${JSON.stringify([expiresAt, ...tags])}\n${value}`;
}

function open(stored: string): StoredEntry {
  if (!stored.startsWith(HEADER)) return { value: stored, expiresAt: undefined, tags: undefined };
  const end = stored.indexOf('\n');
  const header = JSON.parse(stored.slice(1, end)) as [number, ...string[]];
  return { value: stored.slice(end + 1), expiresAt: header[0], tags: header.slice(1) as string[] };
}

/**
 * Values at `<prefix>v:<key>` with PX, tags as sets at `<prefix>t:<tag>`, both under the client's
 * own key prefix (REDIS_KEY_PREFIX); each value carries its expiry and tags (for the near cache).
 * Every command fails fast when Redis is away (the client has no offline queue and a command
 * timeout), and is not sent at all while the client's circuit is open (Redis frozen or gone): the
 * cache layer turns that into a miss. With `announce`, every write and invalidation also publishes
 * the keys or tags it changed, atomically with it.
 */
export class RedisStore implements CacheStore {
  readonly backend = 'redis';
  readonly #client: Redis;
  readonly #breaker: RedisBreaker;
  readonly #values: string;
  readonly #tags: string;
  readonly #announce: Announce | undefined;

  constructor(client: Redis, prefix: string, announce?: Announce) {
    this.#client = client;
    this.#breaker = redisBreaker(client);
    this.#values = `${prefix}v:`;
    this.#tags = `${prefix}t:`;
    this.#announce = announce;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.entry(key))?.value;
  }

  /** The stored value of `key` with its expiry and tags, or undefined. */
  async entry(key: string): Promise<StoredEntry | undefined> {
    const breaker = this.#breaker;
    if (!breaker.closed) throw REDIS_CIRCUIT_OPEN;
    let stored: string | null;
    try {
      stored = await this.#client.get(this.#values + key);
      breaker.succeeded();
    } catch (error) {
      breaker.failed(error);
      throw error;
    }
    return stored === null ? undefined : open(stored);
  }

  async set(key: string, value: string, ttlMs: number, tags: readonly string[]): Promise<void> {
    const breaker = this.#breaker;
    if (!breaker.closed) throw REDIS_CIRCUIT_OPEN;
    const stored = envelope(value, Date.now() + ttlMs, tags);
    try {
      if (tags.length === 0 && this.#announce === undefined) {
        await this.#client.set(this.#values + key, stored, 'PX', ttlMs);
      } else {
        await this.#eval(
          SET,
          [this.#values + key, ...tags.map((t) => this.#tags + t)],
          [stored, String(ttlMs), ...this.#message('k', [key])],
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
    const names = keys.map((k) => this.#values + k);
    await this.#breaker.observe(
      this.#announce === undefined
        ? this.#client.del(...names)
        : this.#eval(DELETE, names, this.#message('k', keys)),
    );
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    if (!this.#breaker.closed) throw REDIS_CIRCUIT_OPEN;
    await this.#breaker.observe(
      this.#eval(
        INVALIDATE,
        tags.map((t) => this.#tags + t),
        this.#message('t', tags),
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

  /** The channel and message arguments of a script: empty when nothing is announced. */
  #message(kind: 'k' | 't', names: readonly string[]): [string, string] {
    const announce = this.#announce;
    if (announce === undefined) return ['', ''];
    return [announce.channel, JSON.stringify({ o: announce.origin, [kind]: names })];
  }

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
