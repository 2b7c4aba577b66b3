import type { Registry } from 'prom-client';
import type { Cache } from '../cache/index.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { Events } from '../events/index.ts';
import type { JobQueue } from '../jobs/index.ts';
import type { Lifecycle } from '../lifecycle/index.ts';
import type { Mailer } from '../mail/index.ts';
import type { HealthChecks, Logger } from '../observability/index.ts';
import type { HttpClient } from '../resilience/index.ts';
import type { Storage } from '../storage/index.ts';

/**
 * Services other areas add to the platform by declaration merging (identity adds `access`, its
 * `AccessControl`), so that this area does not import the areas that declare modules.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PlatformExtensions {}

/**
 * The platform's services, built once per process by `createPlatform` and handed to every
 * module, job and test the same way. None is ever null: without `REDIS_URL` the cache and the
 * rate-limit store are in-process stand-ins (`hasRedis` says which).
 */
export interface Platform extends PlatformExtensions {
  readonly config: Config;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
  readonly health: HealthChecks;
  readonly metrics: Registry;
  readonly version: string;
  /** The application database (Kysely over one pool). */
  readonly database: Database;
  /** The job queue (pg-boss): enqueue with `send`, read with `status`. */
  readonly jobs: JobQueue;
  /** Domain events: `publish` writes into the outbox in the caller's transaction. */
  readonly events: Events;
  /** Outgoing mail (`send` enqueues in the caller's transaction). */
  readonly mail: Mailer;
  /** Cache (Redis, or an in-process LRU without `REDIS_URL`). */
  readonly cache: Cache;
  /** True when Redis holds the shared state; false: in-process stand-ins, exact for one process. */
  readonly hasRedis: boolean;
  /** Outbound HTTP with timeouts, retries and a circuit breaker per target. */
  readonly upstream: HttpClient;
  /** Object storage (`STORAGE_DRIVER`: a local folder or an S3-compatible bucket). */
  readonly storage: Storage;
  /**
   * Whether the services were opened: false for a platform made only to describe the API (the
   * OpenAPI script, HTTP-only tests), whose database is never connected and whose queue never
   * starts, so using them fails as an unavailable dependency.
   */
  readonly live: boolean;
  /** Closes what the platform opened, in order: queue, mail, Redis, database. Idempotent. */
  close(): Promise<void>;
}

declare module '../events/index.ts' {
  // Event subscribers get the platform's services as `ctx.platform`.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface EventPlatform extends Platform {}
}

declare module '../jobs/index.ts' {
  // Job handlers get the platform's services as `ctx.platform`.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface JobPlatform extends Platform {}
}
