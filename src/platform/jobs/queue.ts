import { PgBoss, fromKysely, type JobResult, type JobWithMetadata } from 'pg-boss';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { CompiledQuery } from 'kysely';
import { preparedSql, type AnyDb, type Database } from '../db/index.ts';
import { currentTraceparent, runInJobSpan, type Logger } from '../observability/index.ts';
import {
  DEAD_SUFFIX,
  DEFAULTS,
  InvalidJobPayloadError,
  payloadErrors,
  type JobContext,
  type JobPlatform,
  type AnyJob,
  type JobDefinition,
} from './definition.ts';
import type { Static, TSchema } from 'typebox';

/**
 * pg-boss's adapter for a Kysely transaction (its `fromKysely`), sending pg-boss's statements as
 * named prepared statements (platform/db/prepared.ts): its insert is the one statement of every
 * enqueue, of a fixed text per queue, and planning it cost more than running it (0.29 ms against
 * 0.17 ms per order in the shop's benchmark).
 */
function preparedFromKysely(trx: AnyDb): ReturnType<typeof fromKysely> {
  return {
    async executeSql(text: string, values?: unknown[]) {
      const result = await trx.executeQuery(CompiledQuery.raw(preparedSql(text), values ?? []));
      return { rows: [...result.rows] };
    },
  };
}

/** pg-boss keeps its tables in this schema of the application database. */
export const JOBS_SCHEMA = 'pgboss';

/** Lease margin: pg-boss expires an active job this long after our own per-job timeout fires. */
const LEASE_MARGIN_SECONDS = 5;

/** What every stored job carries: the payload and who triggered it. */
interface Envelope {
  payload: unknown;
  meta: Meta;
}

/** Who triggered a job; `traceparent` (W3C) only when it was enqueued inside a trace. */
interface Meta {
  userId: string | null;
  requestId: string | null;
  traceparent?: string;
}

/** The metadata stored with a job enqueued now: the caller's, plus the active trace if any. */
function metaNow(userId: string | null | undefined, requestId: string | null | undefined): Meta {
  const meta: Meta = { userId: userId ?? null, requestId: requestId ?? null };
  const traceparent = currentTraceparent();
  if (traceparent !== undefined) meta.traceparent = traceparent;
  return meta;
}

export interface EnqueueOptions {
  /** Enqueue inside this transaction: the job exists only if it commits. */
  trx?: AnyDb;
  /** Who triggered it: shown their job by the status API. */
  userId?: string | null;
  requestId?: string | null;
  /** Run no earlier than this (a date, or seconds from now). */
  startAfter?: Date | number;
  /** Overrides the job type's priority. */
  priority?: number;
}

export interface Enqueued {
  id: string;
  /** false when a waiting job with the same singleton key already existed (its id is returned). */
  created: boolean;
}

export type JobState = 'queued' | 'active' | 'retrying' | 'completed' | 'failed' | 'cancelled';

export interface JobStatus {
  id: string;
  queue: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  createdAt: string;
  startAfter: string;
  startedAt: string | null;
  completedAt: string | null;
  result?: unknown;
  error?: { message: string };
}

export interface QueueCounts {
  queue: string;
  queued: number;
  retrying: number;
  active: number;
  failed: number;
  dead: number;
  /** Seconds the oldest due job has been waiting; 0 when none waits. */
  oldestWaitingSeconds: number;
}

export interface DeadJob {
  id: string;
  queue: string;
  originalId: string | null;
  deadAt: string;
  originalCreatedAt: string | null;
  attempts: number | null;
  error: { name?: string; message: string; stack?: string } | null;
  payload: unknown;
  userId: string | null;
  requestId: string | null;
}

export interface JobQueueOptions {
  config: Config;
  database: Database;
  logger: Logger;
  metrics?: Registry;
  definitions: readonly AnyJob[];
  /** Run workers, the lease supervisor and cron schedules in this process (worker and all). */
  work: boolean;
}

const STATES: Record<string, JobState> = {
  created: 'queued',
  retry: 'retrying',
  active: 'active',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function errorSummary(error: unknown): { name: string; message: string; stack?: string } {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack };
  }
  return { name: 'Error', message: String(error) };
}

function toOutput(result: unknown): object | undefined {
  if (result === undefined) return undefined;
  if (result !== null && typeof result === 'object' && !Array.isArray(result)) return result;
  return { value: result };
}

function iso(date: Date | string | null | undefined): string | null {
  if (date === null || date === undefined) return null;
  return new Date(date).toISOString();
}

class JobTimeoutError extends Error {
  constructor(seconds: number) {
    super(`job timed out after ${seconds}s`);
    this.name = 'JobTimeoutError';
  }
}

interface JobRow {
  id: string;
  name: string;
  state: string;
  retry_count: number;
  retry_limit: number;
  created_on: Date;
  start_after: Date;
  started_on: Date | null;
  completed_on: Date | null;
  output: Record<string, unknown> | null;
  user_id: string | null;
}

/**
 * The durable job queue: pg-boss on the application's PostgreSQL, with typed job definitions,
 * transactional enqueue, dead letters and the queries behind the status and admin APIs.
 */
export class JobQueue {
  readonly #boss: PgBoss;
  readonly #options: JobQueueOptions;
  readonly #definitions = new Map<string, AnyJob>();
  readonly #log: Logger;
  #started = false;
  #stopping = false;
  #platform: JobPlatform | undefined;
  #metrics?: {
    jobs: Counter<'queue' | 'outcome'>;
    duration: Histogram<'queue'>;
  };

  constructor(options: JobQueueOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'jobs' });
    for (const d of options.definitions) {
      if (this.#definitions.has(d.name)) throw new Error(`job ${d.name} is defined twice`);
      this.#definitions.set(d.name, d);
    }
    const { config, database, work } = options;
    this.#boss = new PgBoss({
      connectionString: database.url,
      schema: JOBS_SCHEMA,
      max: config.jobs.poolMax,
      application_name: `groundwork:jobs`,
      connectionTimeoutMillis: config.database.connectTimeoutMs,
      ...(config.database.ssl === 'disable' ? {} : { ssl: database.pool.options.ssl as unknown }),
      useListenNotify: true,
      // Only worker processes supervise leases and run cron; API processes only enqueue and read.
      supervise: work,
      schedule: work,
      superviseIntervalSeconds: config.jobs.superviseIntervalS,
      // Lease expiry runs in the monitor pass, which pg-boss gates per queue by this interval.
      monitorIntervalSeconds: config.jobs.superviseIntervalS,
      cronWorkerIntervalSeconds: config.jobs.cronIntervalS,
      cronMonitorIntervalSeconds: config.jobs.cronIntervalS,
      // Migrations run at start under pg-boss's own advisory lock, safe with many processes.
      migrate: true,
    });
    this.#boss.on('error', (error: Error) => {
      if (this.#stopping) return;
      this.#log.error({ err: error }, 'job queue error');
    });
    this.#boss.on('warning', (warning: { message: string }) => {
      this.#log.warn({ warning: warning.message }, 'job queue warning');
    });
    if (options.metrics) this.#instrument(options.metrics);
  }

  /** Adds a job type (platform areas such as mail register theirs); only before `start()`. */
  register(definition: AnyJob): void {
    if (this.#started) throw new Error(`job ${definition.name} registered after start`);
    if (this.#definitions.has(definition.name))
      throw new Error(`job ${definition.name} is defined twice`);
    this.#definitions.set(definition.name, definition);
  }

  get definitions(): readonly AnyJob[] {
    return [...this.#definitions.values()];
  }

  get started(): boolean {
    return this.#started && !this.#stopping;
  }

  /** Installs or migrates pg-boss's schema, creates every queue and its dead-letter queue. */
  async start(): Promise<void> {
    await this.#boss.start();
    for (const d of this.#definitions.values()) await this.#ensureQueue(d);
    this.#started = true;
    if (this.#options.work) await this.#reconcileSchedules();
  }

  async #ensureQueue(d: AnyJob): Promise<void> {
    const o = d.options;
    const dead = d.name + DEAD_SUFFIX;
    if (!(await this.#boss.getQueue(dead))) {
      await this.#boss.createQueue(dead, {
        retentionSeconds: DEFAULTS.deadRetentionSeconds,
        deleteAfterSeconds: DEFAULTS.deadRetentionSeconds,
      });
    }
    const settings = {
      retryLimit: o.retries ?? DEFAULTS.retries,
      retryDelay: o.backoff?.initialSeconds ?? DEFAULTS.initialBackoffSeconds,
      retryBackoff: true,
      retryDelayMax: o.backoff?.maxSeconds ?? DEFAULTS.maxBackoffSeconds,
      expireInSeconds: (o.timeoutSeconds ?? DEFAULTS.timeoutSeconds) + LEASE_MARGIN_SECONDS,
      deleteAfterSeconds: o.keepCompletedSeconds ?? DEFAULTS.keepCompletedSeconds,
      deadLetter: dead,
      notify: true,
    };
    const existing = await this.#boss.getQueue(d.name);
    if (!existing) {
      await this.#boss.createQueue(d.name, {
        ...settings,
        policy: o.singletonKey ? 'short' : 'standard',
      });
    } else {
      await this.#boss.updateQueue(d.name, settings);
    }
  }

  /** Cron schedules follow the definitions: added, changed, and removed when a definition drops its cron. */
  async #reconcileSchedules(): Promise<void> {
    const existing = await this.#boss.getSchedules();
    for (const d of this.#definitions.values()) {
      const cron = d.options.cron;
      if (cron) {
        const data: Envelope = { payload: cron.payload, meta: { userId: null, requestId: null } };
        await this.#boss.schedule(d.name, cron.expression, data, { tz: cron.tz ?? 'UTC' });
      } else if (existing.some((s) => s.name === d.name)) {
        await this.#boss.unschedule(d.name);
      }
    }
  }

  /** Starts fetching and running jobs of every defined queue. */
  async startWorkers(): Promise<void> {
    const pollingIntervalSeconds = this.#options.config.jobs.pollIntervalMs / 1000;
    for (const d of this.#definitions.values()) {
      const concurrency = d.options.concurrency ?? DEFAULTS.concurrency;
      const batchSize = Math.min(d.options.batchSize ?? concurrency, 100);
      await this.#boss.work(
        d.name,
        {
          batchSize,
          localConcurrency: Math.max(1, Math.ceil(concurrency / batchSize)),
          includeMetadata: true,
          perJobResults: true,
          pollingIntervalSeconds,
          // NOTIFY wakes workers for new jobs only: retries and delayed jobs become due silently,
          // so polling stays at the configured pace rather than pg-boss's relaxed 30 s backstop.
          notifyPollingIntervalSeconds: pollingIntervalSeconds,
          burstWhenBatchFull: batchSize > 1,
        },
        (jobs: JobWithMetadata<Envelope>[]) =>
          Promise.all(
            jobs.map((job) =>
              // With tracing on, the job runs in a span of the trace that enqueued it.
              runInJobSpan(
                {
                  queue: d.name,
                  id: job.id,
                  attempt: job.retryCount + 1,
                  traceparent: job.data?.meta?.traceparent,
                },
                () => this.#run(d, job),
                (result) => (result.status === 'completed' ? undefined : result.status),
              ),
            ),
          ),
      );
    }
    this.#log.info({ queues: [...this.#definitions.keys()] }, 'job workers started');
  }

  /** Gives handlers the platform's services (`ctx.platform`); `createPlatform` calls it. */
  provide(platform: JobPlatform): void {
    this.#platform = platform;
  }

  async #run(d: AnyJob, job: JobWithMetadata<Envelope>): Promise<JobResult> {
    const started = performance.now();
    const meta = job.data?.meta ?? { userId: null, requestId: null };
    const attempt = job.retryCount + 1;
    const log = this.#log.child({
      jobId: job.id,
      queue: d.name,
      attempt,
      ...(meta.requestId ? { requestId: meta.requestId } : {}),
    });
    const payload = job.data?.payload;
    const invalid = payloadErrors(d, payload);
    if (invalid.length > 0) {
      // A payload that no longer matches (a schema changed under waiting jobs) cannot succeed on retry.
      const error = new InvalidJobPayloadError(d.name, invalid);
      log.error({ err: error }, 'job payload invalid, dead-lettered');
      this.#metrics?.jobs.inc({ queue: d.name, outcome: 'dead' });
      return { id: job.id, status: 'deadletter', output: errorSummary(error) };
    }
    const timeoutSeconds = d.options.timeoutSeconds ?? DEFAULTS.timeoutSeconds;
    const timeout = new AbortController();
    const platform = this.#platform;
    const ctx: JobContext = {
      id: job.id,
      queue: d.name,
      attempt,
      signal: AbortSignal.any([job.signal, timeout.signal]),
      log,
      userId: meta.userId,
      requestId: meta.requestId,
      db: this.#options.database.db,
      get platform(): JobPlatform {
        if (!platform) throw new Error('the job queue was started without its platform services');
        return platform;
      },
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const result: unknown = await Promise.race([
        (d.handler as (p: unknown, c: JobContext) => Promise<unknown>)(payload, ctx),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new JobTimeoutError(timeoutSeconds);
            timeout.abort(error);
            reject(error);
          }, timeoutSeconds * 1000);
        }),
      ]);
      const seconds = (performance.now() - started) / 1000;
      this.#metrics?.jobs.inc({ queue: d.name, outcome: 'completed' });
      this.#metrics?.duration.observe({ queue: d.name }, seconds);
      log.info({ durationMs: Math.round(seconds * 1000) }, 'job completed');
      return { id: job.id, status: 'completed', output: toOutput(result) };
    } catch (error) {
      const seconds = (performance.now() - started) / 1000;
      const final = job.retryCount >= job.retryLimit;
      this.#metrics?.jobs.inc({ queue: d.name, outcome: final ? 'dead' : 'retried' });
      this.#metrics?.duration.observe({ queue: d.name }, seconds);
      const fields = { err: error, durationMs: Math.round(seconds * 1000) };
      if (final) log.error(fields, 'job failed on its last attempt, dead-lettered');
      else log.warn(fields, 'job failed, will retry');
      return { id: job.id, status: 'failed', output: errorSummary(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Validates and enqueues a job; inside `options.trx` it exists only if that transaction commits.
   * Throws `InvalidJobPayloadError` for a payload that fails its schema (nothing is stored).
   */
  async send<S extends TSchema>(
    definition: JobDefinition<S>,
    payload: Static<S>,
    options: EnqueueOptions = {},
  ): Promise<Enqueued> {
    const d = this.#definitions.get(definition.name);
    if (!d) throw new Error(`job ${definition.name} is not registered`);
    const errors = payloadErrors(d, payload);
    if (errors.length > 0) throw new InvalidJobPayloadError(d.name, errors);
    const data: Envelope = { payload, meta: metaNow(options.userId, options.requestId) };
    const db = options.trx ? preparedFromKysely(options.trx) : undefined;
    const singletonKey = d.options.singletonKey?.(payload);
    const { startAfter } = options;
    const id = await this.#boss.send(d.name, data, {
      priority: options.priority ?? d.options.priority ?? 0,
      ...(startAfter === undefined ? {} : { startAfter }),
      ...(singletonKey === undefined ? {} : { singletonKey }),
      ...(db ? { db } : {}),
    });
    if (id !== null) return { id, created: true };
    // Deduplicated by the singleton key: answer with the job that is already waiting.
    const waiting = await this.#boss.findJobs(d.name, {
      key: singletonKey,
      queued: true,
      ...(db ? { db } : {}),
    });
    const existing = waiting[0];
    if (!existing)
      throw new Error(`job ${d.name} was not created and no waiting job holds its key`);
    return { id: existing.id, created: false };
  }

  /**
   * Enqueues many jobs of one type in one statement (validated first: one bad payload rejects
   * them all). Jobs deduplicated by a singleton key are skipped. Returns the number created.
   */
  async sendMany<S extends TSchema>(
    definition: JobDefinition<S>,
    payloads: readonly Static<S>[],
    options: Omit<EnqueueOptions, 'priority'> = {},
  ): Promise<number> {
    const d = this.#definitions.get(definition.name);
    if (!d) throw new Error(`job ${definition.name} is not registered`);
    for (const payload of payloads) {
      const errors = payloadErrors(d, payload);
      if (errors.length > 0) throw new InvalidJobPayloadError(d.name, errors);
    }
    if (payloads.length === 0) return 0;
    const meta = metaNow(options.userId, options.requestId);
    const key = d.options.singletonKey;
    const ids = await this.#boss.insert(
      d.name,
      payloads.map((payload) => ({
        data: { payload, meta } satisfies Envelope,
        priority: d.options.priority ?? 0,
        ...(options.startAfter === undefined ? {} : { startAfter: options.startAfter }),
        ...(key ? { singletonKey: key(payload) } : {}),
      })),
      { returnId: true, ...(options.trx ? { db: fromKysely(options.trx) } : {}) },
    );
    return ids?.length ?? 0;
  }

  #queueNames(): string[] {
    return [...this.#definitions.keys()];
  }

  /** A job's status for the user who triggered it; null for an unknown id or someone else's job. */
  async status(id: string, userId: string): Promise<JobStatus | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.#options.database.pool.query<JobRow>(
      `select id, name, state, retry_count, retry_limit, created_on, start_after, started_on,
              completed_on, output, data->'meta'->>'userId' as user_id
         from ${JOBS_SCHEMA}.job
        where name = any($1::text[]) and id = $2::uuid`,
      [this.#queueNames(), id],
    );
    const row = rows[0];
    if (!row || row.user_id === null || row.user_id !== userId) return null;
    const state = STATES[row.state] ?? 'queued';
    const status: JobStatus = {
      id: row.id,
      queue: row.name,
      state,
      // retry_count counts started attempts beyond the first once a retry has been claimed.
      attempts: row.started_on === null ? 0 : row.retry_count + 1,
      maxAttempts: row.retry_limit + 1,
      createdAt: iso(row.created_on) as string,
      startAfter: iso(row.start_after) as string,
      startedAt: iso(row.started_on),
      completedAt: iso(row.completed_on),
    };
    if (state === 'completed' && row.output !== null) status.result = row.output;
    if ((state === 'failed' || state === 'retrying') && row.output !== null) {
      // Only the message: stacks and internals stay in the logs and the admin API.
      const message = row.output.message;
      status.error = { message: typeof message === 'string' ? message : 'the job failed' };
    }
    return status;
  }

  /** Per queue: waiting, retrying, running, failed and dead-lettered counts, and the oldest wait. */
  async counts(): Promise<QueueCounts[]> {
    const names = this.#queueNames();
    const dead = names.map((n) => n + DEAD_SUFFIX);
    const { rows } = await this.#options.database.pool.query<{
      name: string;
      state: string;
      count: number;
      oldest: number | null;
    }>(
      `select name, state::text as state, count(*)::int as count,
              extract(epoch from now() - min(start_after)
                filter (where state in ('created', 'retry') and start_after <= now()))::float8 as oldest
         from ${JOBS_SCHEMA}.job
        where (name = any($1::text[]) and state in ('created', 'retry', 'active', 'failed'))
           or (name = any($2::text[]) and state = 'created')
        group by name, state`,
      [names, dead],
    );
    const out = new Map<string, QueueCounts>(
      names.map((queue) => [
        queue,
        { queue, queued: 0, retrying: 0, active: 0, failed: 0, dead: 0, oldestWaitingSeconds: 0 },
      ]),
    );
    for (const row of rows) {
      if (row.name.endsWith(DEAD_SUFFIX)) {
        const q = out.get(row.name.slice(0, -DEAD_SUFFIX.length));
        if (q) q.dead += row.count;
        continue;
      }
      const q = out.get(row.name);
      if (!q) continue;
      if (row.state === 'created') q.queued += row.count;
      else if (row.state === 'retry') q.retrying += row.count;
      else if (row.state === 'active') q.active += row.count;
      else if (row.state === 'failed') q.failed += row.count;
      if (row.oldest !== null)
        q.oldestWaitingSeconds = Math.max(q.oldestWaitingSeconds, Math.max(0, row.oldest));
    }
    return [...out.values()];
  }

  /** True when `queue` is a defined job queue. */
  hasQueue(queue: string): boolean {
    return this.#definitions.has(queue);
  }

  /** Dead letters of a queue, newest first, keyset-paginated by (dead at, id). */
  async listDead(
    queue: string,
    limit: number,
    after?: { deadAt: string; id: string },
  ): Promise<DeadJob[]> {
    const params: unknown[] = [queue + DEAD_SUFFIX, limit];
    let where = '';
    if (after) {
      params.push(after.deadAt, after.id);
      where = 'and (created_on, id) < ($3::timestamptz, $4::uuid)';
    }
    const { rows } = await this.#options.database.pool.query<DeadRow>(
      `${DEAD_SELECT} where name = $1 and state = 'created' ${where}
        order by created_on desc, id desc limit $2`,
      params,
    );
    return rows.map((r) => deadJob(queue, r));
  }

  async getDead(queue: string, id: string): Promise<DeadJob | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.#options.database.pool.query<DeadRow>(
      `${DEAD_SELECT} where name = $1 and state = 'created' and id = $2::uuid`,
      [queue + DEAD_SUFFIX, id],
    );
    return rows[0] ? deadJob(queue, rows[0]) : null;
  }

  /**
   * Sends a dead letter's payload to its queue again as a new job (fresh attempts) and removes
   * the dead letter, in one transaction. Null when there is no such dead letter.
   */
  async replayDead(queue: string, id: string): Promise<{ id: string } | null> {
    const dead = await this.getDead(queue, id);
    if (!dead) return null;
    const d = this.#definitions.get(queue);
    if (!d) return null;
    return this.#options.database.db.transaction().execute(async (trx) => {
      const db = fromKysely(trx);
      const removed = await this.#boss.deleteJob(queue + DEAD_SUFFIX, id, { db });
      // Replayed concurrently by someone else: nothing left to replay.
      if (affected(removed) === 0) return null;
      // A replay is a new trigger: it joins the trace of the admin request that replays it.
      const data: Envelope = { payload: dead.payload, meta: metaNow(dead.userId, dead.requestId) };
      const newId = await this.#boss.send(queue, data, { db, priority: d.options.priority ?? 0 });
      if (newId === null) {
        // A waiting job holds the same singleton key: the work is already queued.
        const key = d.options.singletonKey?.(dead.payload);
        const waiting = await this.#boss.findJobs(queue, { key, queued: true, db });
        return waiting[0] ? { id: waiting[0].id } : null;
      }
      return { id: newId };
    });
  }

  async deleteDead(queue: string, id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const result = await this.#boss.deleteJob(queue + DEAD_SUFFIX, id);
    return affected(result) > 0;
  }

  /** Readiness: pg-boss is running and its database answers. */
  async ping(signal?: AbortSignal): Promise<void> {
    if (!this.started) throw new Error('job queue is not running');
    const query = this.#boss.getDb().executeSql('select 1');
    if (!signal) {
      await query;
      return;
    }
    await Promise.race([
      query,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(new Error('timed out'));
        signal.addEventListener('abort', () => reject(new Error('timed out')), { once: true });
      }),
    ]);
  }

  /**
   * Stops fetching, lets running jobs finish within `graceMs` (unfinished ones are failed and
   * retried by another worker), then closes the pool.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (!this.#started) {
      await this.#boss.stop({ graceful: false, close: true }).catch(() => undefined);
      return;
    }
    await this.#boss.stop({ graceful: true, close: true, timeout: Math.max(graceMs, 1000) });
  }

  #instrument(registry: Registry): void {
    this.#metrics = {
      jobs: new Counter({
        name: 'jobs_total',
        help: 'Job runs by queue and outcome (completed, retried, dead)',
        labelNames: ['queue', 'outcome'],
        registers: [registry],
      }),
      duration: new Histogram({
        name: 'job_duration_seconds',
        help: 'Job run duration',
        labelNames: ['queue'],
        buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers: [registry],
      }),
    };
    // Depth and age are read from the database at scrape time: true across every process.
    let pending: Promise<QueueCounts[]> | null = null;
    const read = async () => {
      pending ??= this.counts().finally(() => {
        pending = null;
      });
      return pending;
    };
    const isStarted = () => this.started;
    new Gauge({
      name: 'queue_depth',
      help: 'Jobs per queue and state (queued, retrying, active, failed, dead)',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        if (!isStarted()) return;
        this.reset();
        for (const c of await read().catch(() => [])) {
          for (const state of ['queued', 'retrying', 'active', 'failed', 'dead'] as const)
            this.set({ queue: c.queue, state }, c[state]);
        }
      },
    });
    new Gauge({
      name: 'queue_oldest_age_seconds',
      help: 'Seconds the oldest due job of each queue has been waiting',
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        if (!isStarted()) return;
        this.reset();
        for (const c of await read().catch(() => []))
          this.set({ queue: c.queue }, c.oldestWaitingSeconds);
      },
    });
  }
}

/** pg-boss's CommandResponse type is empty; at run time it carries `affected`. */
function affected(response: object): number {
  return (response as { affected?: number }).affected ?? 0;
}

interface DeadRow {
  id: string;
  created_on: Date;
  source_id: string | null;
  source_created_on: Date | null;
  source_retry_count: number | null;
  source_output: { name?: string; message?: string; stack?: string } | null;
  data: Envelope | null;
}

const DEAD_SELECT = `select id, created_on, source_id, source_created_on, source_retry_count,
  source_output, data from ${JOBS_SCHEMA}.job`;

function deadJob(queue: string, r: DeadRow): DeadJob {
  return {
    id: r.id,
    queue,
    originalId: r.source_id,
    deadAt: iso(r.created_on) as string,
    originalCreatedAt: iso(r.source_created_on),
    attempts: r.source_retry_count === null ? null : r.source_retry_count + 1,
    error: r.source_output
      ? {
          ...(r.source_output.name ? { name: r.source_output.name } : {}),
          message: String(r.source_output.message ?? 'unknown error'),
          ...(r.source_output.stack ? { stack: r.source_output.stack } : {}),
        }
      : null,
    payload: r.data?.payload ?? null,
    userId: r.data?.meta?.userId ?? null,
    requestId: r.data?.meta?.requestId ?? null,
  };
}
