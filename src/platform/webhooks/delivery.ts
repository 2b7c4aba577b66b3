import { sql } from 'kysely';
import { withTransaction } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Platform } from '../modules/index.ts';
import { webhooksDb, type WebhooksDb } from './tables.ts';
import { activeSecrets } from './repository.ts';
import type { SealedBox } from '../encoding/index.ts';
import type { WebhookSettings } from './settings.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { AttemptRequest, AttemptResult } from './transport.ts';

/** Extra time a claim holds a message beyond the attempt's own timeout (rate-limit wait, writes). */
const LEASE_MARGIN_S = 30;
/** Results are written together: at most this many per statement, at most this long after. */
const FLUSH_MAX = 500;
const FLUSH_DELAY_MS = 5;
/** Result batches written at once (each in its own transaction). */
const PARALLEL_RECORDS = 4;
/** A rate-limited endpoint's message waits in memory up to this long; longer, it is put back. */
const MAX_RATE_WAIT_MS = 10_000;

/** What a claim hands to an attempt. */
interface Claimed {
  id: string;
  endpointId: string;
  ownerId: string;
  url: string;
  body: string;
  eventType: string;
  eventTime: Date;
  attempts: number;
  roundAttempts: number;
  rateLimitPerSecond: number | null;
  ordered: boolean;
}

interface Outcome {
  claim: Claimed;
  attemptedAt: Date;
  result: AttemptResult;
}

export interface DelivererOptions {
  platform: Platform;
  settings: WebhookSettings;
  box: SealedBox;
  metrics: WebhookMetrics;
  log: Logger;
  attempt: (req: AttemptRequest) => Promise<AttemptResult>;
  /** Enqueues delivery jobs for these messages (now, or at `startAfter`). */
  wake: (ids: readonly string[], startAfter?: Date) => Promise<void>;
  /** Mails the owner of an endpoint that was disabled. */
  notifyDisabled: (endpoint: {
    id: string;
    ownerId: string;
    url: string;
    reason: string;
  }) => Promise<void>;
  userAgent: string;
}

/**
 * Delivers messages: claims them in the database (a lease per message, the per-endpoint
 * concurrency cap and ordering decided in the claim's SQL), runs the attempts without holding a
 * job worker (a receiver that hangs for the whole timeout occupies only its endpoint's slots),
 * and writes the results in batches.
 *
 * The delivery job (`webhooks.deliver`) only hands a message id to `deliver`: pg-boss's workers
 * take a new batch only when the whole previous batch finished, so a batch that contained one
 * hanging receiver would stall the workers for the timeout (15 s) and every healthy endpoint
 * with them. A message that cannot be claimed now (its endpoint at its cap, an earlier message
 * of an ordered endpoint still pending) is woken again when a slot frees, and by the sweep job.
 */
export class Deliverer {
  readonly #o: DelivererOptions;
  readonly #db: WebhooksDb;
  #claimBatch: string[] = [];
  #claimScheduled: Promise<void> | null = null;
  #outcomes: Outcome[] = [];
  #flushTimer: NodeJS.Timeout | null = null;
  readonly #recording = new Set<Promise<void>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #nextSlot = new Map<string, number>();
  /** Parked message ids per endpoint, with their order (`seq`). */
  readonly #parked = new Map<string, Map<string, bigint>>();
  /** Attempts running per endpoint in this process, and claimed messages waiting for a slot. */
  readonly #running = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();
  readonly #abort = new AbortController();

  constructor(options: DelivererOptions) {
    this.#o = options;
    this.#db = webhooksDb(options.platform.database.db);
  }

  /** Deliveries running in this process. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Claims the message and starts its attempt if it is due and its endpoint has a free slot
   * (several calls in the same tick share one claim statement). Resolves once claimed or not.
   */
  deliver(messageId: string): Promise<void> {
    this.#claimBatch.push(messageId);
    this.#claimScheduled ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const ids = this.#claimBatch;
      this.#claimBatch = [];
      this.#claimScheduled = null;
      return this.#claim(ids);
    });
    return this.#claimScheduled;
  }

  async #claim(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const { settings } = this.#o;
    // A claimed message may wait in memory for its endpoint's slot (at most two rounds of
    // attempts: see #saturated) before its own attempt: the lease covers all three.
    const leaseS = 3 * Math.ceil(settings.timeoutMs / 1000) + LEASE_MARGIN_S;
    const saturated = this.#saturated();
    const { rows } = await sql<{
      id: string;
      endpoint_id: string;
      owner_id: string;
      url: string;
      body: string;
      event_type: string;
      event_time: Date;
      attempts: number;
      round_attempts: number;
      rate_limit_per_second: number | null;
      ordered: boolean;
    }>`
      with cand as (
        select m.id, m.endpoint_id, m.seq,
               row_number() over (partition by m.endpoint_id order by m.seq) as rn
          from gw_webhook_message m
         where m.id = any(${ids}::uuid[]) and m.status = 'pending'
           and m.next_attempt_at <= now()
           and (m.locked_until is null or m.locked_until < now())
      ), ok as (
        select c.id
          from cand c
          join gw_webhook_endpoint e on e.id = c.endpoint_id
         where e.enabled
           and not (c.endpoint_id = any(${saturated}::uuid[]))
           and c.rn <= case when e.ordered then 1 else ${settings.concurrencyPerEndpoint}::int end
           and (not e.ordered or not exists (
                 select 1 from gw_webhook_message p
                  where p.endpoint_id = c.endpoint_id and p.status = 'pending' and p.seq < c.seq))
      )
      update gw_webhook_message m
         set locked_until = now() + make_interval(secs => ${leaseS}),
             attempts = m.attempts + 1,
             round_attempts = m.round_attempts + 1,
             first_attempt_at = coalesce(m.first_attempt_at, now())
        from ok, gw_webhook_endpoint e
       where m.id = ok.id and e.id = m.endpoint_id and m.status = 'pending'
         and (m.locked_until is null or m.locked_until < now())
      returning m.id, m.endpoint_id, e.owner_id, e.url, m.body, m.event_type, m.event_time,
                m.attempts, m.round_attempts, e.rate_limit_per_second, e.ordered`.execute(this.#db);
    if (rows.length < ids.length)
      await this.#park(
        ids,
        rows.map((r) => r.id),
      );
    if (rows.length === 0) return;
    const secrets = await activeSecrets(this.#db, [...new Set(rows.map((r) => r.endpoint_id))]);
    for (const r of rows) {
      const claim: Claimed = {
        id: r.id,
        endpointId: r.endpoint_id,
        ownerId: r.owner_id,
        url: r.url,
        body: r.body,
        eventType: r.event_type,
        eventTime: new Date(r.event_time),
        attempts: r.attempts,
        roundAttempts: r.round_attempts,
        rateLimitPerSecond: r.rate_limit_per_second,
        ordered: r.ordered,
      };
      const sealed = secrets.get(r.endpoint_id) ?? [];
      const run = this.#run(claim, sealed).catch((error: unknown) => {
        this.#o.log.error({ err: error, messageId: claim.id }, 'webhook attempt failed to run');
      });
      this.#inFlight.add(run);
      void run.finally(() => this.#inFlight.delete(run));
    }
  }

  /**
   * Remembers due messages the claim refused (their endpoint at its cap, or an earlier message of
   * an ordered endpoint pending), to wake them when a slot of their endpoint frees here. Messages
   * a claim skipped for other reasons (not due, finished, claimed elsewhere) are not parked.
   */
  async #park(asked: readonly string[], claimed: readonly string[]): Promise<void> {
    const got = new Set(claimed);
    const refused = asked.filter((id) => !got.has(id));
    const rows = await this.#db
      .selectFrom('gw_webhook_message')
      .select(['id', 'endpoint_id', 'seq'])
      .where('id', '=', sql<string>`any(${refused}::uuid[])`)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', sql<Date>`now()`)
      .where((eb) =>
        eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', sql<Date>`now()`)]),
      )
      .execute();
    for (const r of rows) {
      const parked = this.#parked.get(r.endpoint_id) ?? new Map<string, bigint>();
      parked.set(r.id, BigInt(r.seq));
      this.#parked.set(r.endpoint_id, parked);
    }
  }

  /**
   * The oldest parked messages of these endpoints (up to the cap each: the next of an ordered
   * endpoint is among them), taken out of the park.
   */
  #unpark(endpointIds: readonly string[]): string[] {
    const cap = this.#o.settings.concurrencyPerEndpoint;
    const out: string[] = [];
    for (const endpointId of endpointIds) {
      const parked = this.#parked.get(endpointId);
      if (!parked) continue;
      const taken = [...parked]
        .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
        .slice(0, cap)
        .map(([id]) => id);
      for (const id of taken) parked.delete(id);
      if (parked.size === 0) this.#parked.delete(endpointId);
      out.push(...taken);
    }
    return out;
  }

  /**
   * Endpoints with two rounds of work in this process (running and waiting at twice the cap):
   * the claim leaves their messages in the database (parked), so a hanging receiver holds at
   * most that many of its messages here, and none of any other endpoint's slots.
   */
  #saturated(): string[] {
    const cap = this.#o.settings.concurrencyPerEndpoint;
    const out: string[] = [];
    for (const [endpointId, running] of this.#running) {
      if (running + (this.#waiting.get(endpointId)?.length ?? 0) >= 2 * cap) out.push(endpointId);
    }
    return out;
  }

  /** A slot of the endpoint's concurrency cap (one for an ordered endpoint). */
  async #acquire(endpointId: string, cap: number): Promise<void> {
    const running = this.#running.get(endpointId) ?? 0;
    if (running < cap) {
      this.#running.set(endpointId, running + 1);
      return;
    }
    await new Promise<void>((resolve) => {
      const queue = this.#waiting.get(endpointId) ?? [];
      queue.push(resolve);
      this.#waiting.set(endpointId, queue);
    });
  }

  /** Hands the slot to the next waiting message, or frees it. */
  #release(endpointId: string): void {
    const queue = this.#waiting.get(endpointId);
    const next = queue?.shift();
    if (queue?.length === 0) this.#waiting.delete(endpointId);
    if (next) {
      next();
      return;
    }
    const running = (this.#running.get(endpointId) ?? 1) - 1;
    if (running <= 0) this.#running.delete(endpointId);
    else this.#running.set(endpointId, running);
  }

  /** When this endpoint's next request may start under its rate limit (ms since epoch). */
  #slot(endpointId: string, perSecond: number | null): number {
    const now = Date.now();
    if (perSecond === null) return now;
    const at = Math.max(now, this.#nextSlot.get(endpointId) ?? now);
    this.#nextSlot.set(endpointId, at + 1000 / perSecond);
    if (this.#nextSlot.size > 10_000) this.#nextSlot.clear();
    return at;
  }

  async #run(claim: Claimed, sealed: readonly string[]): Promise<void> {
    const cap = claim.ordered ? 1 : this.#o.settings.concurrencyPerEndpoint;
    await this.#acquire(claim.endpointId, cap);
    try {
      await this.#attempt(claim, sealed);
    } finally {
      this.#release(claim.endpointId);
    }
  }

  async #attempt(claim: Claimed, sealed: readonly string[]): Promise<void> {
    const { settings, box, metrics } = this.#o;
    const wait = this.#slot(claim.endpointId, claim.rateLimitPerSecond) - Date.now();
    if (wait > MAX_RATE_WAIT_MS) {
      await this.#putBack(claim, new Date(Date.now() + wait));
      return;
    }
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const secrets = sealed.map((s) => box.open(s)).filter((s): s is string => s !== null);
    const attemptedAt = new Date();
    if (claim.attempts === 1)
      metrics.lag.observe(Math.max(0, (attemptedAt.getTime() - claim.eventTime.getTime()) / 1000));
    let result: AttemptResult;
    if (secrets.length === 0) {
      // Sealed under another APP_SECRET: nothing can sign; the owner rotates to recover.
      result = {
        outcome: 'retry',
        status: null,
        durationMs: 0,
        responseBody: '',
        responseTruncated: false,
        errorClass: 'invalid-url',
        errorDetail: 'no usable signing secret: rotate the endpoint secret',
        retryAfterSeconds: null,
        address: null,
      };
    } else {
      result = await this.#o.attempt({
        url: claim.url,
        messageId: claim.id,
        timestampSeconds: Math.floor(attemptedAt.getTime() / 1000),
        body: claim.body,
        secrets,
        timeoutMs: settings.timeoutMs,
        policy: {
          allowPrivateNetworks: settings.allowPrivateNetworks,
          requireHttps: settings.requireHttps,
        },
        signal: this.#abort.signal,
        userAgent: this.#o.userAgent,
      });
    }
    metrics.attempts.inc({ outcome: result.outcome });
    this.#push({ claim, attemptedAt, result });
  }

  /** Puts a claimed message back unattempted (its endpoint's rate limit), due at `at`. */
  async #putBack(claim: Claimed, at: Date): Promise<void> {
    await this.#db
      .updateTable('gw_webhook_message')
      .set((eb) => ({
        locked_until: null,
        next_attempt_at: at,
        attempts: eb('attempts', '-', 1),
        round_attempts: eb('round_attempts', '-', 1),
      }))
      .where('id', '=', claim.id)
      .where('attempts', '=', claim.attempts)
      .execute();
    await this.#o.wake([claim.id], at);
  }

  #push(outcome: Outcome): void {
    this.#outcomes.push(outcome);
    if (this.#outcomes.length >= FLUSH_MAX) this.#flushSoon(0);
    else this.#flushSoon(FLUSH_DELAY_MS);
  }

  #flushSoon(delay: number): void {
    if (this.#flushTimer) {
      if (delay > 0) return;
      clearTimeout(this.#flushTimer);
    }
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.#startRecords();
    }, delay);
  }

  /**
   * Writes waiting results, a few batches at once (each its own transaction): one writer at a
   * time fell behind the attempts on a busy database, and a result not yet written keeps its
   * message counted against its endpoint's cap.
   */
  #startRecords(): void {
    while (this.#outcomes.length > 0 && this.#recording.size < PARALLEL_RECORDS) {
      const batch = this.#outcomes.splice(0, FLUSH_MAX);
      const run: Promise<void> = this.#record(batch)
        .catch((error: unknown) => {
          this.#o.log.error({ err: error }, 'webhook results not recorded');
        })
        .finally(() => {
          this.#recording.delete(run);
          if (this.#outcomes.length > 0) this.#startRecords();
        });
      this.#recording.add(run);
    }
  }

  /** The delay before the next attempt after a failed one, or null when none is left. */
  nextDelayS(roundAttempts: number, retryAfterSeconds: number | null): number | null {
    const { retryScheduleS, maxRetryAfterS } = this.#o.settings;
    if (roundAttempts > retryScheduleS.length) return null;
    if (retryAfterSeconds !== null) return Math.min(Math.max(retryAfterSeconds, 1), maxRetryAfterS);
    const base = retryScheduleS[roundAttempts - 1] ?? 0;
    // ±20 % jitter, so endpoints that failed together do not retry together.
    return base * (0.8 + Math.random() * 0.4);
  }

  async #record(batch: Outcome[]): Promise<void> {
    if (batch.length === 0) return;
    const now = Date.now();
    const attempts = batch.map((o) => ({
      id: globalThis.crypto.randomUUID(),
      message_id: o.claim.id,
      endpoint_id: o.claim.endpointId,
      attempted_at: o.attemptedAt,
      outcome: o.result.outcome,
      status_code: o.result.status,
      duration_ms: Math.round(o.result.durationMs),
      response_body: o.result.responseBody.slice(0, 4096),
      error_class: o.result.errorClass,
    }));
    const updates: {
      id: string;
      attempts: number;
      status: string;
      next: Date | null;
      status_code: number | null;
      error_class: string | null;
    }[] = [];
    const retries = new Map<number, string[]>();
    const succeeded = new Set<string>();
    const failing = new Set<string>();
    const gone = new Set<string>();
    for (const o of batch) {
      const { claim, result } = o;
      let status = 'pending';
      let next: Date | null = null;
      if (result.outcome === 'success') {
        status = 'succeeded';
        succeeded.add(claim.endpointId);
      } else if (result.outcome === 'gone') {
        status = 'failed';
        gone.add(claim.endpointId);
      } else {
        failing.add(claim.endpointId);
        const delay = this.nextDelayS(claim.roundAttempts, result.retryAfterSeconds);
        if (delay === null) status = 'failed';
        else {
          next = new Date(now + delay * 1000);
          // One job per second of due time: jittered retries of a batch share a few statements.
          const second = Math.ceil(next.getTime() / 1000);
          retries.set(second, [...(retries.get(second) ?? []), claim.id]);
        }
      }
      updates.push({
        id: claim.id,
        attempts: claim.attempts,
        status,
        next,
        status_code: result.status,
        error_class: result.errorClass,
      });
    }
    for (const id of succeeded) failing.delete(id);
    // Retried on a deadlock or serialization failure (two batches updating one endpoint).
    const disabled = await withTransaction(this.#o.platform.database.db, async (tx) => {
      const trx = webhooksDb(tx);
      // Only for messages that still exist: an endpoint deleted during its attempts took its
      // messages with it, and one missing row must not lose the batch's other results.
      await sql`
        insert into gw_webhook_attempt
          (id, message_id, endpoint_id, attempted_at, outcome, status_code, duration_ms,
           response_body, error_class)
        select x.id, x.message_id, x.endpoint_id, x.attempted_at, x.outcome, x.status_code,
               x.duration_ms, x.response_body, x.error_class
          from jsonb_to_recordset(${JSON.stringify(attempts)}::jsonb)
            as x(id uuid, message_id uuid, endpoint_id uuid, attempted_at timestamptz, outcome text,
                 status_code int, duration_ms int, response_body text, error_class text)
         where exists (select 1 from gw_webhook_message m where m.id = x.message_id)`.execute(trx);
      await sql`
        update gw_webhook_message m
           set status = v.status,
               next_attempt_at = v.next,
               locked_until = null,
               last_status = v.status_code,
               last_error_class = v.error_class,
               finished_at = case when v.status = 'pending' then null else now() end
          from (select * from jsonb_to_recordset(${JSON.stringify(updates)}::jsonb)
                  as x(id uuid, attempts int, status text, next timestamptz, status_code int, error_class text)) v
         where m.id = v.id and m.attempts = v.attempts and m.status = 'pending'`.execute(trx);
      if (succeeded.size > 0)
        await trx
          .updateTable('gw_webhook_endpoint')
          .set({ failing_since: null })
          .where('id', '=', sql<string>`any(${[...succeeded]}::uuid[])`)
          .where('failing_since', 'is not', null)
          .execute();
      const off: { id: string; ownerId: string; url: string; reason: string }[] = [];
      if (failing.size > 0) {
        await trx
          .updateTable('gw_webhook_endpoint')
          .set({ failing_since: sql<Date>`now()` })
          .where('id', '=', sql<string>`any(${[...failing]}::uuid[])`)
          .where('failing_since', 'is', null)
          .execute();
        const rows = await trx
          .updateTable('gw_webhook_endpoint')
          .set({ enabled: false, disabled_reason: 'failing', disabled_at: sql<Date>`now()` })
          .where('id', '=', sql<string>`any(${[...failing]}::uuid[])`)
          .where('enabled', '=', true)
          .where(
            'failing_since',
            '<=',
            sql<Date>`now() - make_interval(secs => ${this.#o.settings.disableAfterS})`,
          )
          .returning(['id', 'owner_id', 'url'])
          .execute();
        off.push(
          ...rows.map((r) => ({ id: r.id, ownerId: r.owner_id, url: r.url, reason: 'failing' })),
        );
      }
      if (gone.size > 0) {
        const rows = await trx
          .updateTable('gw_webhook_endpoint')
          .set({ enabled: false, disabled_reason: 'gone', disabled_at: sql<Date>`now()` })
          .where('id', '=', sql<string>`any(${[...gone]}::uuid[])`)
          .where('enabled', '=', true)
          .returning(['id', 'owner_id', 'url'])
          .execute();
        off.push(
          ...rows.map((r) => ({ id: r.id, ownerId: r.owner_id, url: r.url, reason: 'gone' })),
        );
      }
      return off;
    });
    for (const [second, ids] of retries) await this.#o.wake(ids, new Date(second * 1000));
    for (const endpoint of disabled) {
      this.#o.metrics.disabled.inc({ reason: endpoint.reason });
      await this.#o.notifyDisabled(endpoint).catch((error: unknown) => {
        this.#o.log.error(
          { err: error, endpointId: endpoint.id },
          'disabled-endpoint mail not sent',
        );
      });
    }
    // Slots freed: wake the messages parked behind them (cap reached, ordered successors).
    const waiting = this.#unpark([...new Set(batch.map((o) => o.claim.endpointId))]);
    // Claimed here, at once: a job would add the queue's round trip to every freed slot.
    for (const id of waiting)
      void this.deliver(id).catch((error: unknown) => {
        this.#o.log.error({ err: error, messageId: id }, 'webhook claim failed');
      });
  }

  /** Due, unclaimed messages of these endpoints, up to their cap each (oldest first). */
  async waitingMessages(endpointIds: readonly string[]): Promise<string[]> {
    if (endpointIds.length === 0) return [];
    const { rows } = await sql<{ id: string }>`
      select s.id from (
        select m.id, row_number() over (partition by m.endpoint_id order by m.seq) as rn
          from gw_webhook_message m
          join gw_webhook_endpoint e on e.id = m.endpoint_id and e.enabled
         where m.endpoint_id = any(${[...endpointIds]}::uuid[]) and m.status = 'pending'
           and m.next_attempt_at <= now()
           and (m.locked_until is null or m.locked_until < now())) s
       where s.rn <= ${this.#o.settings.concurrencyPerEndpoint}`.execute(this.#db);
    return rows.map((r) => r.id);
  }

  /** Waits for running attempts and their results (tests, shutdown). */
  async drain(): Promise<void> {
    while (
      this.#inFlight.size > 0 ||
      this.#outcomes.length > 0 ||
      this.#claimScheduled ||
      this.#recording.size > 0
    ) {
      await this.#claimScheduled;
      await Promise.all([...this.#inFlight]);
      if (this.#flushTimer) {
        clearTimeout(this.#flushTimer);
        this.#flushTimer = null;
      }
      this.#startRecords();
      await Promise.all([...this.#recording]);
    }
  }

  /** Aborts running attempts (they are recorded as `aborted` and retried). */
  abort(): void {
    this.#abort.abort();
  }
}

/**
 * Due messages nobody is delivering (a worker died holding them, or they waited for a slot of
 * their endpoint in another process): the oldest `perEndpoint` of each endpoint, `limit` in all.
 * Per endpoint, so an endpoint with a long backlog (a receiver that hangs) does not fill the
 * sweep with messages its claim would only park again.
 */
export async function strandedMessages(
  db: WebhooksDb,
  perEndpoint: number,
  limit: number,
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    select s.id from (
      select m.id, m.next_attempt_at,
             row_number() over (partition by m.endpoint_id order by m.seq) as rn
        from gw_webhook_message m
       where m.status = 'pending'
         and m.next_attempt_at <= now() - interval '30 seconds'
         and (m.locked_until is null or m.locked_until < now())) s
     where s.rn <= ${perEndpoint}
     order by s.next_attempt_at
     limit ${limit}`.execute(db);
  return rows.map((r) => r.id);
}
