import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import type { Static, TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';

/**
 * The platform's services as a job handler sees them (database, mail, outbound HTTP, cache,
 * access control, logger...). Empty here: the modules area fills it in with its `Platform`
 * (declaration merging), since the jobs area comes before mail and the others.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface JobPlatform {}

/** What a handler receives besides its payload. */
export interface JobContext {
  readonly id: string;
  readonly queue: string;
  /** 1 on the first run, 2 on the first retry... */
  readonly attempt: number;
  /** Aborted when the job's timeout passes or the worker loses its claim: stop and return. */
  readonly signal: AbortSignal;
  /** Carries `jobId`, `queue` and the `requestId` of the request that enqueued the job. */
  readonly log: Logger;
  /** Who triggered the job, when known. */
  readonly userId: string | null;
  readonly requestId: string | null;
  /** The application database (open a transaction on it for writes that belong together). */
  readonly db: Db;
  /** The platform's services: `mail`, `upstream`, `cache`, `access`, `database`, `logger`... */
  readonly platform: JobPlatform;
}

export interface CronSchedule<P> {
  /** Cron expression (5 or 6 fields) or an RFC 5545 rule (`FREQ=DAILY;BYHOUR=3`). */
  readonly expression: string;
  /** IANA time zone the expression is read in (default UTC). */
  readonly tz?: string;
  readonly payload: P;
}

export interface JobOptions<P> {
  /** Retries after the first attempt before the job is dead-lettered (default 3). */
  readonly retries?: number;
  /** Exponential backoff with jitter between retries: first delay and cap in seconds (default 2 and 300). */
  readonly backoff?: { readonly initialSeconds: number; readonly maxSeconds?: number };
  /** A run longer than this fails (and is retried); the handler's signal aborts (default 300). */
  readonly timeoutSeconds?: number;
  /** Higher runs first among due jobs of the queue (default 0). */
  readonly priority?: number;
  /** Jobs of this queue run at once per worker process (default 1). */
  readonly concurrency?: number;
  /**
   * Jobs fetched per round trip (default: `concurrency`, at most 100). A batch is fetched when a
   * previous one has finished entirely: small batches suit slow jobs, large ones cheap jobs.
   */
  readonly batchSize?: number;
  /** Recurring runs; created by worker processes, one job per occurrence across all of them. */
  readonly cron?: CronSchedule<P>;
  /**
   * Idempotency key: while a job with the same key is waiting in this queue, a repeated trigger
   * does not create another one (the queue uses pg-boss's `short` policy, keyed by this).
   */
  readonly singletonKey?: (payload: P) => string;
  /** How long completed jobs stay visible to the status API (default 7 days). */
  readonly keepCompletedSeconds?: number;
}

export interface JobDefinition<S extends TSchema = TSchema, R = unknown> {
  /** Queue name: `area.what` (letters, digits, `.`, `-`, `_`). */
  readonly name: string;
  readonly payload: S;
  readonly handler: (payload: Static<S>, ctx: JobContext) => Promise<R>;
  readonly options: JobOptions<Static<S>>;
  /** @internal compiled payload validator */
  readonly validator: Validator;
}

/** Any job definition, whatever its payload (handlers are contravariant in it). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJob = JobDefinition<any, any>;

/** Names reserved for the dead-letter queue of each job queue. */
export const DEAD_SUFFIX = '__dead';

export const DEFAULTS = {
  retries: 3,
  initialBackoffSeconds: 2,
  maxBackoffSeconds: 300,
  timeoutSeconds: 300,
  concurrency: 1,
  keepCompletedSeconds: 7 * 86_400,
  /** Dead letters are kept a month for inspection and replay. */
  deadRetentionSeconds: 30 * 86_400,
} as const;

function check(condition: boolean, name: string, message: string): void {
  if (!condition) throw new Error(`job ${name}: ${message}`);
}

const positiveInt = (v: number | undefined, max: number) =>
  v === undefined || (Number.isInteger(v) && v >= 1 && v <= max);

/**
 * Declares a job type: its payload schema (checked at enqueue), handler and options. Apps list
 * their definitions in their module's `jobs`; the platform creates the queues at start.
 */
export function defineJob<S extends TSchema, R>(definition: {
  name: string;
  payload: S;
  handler: (payload: Static<S>, ctx: JobContext) => Promise<R>;
  options?: JobOptions<Static<S>>;
}): JobDefinition<S, R> {
  const { name } = definition;
  const options = definition.options ?? {};
  check(/^[a-z][a-z0-9]*([._-][a-z0-9]+)*$/.test(name), name, 'name must be like `area.what`');
  check(!name.endsWith(DEAD_SUFFIX), name, `names ending in ${DEAD_SUFFIX} are reserved`);
  check(
    options.retries === undefined || (Number.isInteger(options.retries) && options.retries >= 0),
    name,
    'retries must be an integer >= 0',
  );
  check(positiveInt(options.timeoutSeconds, 86_400), name, 'timeoutSeconds must be 1..86400');
  check(positiveInt(options.concurrency, 1_000), name, 'concurrency must be 1..1000');
  check(positiveInt(options.batchSize, 100), name, 'batchSize must be 1..100');
  check(
    options.backoff === undefined ||
      (options.backoff.initialSeconds >= 1 &&
        (options.backoff.maxSeconds ?? Infinity) >= options.backoff.initialSeconds),
    name,
    'backoff.initialSeconds must be >= 1 and <= maxSeconds',
  );
  const validator = Compile(definition.payload);
  if (options.cron) {
    check(
      validator.Check(options.cron.payload),
      name,
      'the cron payload does not match the schema',
    );
  }
  return { ...definition, options, validator };
}

/** Field errors of a payload that fails its schema (JSON-pointer paths). */
export function payloadErrors(
  definition: AnyJob,
  payload: unknown,
): { path: string; message: string }[] {
  if (definition.validator.Check(payload)) return [];
  return definition.validator
    .Errors(payload)
    .map((e) => ({ path: e.instancePath || '/', message: e.message }));
}

/** A payload rejected at enqueue: a bug in the caller, never stored as a poison job. */
export class InvalidJobPayloadError extends Error {
  readonly queue: string;
  readonly errors: { path: string; message: string }[];
  constructor(queue: string, errors: { path: string; message: string }[]) {
    super(
      `invalid payload for job ${queue}: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    );
    this.name = 'InvalidJobPayloadError';
    this.queue = queue;
    this.errors = errors;
  }
}
