import pg from 'pg';
import { Histogram, type Counter, type Registry } from 'prom-client';
import type { Database } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import { counter, EVENTS_CHANNEL, type EventRegistry } from './outbox.ts';
import type { DomainEvent, EventPlatform, EventSubscriber, SubscriberContext } from './types.ts';

/*
 * Why a claim loop of our own rather than pg-boss (which runs the jobs):
 * - `publish` must need nothing but the caller's transaction: one outbox row per event, whatever
 *   the number of subscribers, in processes whose queue never started (serve, the HTTP-only test
 *   harnesses). pg-boss needs a started instance and one job row per subscriber at publish.
 * - The record of each (event, subscriber) hand-over must outlive the hand-over for the
 *   retention period (pg-boss deletes completed jobs), and be readable by the webhooks area.
 * - Latency: the loop wakes on the NOTIFY that the publishing transaction sends at commit, claims
 *   in batches with FOR UPDATE SKIP LOCKED (several worker processes share the work, none takes
 *   a row another holds) and writes completions in one statement per batch. Measured on the
 *   2-core development machine under load (docs/events.md, "Figures"): a stream of about 1,600
 *   events/s, commit to handler start p50 6 ms, p99 21 ms; a burst of 20,000 hand-overs at
 *   2,900 to 4,000/s per worker process. pg-boss measured side by side on the same machine (one
 *   job per event sent in the transaction, NOTIFY on, 64 at once; two runs of 3,000 events from
 *   8 publishers): p99 54 and 126 ms against 57 and 197 ms here, commits 626 and 222/s against
 *   900 and 200/s: the same within the machine's noise. So the reasons above decide, not speed.
 */

/** How a process dispatches (the `EVENTS_*` settings). */
export interface DispatcherSettings {
  /** Handlers running at once in this process, across subscribers. */
  readonly concurrency: number;
  /** Events fanned out, and hand-overs claimed, per statement. */
  readonly batchSize: number;
  /** Polling fallback (NOTIFY missed, retries becoming due, leases expiring). */
  readonly pollIntervalMs: number;
  /** A handler running longer fails (and is retried); its signal aborts. */
  readonly handlerTimeoutMs: number;
  /** Hand-overs of one event to one subscriber before it is recorded as failed. */
  readonly maxAttempts: number;
  /** Retry delay after the first failure, doubled each time (with jitter) up to the maximum. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

export const DISPATCHER_DEFAULTS: DispatcherSettings = {
  concurrency: 64,
  batchSize: 100,
  pollIntervalMs: 1_000,
  handlerTimeoutMs: 30_000,
  maxAttempts: 10,
  retryInitialMs: 1_000,
  retryMaxMs: 300_000,
};

/** A claim outlives the handler's timeout by this much before another process may take it. */
const LEASE_MARGIN_MS = 5_000;

interface Claimed {
  event: DomainEvent;
  subscriber: EventSubscriber;
  attempt: number;
  /** Seconds from the event's write to the claim, by the database's clock. */
  lagSeconds: number;
  claimedAt: number;
}

type Outcome = 'done' | 'retry' | 'failed' | 'release';

interface Result {
  eventId: string;
  subscriber: string;
  attempt: number;
  kind: Outcome;
  delayMs: number;
  error: string | null;
}

interface ClaimRow {
  subscriber: string;
  attempts: number;
  lag: number;
  id: string;
  type: string;
  version: number;
  occurred_at: Date;
  subject_type: string | null;
  subject_id: string | null;
  actor_id: string | null;
  owner_id: string | null;
  request_id: string | null;
  data: unknown;
}

class HandlerTimeoutError extends Error {
  constructor(ms: number) {
    super(`event subscriber timed out after ${ms} ms`);
    this.name = 'HandlerTimeoutError';
  }
}

class ShutdownError extends Error {
  constructor() {
    super('the process is shutting down');
    this.name = 'ShutdownError';
  }
}

function message(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 2_000);
}

/** Exponential backoff with equal jitter: at least half the step, at most the step. */
export function retryDelayMs(attempt: number, settings: DispatcherSettings): number {
  const step = Math.min(settings.retryMaxMs, settings.retryInitialMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + (Math.random() * step) / 2);
}

export interface DispatcherOptions {
  database: Database;
  registry: EventRegistry;
  logger: Logger;
  metrics?: Registry;
  settings: DispatcherSettings;
  /** The platform's services, for the handlers' context. */
  platform: () => EventPlatform;
}

/**
 * Hands committed events to this process's subscribers: at least once per (event, subscriber),
 * never again once a hand-over completed, retried with backoff on failure and recorded as failed
 * past the maximum. Runs in `worker` and `all` processes; any number share the work.
 */
export class EventDispatcher {
  readonly #options: DispatcherOptions;
  readonly #settings: DispatcherSettings;
  readonly #log: Logger;
  readonly #subscribers = new Map<string, EventSubscriber>();
  /** `unnest` arrays of (subscriber, event type or `*`). */
  readonly #pairs: { names: string[]; types: string[] };
  readonly #inflight = new Set<Promise<void>>();
  readonly #shutdown = new AbortController();
  readonly #results: Result[] = [];
  #running = false;
  #looping = false;
  #pass: Promise<void> = Promise.resolve();
  #again = false;
  #starved = false;
  #flushing: Promise<void> | null = null;
  #listener: pg.Client | null = null;
  #poll: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt = Infinity;
  #reconnect: NodeJS.Timeout | undefined;
  #failingSince = 0;
  #metrics?: {
    dispatched: Counter<'subscriber' | 'outcome'>;
    lag: Histogram<'subscriber'>;
  };

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#settings = options.settings;
    this.#log = options.logger.child({ component: 'events' });
    const names: string[] = [];
    const types: string[] = [];
    for (const s of options.registry.subscribers) {
      this.#subscribers.set(s.name, s);
      for (const type of s.events === '*' ? ['*'] : s.events) {
        names.push(s.name);
        types.push(type);
      }
    }
    this.#pairs = { names, types };
    if (options.metrics) {
      const registry = options.metrics;
      this.#metrics = {
        dispatched: counter(
          registry,
          'events_dispatched_total',
          'Hand-overs of events to subscribers by outcome (delivered, retried, failed, released at shutdown)',
          ['subscriber', 'outcome'],
        ),
        lag:
          (registry.getSingleMetric('event_dispatch_lag_seconds') as
            Histogram<'subscriber'> | undefined) ??
          new Histogram({
            name: 'event_dispatch_lag_seconds',
            help: 'Seconds from an event written (its transaction) to its first hand-over to a subscriber',
            labelNames: ['subscriber'],
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
            registers: [registry],
          }),
      };
    }
  }

  get running(): boolean {
    return this.#running;
  }

  /** Listens for commits, starts the polling fallback and dispatches what is already waiting. */
  async start(): Promise<void> {
    // Started without subscribers too: events are then marked dispatched (and purged in time).
    if (this.#running) return;
    this.#running = true;
    await this.#listen();
    let ticks = 0;
    this.#poll = setInterval(() => {
      // Abandoned last attempts are rare: looked for every tenth tick.
      if (ticks++ % 10 === 0) void this.#sweep();
      this.#wake();
    }, this.#settings.pollIntervalMs);
    this.#poll.unref();
    this.#log.info({ subscribers: [...this.#subscribers.keys()] }, 'event dispatcher started');
    this.#wake();
  }

  async #listen(): Promise<void> {
    const { database } = this.#options;
    const client = new pg.Client({
      connectionString: database.url,
      ssl: database.pool.options.ssl,
      application_name: 'groundwork:events',
      connectionTimeoutMillis: 5_000,
    });
    const lost = (error?: Error) => {
      if (this.#listener !== client) return;
      this.#listener = null;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (!this.#running) return;
      this.#log.warn(
        { err: error ? { message: error.message } : undefined },
        'event listener connection lost; polling until it is back',
      );
      this.#scheduleReconnect();
    };
    client.on('error', (error) => lost(error));
    client.on('end', () => lost());
    client.on('notification', () => this.#wake());
    try {
      await client.connect();
      await client.query(`listen ${EVENTS_CHANNEL}`);
      this.#listener = client;
      if (!this.#running) {
        this.#listener = null;
        await client.end().catch(() => undefined);
      }
    } catch (error) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
      if (!this.#running) return;
      this.#log.warn({ err: { message: message(error) } }, 'event listener could not connect');
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect(): void {
    if (this.#reconnect || !this.#running) return;
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      if (this.#running) void this.#listen().then(() => this.#wake());
    }, 1_000);
    this.#reconnect.unref();
  }

  /** Runs the claim loop now, or once more after the current pass. */
  #wake(): void {
    if (!this.#running) return;
    if (this.#looping) {
      this.#again = true;
      return;
    }
    this.#looping = true;
    this.#pass = this.#loop()
      .catch((error: unknown) => this.#databaseTrouble(error))
      .finally(() => {
        this.#looping = false;
        if (this.#again) {
          this.#again = false;
          this.#wake();
        }
      });
  }

  #databaseTrouble(error: unknown): void {
    // One line per minute while the database is away; the polling timer keeps retrying.
    const now = Date.now();
    if (now - this.#failingSince > 60_000) {
      this.#failingSince = now;
      this.#log.warn({ err: { message: message(error) } }, 'event dispatch pass failed');
    }
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      const { batchSize } = this.#settings;
      while (this.#running && (await this.#fanOut(batchSize)) === batchSize);
      while (this.#running) {
        const room = this.#settings.concurrency - this.#inflight.size;
        if (room <= 0) {
          this.#starved = true;
          break;
        }
        const want = Math.min(room, batchSize);
        const claimed = await this.#claim(want);
        for (const c of claimed) this.#start(c);
        if (claimed.length < want) break;
      }
      this.#failingSince = 0;
    } while (this.#again && this.#running);
  }

  /** Makes the hand-over rows of events not yet dispatched, for every subscriber that wants them. */
  async #fanOut(limit: number): Promise<number> {
    const { rowCount } = await this.#options.database.pool.query(
      `with ev as (
         select id, type from gw_event
          where dispatched_at is null
          order by id
          limit $3
          for update skip locked
       ), ins as (
         insert into gw_event_delivery (event_id, subscriber)
         select ev.id, s.name
           from ev join unnest($1::text[], $2::text[]) as s(name, type)
             on s.type = '*' or s.type = ev.type
         on conflict do nothing
       )
       update gw_event e set dispatched_at = now() from ev where e.id = ev.id`,
      [this.#pairs.names, this.#pairs.types, limit],
    );
    return rowCount ?? 0;
  }

  /** Claims due hand-overs of this process's subscribers: the claim is a lease (`due_at`). */
  async #claim(limit: number): Promise<Claimed[]> {
    const leaseMs = this.#settings.handlerTimeoutMs + LEASE_MARGIN_MS;
    const { rows } = await this.#options.database.pool.query<ClaimRow>(
      `with due as (
         select event_id, subscriber from gw_event_delivery
          where state = 'pending' and due_at <= now() and subscriber = any($1::text[])
            and attempts < $4
          order by due_at
          limit $2
          for update skip locked
       ), claimed as (
         update gw_event_delivery d
            set attempts = d.attempts + 1, due_at = now() + $3 * interval '1 millisecond'
           from due
          where d.event_id = due.event_id and d.subscriber = due.subscriber
         returning d.event_id, d.subscriber, d.attempts
       )
       select c.subscriber, c.attempts,
              extract(epoch from clock_timestamp() - e.occurred_at)::float8 as lag,
              e.id, e.type, e.version, e.occurred_at, e.subject_type, e.subject_id, e.actor_id,
              e.owner_id, e.request_id, e.data
         from claimed c join gw_event e on e.id = c.event_id`,
      [[...this.#subscribers.keys()], limit, leaseMs, this.#settings.maxAttempts],
    );
    const now = performance.now();
    const out: Claimed[] = [];
    for (const r of rows) {
      const subscriber = this.#subscribers.get(r.subscriber);
      if (!subscriber) continue;
      out.push({
        subscriber,
        attempt: r.attempts,
        lagSeconds: Math.max(0, r.lag),
        claimedAt: now,
        event: {
          id: r.id,
          type: r.type,
          version: r.version,
          occurredAt: r.occurred_at,
          subject:
            r.subject_type !== null && r.subject_id !== null
              ? { type: r.subject_type, id: r.subject_id }
              : null,
          actorId: r.actor_id,
          ownerId: r.owner_id,
          requestId: r.request_id,
          data: r.data,
        },
      });
    }
    return out;
  }

  #start(claimed: Claimed): void {
    const run = this.#run(claimed).finally(() => {
      this.#inflight.delete(run);
      // Claim again once half the slots are free: one round trip per batch, not per completion.
      if (this.#starved && this.#inflight.size <= this.#settings.concurrency / 2) {
        this.#starved = false;
        this.#wake();
      }
    });
    this.#inflight.add(run);
  }

  async #run(c: Claimed): Promise<void> {
    const { event, subscriber, attempt } = c;
    if (attempt === 1)
      this.#metrics?.lag.observe(
        { subscriber: subscriber.name },
        c.lagSeconds + (performance.now() - c.claimedAt) / 1000,
      );
    const log = this.#log.child({
      eventId: event.id,
      eventType: event.type,
      subscriber: subscriber.name,
      attempt,
      ...(event.requestId ? { requestId: event.requestId } : {}),
    });
    const timeout = new AbortController();
    const signal = AbortSignal.any([this.#shutdown.signal, timeout.signal]);
    const platform = this.#options.platform;
    const ctx: SubscriberContext = {
      log,
      signal,
      attempt,
      get platform() {
        return platform();
      },
    };
    const ms = this.#settings.handlerTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let onShutdown: (() => void) | undefined;
    let kind: Outcome;
    let error: string | null = null;
    let delayMs = 0;
    try {
      await Promise.race([
        Promise.resolve().then(() => subscriber.handle(event, ctx)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const e = new HandlerTimeoutError(ms);
            timeout.abort(e);
            reject(e);
          }, ms);
          onShutdown = () => reject(new ShutdownError());
          if (this.#shutdown.signal.aborted) onShutdown();
          else this.#shutdown.signal.addEventListener('abort', onShutdown, { once: true });
        }),
      ]);
      kind = 'done';
      this.#metrics?.dispatched.inc({ subscriber: subscriber.name, outcome: 'delivered' });
    } catch (caught) {
      error = message(caught);
      if (caught instanceof ShutdownError) {
        kind = 'release';
        this.#metrics?.dispatched.inc({ subscriber: subscriber.name, outcome: 'released' });
      } else if (attempt >= this.#settings.maxAttempts) {
        kind = 'failed';
        this.#metrics?.dispatched.inc({ subscriber: subscriber.name, outcome: 'failed' });
        log.error(
          { err: caught },
          'event subscriber failed on its last attempt; the hand-over is recorded as failed',
        );
      } else {
        kind = 'retry';
        delayMs = retryDelayMs(attempt, this.#settings);
        this.#metrics?.dispatched.inc({ subscriber: subscriber.name, outcome: 'retried' });
        log.warn({ err: caught, retryInMs: delayMs }, 'event subscriber failed, will retry');
        this.#retryIn(delayMs);
      }
    } finally {
      clearTimeout(timer);
      if (onShutdown) this.#shutdown.signal.removeEventListener('abort', onShutdown);
    }
    this.#record({
      eventId: event.id,
      subscriber: subscriber.name,
      attempt,
      kind,
      delayMs,
      error,
    });
  }

  /** Wakes the loop when the earliest retry known here becomes due (polling covers the rest). */
  #retryIn(delayMs: number): void {
    const at = Date.now() + delayMs;
    if (at >= this.#retryAt || !this.#running) return;
    clearTimeout(this.#retryTimer);
    this.#retryAt = at;
    this.#retryTimer = setTimeout(() => {
      this.#retryAt = Infinity;
      this.#wake();
    }, delayMs + 5);
    this.#retryTimer.unref();
  }

  #record(result: Result): void {
    this.#results.push(result);
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = null;
    });
  }

  /** Writes the outcomes gathered so far in one statement per pass. */
  async #flush(): Promise<void> {
    while (this.#results.length > 0) {
      const batch = this.#results.splice(0, 1_000);
      try {
        await this.#options.database.pool.query(
          `update gw_event_delivery d
              set state = case r.kind when 'done' then 'done' when 'failed' then 'failed'
                                      else 'pending' end,
                  completed_at = case when r.kind in ('done', 'failed') then now() end,
                  due_at = case r.kind
                             when 'retry' then now() + r.delay_ms * interval '1 millisecond'
                             when 'release' then now()
                             else d.due_at end,
                  attempts = case when r.kind = 'release' then d.attempts - 1 else d.attempts end,
                  last_error = case when r.kind = 'done' then d.last_error else r.error end
             from unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::text[])
                  as r(event_id, subscriber, attempt, kind, delay_ms, error)
            where d.event_id = r.event_id and d.subscriber = r.subscriber and d.state = 'pending'
              and (r.kind = 'done' or d.attempts = r.attempt)`,
          [
            batch.map((r) => r.eventId),
            batch.map((r) => r.subscriber),
            batch.map((r) => r.attempt),
            batch.map((r) => r.kind),
            batch.map((r) => r.delayMs),
            batch.map((r) => r.error),
          ],
        );
      } catch (error) {
        // Kept for the next pass: a completion lost with the process means one more hand-over.
        this.#results.unshift(...batch);
        this.#databaseTrouble(error);
        if (!this.#running) return;
        await new Promise((resolve) => setTimeout(resolve, 500).unref());
      }
    }
  }

  /** Records as failed the hand-overs whose last attempt's lease expired (a crashed handler). */
  async #sweep(): Promise<void> {
    try {
      const { rows } = await this.#options.database.pool.query<{
        event_id: string;
        subscriber: string;
      }>(
        `update gw_event_delivery
            set state = 'failed', completed_at = now(),
                last_error = coalesce(last_error, 'lease expired on the last attempt')
          where state = 'pending' and due_at <= now() and attempts >= $1
            and subscriber = any($2::text[])
        returning event_id, subscriber`,
        [this.#settings.maxAttempts, [...this.#subscribers.keys()]],
      );
      for (const r of rows) {
        this.#metrics?.dispatched.inc({ subscriber: r.subscriber, outcome: 'failed' });
        this.#log.error(
          { eventId: r.event_id, subscriber: r.subscriber },
          'event hand-over abandoned on its last attempt; recorded as failed',
        );
      }
    } catch (error) {
      this.#databaseTrouble(error);
    }
  }

  /**
   * Stops claiming, lets running handlers finish within `graceMs`, then aborts the rest (their
   * events are handed over again, by another process or the next start) and writes the outcomes.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#poll);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#reconnect);
    const listener = this.#listener;
    this.#listener = null;
    if (listener) await listener.end().catch(() => undefined);
    // A pass under way may still claim: its handlers are then released below.
    await this.#pass;
    if (this.#inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    this.#shutdown.abort(new ShutdownError());
    await Promise.allSettled([...this.#inflight]);
    // Outcomes still unwritten get one more try: the database may be closing right after.
    if (this.#results.length > 0 && !this.#flushing) this.#flushing = this.#flush();
    await this.#flushing;
    this.#log.info('event dispatcher stopped');
  }
}
