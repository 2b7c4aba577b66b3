import type { Redis } from '../redis/index.ts';

/** One event as it travels between processes and sits in a channel's history. */
export interface Envelope {
  /** Channel. */
  c: string;
  /** Event type (`authors.author.created`). */
  e: string;
  /** Data (JSON). */
  d: unknown;
  /** When it was published (ms since the epoch): fan-out lag. */
  t: number;
}

/** What a resubscribing client missed, or `reset` when the history no longer covers it. */
export type Recovery =
  | { kind: 'events'; latest: number; events: { offset: number; envelope: Envelope }[] }
  | { kind: 'reset'; latest: number };

/**
 * Offsets of a channel start at its first event's time in microseconds and grow by one per
 * event, so they keep growing across a history that expired and started again (a client never
 * mistakes a new channel life for the one it saw).
 */
const firstOffset = () => Date.now() * 1000;

export interface History {
  /** Appends and returns the event's offset; `fanout` sends `<offset>|<json>` to every process. */
  append(envelope: Envelope): Promise<number>;
  latest(channel: string): Promise<number>;
  since(channel: string, offset: number): Promise<Recovery>;
}

export function recover(
  latest: number,
  offset: number,
  entries: { offset: number; envelope: Envelope }[],
): Recovery {
  if (offset === latest) return { kind: 'events', latest, events: [] };
  if (offset > latest) return { kind: 'reset', latest };
  const oldest = entries[0]?.offset;
  if (oldest === undefined || oldest > offset + 1) return { kind: 'reset', latest };
  return { kind: 'events', latest, events: entries.filter((e) => e.offset > offset) };
}

/** One process: a bounded ring per channel, dropped after the TTL without events. */
export class MemoryHistory implements History {
  readonly #channels = new Map<
    string,
    { offset: number; entries: { offset: number; envelope: Envelope }[]; expiresAt: number }
  >();
  readonly #size: number;
  readonly #ttlMs: number;
  readonly #deliver: (offset: number, envelope: Envelope) => void;
  #sweeps = 0;

  constructor(size: number, ttlMs: number, deliver: (offset: number, envelope: Envelope) => void) {
    this.#size = size;
    this.#ttlMs = ttlMs;
    this.#deliver = deliver;
  }

  #live(channel: string) {
    const now = Date.now();
    const state = this.#channels.get(channel);
    if (state && state.expiresAt > now) return state;
    if (state) this.#channels.delete(channel);
    return undefined;
  }

  append(envelope: Envelope): Promise<number> {
    const now = Date.now();
    let state = this.#live(envelope.c);
    if (!state) {
      state = { offset: firstOffset() - 1, entries: [], expiresAt: 0 };
      this.#channels.set(envelope.c, state);
    }
    state.offset += 1;
    state.expiresAt = now + this.#ttlMs;
    if (this.#size > 0) {
      state.entries.push({ offset: state.offset, envelope });
      if (state.entries.length > this.#size) state.entries.shift();
    }
    // Now and then, forget channels whose history expired (personal channels are many).
    if (++this.#sweeps % 10_000 === 0)
      for (const [name, s] of this.#channels) if (s.expiresAt <= now) this.#channels.delete(name);
    const offset = state.offset;
    this.#deliver(offset, envelope);
    return Promise.resolve(offset);
  }

  latest(channel: string): Promise<number> {
    return Promise.resolve(this.#live(channel)?.offset ?? 0);
  }

  since(channel: string, offset: number): Promise<Recovery> {
    const state = this.#live(channel);
    return Promise.resolve(recover(state?.offset ?? 0, offset, state?.entries ?? []));
  }
}

/**
 * Several processes: the counter and the history in Redis, appended and fanned out (PUBLISH) in
 * one script, so every process sees events in offset order per channel.
 */
const APPEND = `
redis.call('SET', KEYS[1], ARGV[2], 'NX')
redis.call('INCR', KEYS[1])
local o = redis.call('GET', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local entry = o .. '|' .. ARGV[1]
if tonumber(ARGV[3]) > 0 then
  redis.call('RPUSH', KEYS[2], entry)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], entry)
return o
`;

export function parseEntry(raw: string): { offset: number; envelope: Envelope } | undefined {
  const bar = raw.indexOf('|');
  if (bar <= 0) return undefined;
  try {
    return {
      offset: Number(raw.slice(0, bar)),
      envelope: JSON.parse(raw.slice(bar + 1)) as Envelope,
    };
  } catch {
    return undefined;
  }
}

export class RedisHistory implements History {
  readonly #redis: Redis;
  readonly #size: number;
  readonly #ttlMs: number;
  readonly #fanout: string;

  /** `redis` applies the deployment's key prefix; `fanout` is the full pub/sub channel name. */
  constructor(redis: Redis, size: number, ttlMs: number, fanout: string) {
    this.#redis = redis;
    this.#size = size;
    this.#ttlMs = ttlMs;
    this.#fanout = fanout;
  }

  async append(envelope: Envelope): Promise<number> {
    const o = (await this.#redis.eval(
      APPEND,
      2,
      `realtime:o:${envelope.c}`,
      `realtime:h:${envelope.c}`,
      JSON.stringify(envelope),
      String(firstOffset() - 1),
      String(this.#size),
      String(this.#ttlMs),
      this.#fanout,
    )) as string;
    return Number(o);
  }

  async latest(channel: string): Promise<number> {
    return Number((await this.#redis.get(`realtime:o:${channel}`)) ?? 0);
  }

  async since(channel: string, offset: number): Promise<Recovery> {
    const [latest, raw] = await Promise.all([
      this.latest(channel),
      this.#size > 0 ? this.#redis.lrange(`realtime:h:${channel}`, 0, -1) : Promise.resolve([]),
    ]);
    const entries = raw.flatMap((r) => {
      const e = parseEntry(r);
      return e ? [e] : [];
    });
    return recover(latest, offset, entries);
  }
}
