import { Counter, type Registry } from 'prom-client';
import type { AnyDb } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import { recordAudits, type AuditEvent } from './record.ts';

export interface AuditBufferOptions {
  /** Where batches are written (the platform's database, not a request's transaction). */
  db: AnyDb;
  logger: Logger;
  /** Registry for `audit_events_dropped_total`; none in scripts. */
  metrics?: Registry;
  /** Events held at most; past it new events are dropped and counted (default 10,000). */
  capacity?: number;
  /** Events written per statement; a full batch is flushed at once (default 500). */
  batchSize?: number;
  /** Flush at least this often while events wait (ms, default 1,000). */
  intervalMs?: number;
}

/** What the database accepts as an action (migration 202612020100's check). */
// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with '.', which its class excludes: linear
const ACTION = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

/** prom-client refuses a second metric of a name in one registry: one counter per registry. */
const counters = new WeakMap<Registry, Counter<'reason'>>();

function droppedCounter(metrics: Registry | undefined): Counter<'reason'> | undefined {
  if (!metrics) return undefined;
  let counter = counters.get(metrics);
  if (!counter) {
    counter = new Counter({
      name: 'audit_events_dropped_total',
      help: 'Data-access audit events dropped: buffer full (overflow) or a batch that could not be written (error)',
      labelNames: ['reason'],
      registers: [metrics],
    });
    // Both series exist from the start (at 0), so an alert on their increase has a baseline.
    counter.inc({ reason: 'overflow' }, 0);
    counter.inc({ reason: 'error' }, 0);
    counters.set(metrics, counter);
  }
  return counter;
}

/**
 * High-volume data-access audit (`platform.audit.recordAccess`): events wait in a bounded
 * in-memory buffer and are written in batches (when a batch is full, and every `intervalMs`), so
 * recording never waits for the database. When the buffer is full the event is dropped and
 * counted in `audit_events_dropped_total{reason="overflow"}`; an event with a malformed action,
 * or a batch the database refuses, is dropped and counted with `reason="error"`. `close()` writes what is left (shutdown).
 *
 * Not for security events (sign-ins, role changes, deletions): those are written with
 * `recordAudit` in the transaction of the change, and are never dropped.
 */
export class AuditBuffer {
  readonly #db: AnyDb;
  readonly #logger: Logger;
  readonly #dropped: Counter<'reason'> | undefined;
  readonly #capacity: number;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  #queue: AuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #soon = false;
  #droppedCount = 0;

  constructor(options: AuditBufferOptions) {
    this.#db = options.db;
    this.#logger = options.logger;
    this.#dropped = droppedCounter(options.metrics);
    this.#capacity = options.capacity ?? 10_000;
    this.#batchSize = options.batchSize ?? 500;
    this.#intervalMs = options.intervalMs ?? 1_000;
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Events dropped since start (overflow and failed batches): the counter's total. */
  get dropped(): number {
    return this.#droppedCount;
  }

  /**
   * Queues one data-access event (stamped now); returns false when it was dropped (buffer full,
   * or closed). Never throws and never waits.
   */
  recordAccess(event: AuditEvent): boolean {
    if (this.#closed || this.#queue.length >= this.#capacity) {
      this.#drop('overflow', 1);
      return false;
    }
    // The table's own check, here: one bad event must not cost the batch it would sit in.
    if (!ACTION.test(event.action)) {
      this.#drop('error', 1);
      this.#logger.warn(
        { action: event.action },
        'data-access audit event with an invalid action: dropped',
      );
      return false;
    }
    this.#queue.push({ ...event, occurredAt: event.occurredAt ?? new Date() });
    if (this.#queue.length >= this.#batchSize) {
      // Not in this call: building a batch's statement is work the caller must not wait for.
      if (!this.#soon) {
        this.#soon = true;
        setImmediate(() => {
          this.#soon = false;
          void this.flush();
        });
      }
    } else this.#timer ??= setTimeout(() => void this.flush(), this.#intervalMs).unref();
    return true;
  }

  /** Writes every waiting event (in batches); resolves when they are written or dropped. */
  async flush(): Promise<void> {
    // One writer at a time, in order; a flush asked for during one runs after it.
    while (this.#flushing) await this.#flushing;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length === 0) return;
    this.#flushing = this.#drain();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = undefined;
    }
  }

  /** Stops taking events and writes those waiting (call before the database closes). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#batchSize);
      try {
        await recordAudits(this.#db, batch);
      } catch (error) {
        this.#drop('error', batch.length);
        this.#logger.error(
          { err: error, events: batch.length },
          'data-access audit events could not be written: dropped',
        );
      }
    }
  }

  #drop(reason: 'overflow' | 'error', n: number): void {
    this.#droppedCount += n;
    this.#dropped?.inc({ reason }, n);
  }
}
