import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DestinationStream } from 'pino';
import type { Registry } from 'prom-client';
import { AuditBuffer } from '../audit/index.ts';
import { createCache } from '../cache/index.ts';
import type { Config } from '../config/index.ts';
import { openDatabase, type Database, type NoTables } from '../db/index.ts';
import {
  dispatcherSettings,
  EventBus,
  EventDispatcher,
  eventRegistry,
  eventsSettings,
} from '../events/index.ts';
import { AccessControl, identitySettings } from '../identity/index.ts';
import { JobQueue } from '../jobs/index.ts';
import { Lifecycle } from '../lifecycle/index.ts';
import { Mailer, type MailRetry } from '../mail/index.ts';
import { moduleJobs, type AnyModule, type Platform } from '../modules/index.ts';
import {
  HealthChecks,
  createLogger,
  createMetricsRegistry,
  diskGauges,
  type Logger,
} from '../observability/index.ts';
import { closeRedis, connectRedis, pingRedis, type Redis } from '../redis/index.ts';
import { createHttpClient } from '../resilience/index.ts';
import { createStorage } from '../storage/index.ts';
import {
  MemoryRateStore,
  RedisRateStore,
  purgeIdempotencyKeys,
  type RateStore,
} from '../traffic/index.ts';
import { packageVersion } from './version.ts';

declare module '../modules/index.ts' {
  interface PlatformExtensions {
    /** Rate-limit state (Redis, or a bounded in-process store without `REDIS_URL`). */
    readonly rateLimits: RateStore;
    /** Data-access audit (`recordAccess`): buffered, written in batches, never blocking. */
    readonly audit: AuditBuffer;
  }
}

export interface PlatformOptions {
  /** The process logger; made from config when absent. */
  logger?: Logger;
  /** Where a logger made here writes (tests capture lines). */
  logDestination?: DestinationStream;
  lifecycle?: Lifecycle;
  /** Metrics registry; one is made when absent. */
  metrics?: Registry;
  /** The modules whose jobs and mail templates the queue and the mailer carry. */
  modules?: readonly AnyModule[];
  /**
   * false: open nothing (the OpenAPI script, HTTP-only tests): the database pool never connects
   * unless used, the queue never starts, no Redis. Default true.
   */
  connect?: boolean;
  /** Run the job workers, lease supervision and cron here (`worker`, `all`). Default false. */
  work?: boolean;
  /** Tag for the database's `application_name` (the process role). */
  role?: string;
  /** An open database to use instead of opening one (tests); its owner closes it. */
  database?: Database;
  /** A job queue built (and started, and stopped) by the caller (test harnesses). */
  jobs?: JobQueue;
  /** A mailer built on `jobs` by the caller (test harnesses). */
  mail?: Mailer;
  /** A Redis client of the caller's (or null for in-process stores); otherwise from `REDIS_URL`. */
  redis?: Redis | null;
  /** Mail retry schedule (tests shorten it). */
  mailRetry?: Partial<MailRetry>;
  /** Runs once the database is open, before the queue starts (migrations). */
  prepare?: (database: Database) => Promise<void>;
  /** Receives `close` at once, so a signal during start-up still closes what was opened. */
  track?: (close: () => Promise<void>) => void;
}

/**
 * A database that is never connected unless used: the pool points at `DATABASE_URL`, or, with
 * the embedded server (which is not started), at an address that refuses at once.
 */
function detachedDatabase(config: Config): Database {
  const url = config.database.url ?? 'postgres://groundwork@127.0.0.1:1/not-opened';
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 1_000 });
  pool.on('error', () => undefined);
  const db = new Kysely<NoTables>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db,
    pool,
    url,
    embedded: false,
    ping: () => Promise.reject(new Error('database not opened')),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/**
 * Opens what the process needs (database, Redis, job queue, mailer) and makes the services on
 * top of them (cache, rate-limit store, outbound HTTP, access control, health checks). Modules'
 * jobs and templates are registered; the queue starts when `connect` (workers when `work`).
 * `close()` undoes it in order: queue, mail, Redis, database (only what it opened itself).
 */
export async function createPlatform(
  config: Config,
  options: PlatformOptions = {},
): Promise<Platform> {
  const connect = options.connect ?? true;
  const logger =
    options.logger ??
    createLogger({
      level: config.observability.logLevel,
      destination: options.logDestination,
      base: { service: 'groundwork' },
    });
  const lifecycle = options.lifecycle ?? new Lifecycle();
  const metrics = options.metrics ?? createMetricsRegistry();
  const health = new HealthChecks();
  const modules = options.modules ?? [];
  // A module with settings needs them loaded with the configuration; without, its hooks would get
  // an empty object and fail far from the cause.
  const unloaded = modules.filter((m) => m.config && config.modules[m.name] === undefined);
  if (unloaded.length > 0)
    throw new Error(
      `the configuration was loaded without the settings of ${unloaded.map((m) => m.name).join(', ')}: load it with the modules (loadConfig(env, { modules }), or loadAppConfig)`,
    );
  // Two modules declaring one event type or subscriber refuse to start, before anything opens.
  const registry = eventRegistry(
    modules.map((m) => ({ module: m.name, events: m.events, subscribers: m.subscribers })),
  );
  const owned: {
    dispatcher?: EventDispatcher;
    database?: Database;
    jobs?: JobQueue;
    mailQueue?: JobQueue;
    mail?: Mailer;
    redis?: Redis;
  } = {};
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await owned.dispatcher?.stop(Math.max(1_000, config.lifecycle.shutdownGraceMs - 1_000));
    await owned.jobs?.stop(Math.max(1_000, config.lifecycle.shutdownGraceMs - 1_000));
    await owned.mailQueue?.stop(1_000);
    await owned.mail?.close();
    if (owned.redis) await closeRedis(owned.redis);
    await owned.database?.close();
  };

  options.track?.(close);
  try {
    let database = options.database;
    if (!database) {
      database = connect
        ? await openDatabase(config, { logger, metrics, role: options.role })
        : detachedDatabase(config);
      owned.database = database;
    }
    if (connect) await options.prepare?.(database);
    if (lifecycle.shuttingDown) throw new Error('shutting down');
    let redis: Redis | null = null;
    if (options.redis !== undefined) redis = options.redis;
    else if (connect) {
      redis = await connectRedis(config, logger, { metrics });
      if (redis) owned.redis = redis;
    }
    const liveMetrics = connect || options.database ? metrics : undefined;
    let jobs = options.jobs;
    if (!jobs) {
      jobs = new JobQueue({
        config,
        database,
        logger,
        metrics: liveMetrics,
        definitions: [],
        work: options.work ?? false,
      });
      owned.jobs = jobs;
    }
    // A queue the caller started already carries what the caller registered.
    if (!jobs.started)
      for (const module of modules)
        for (const job of moduleJobs(module, config)) jobs.register(job);
    let mail = options.mail;
    if (!mail) {
      // Registers its send job on the queue, so it comes before start(). A queue the caller
      // started without a mailer (a jobs-only test harness) gets one on a queue that never
      // starts: sending then fails, as nothing was set up to deliver.
      const mailQueue = jobs.started
        ? (owned.mailQueue = new JobQueue({
            config,
            database,
            logger,
            definitions: [],
            work: false,
          }))
        : jobs;
      mail = new Mailer({
        config,
        database,
        jobs: mailQueue,
        logger,
        metrics: liveMetrics,
        templates: modules.flatMap((m) => m.mailTemplates ?? []),
        retry: options.mailRetry,
      });
      owned.mail = mail;
      if (!jobs.started) jobs.register(purgeIdempotencyKeys);
    }
    const cache = createCache({ redis, logger, metrics, near: config.cache.near });
    const rateLimits = redis
      ? new RedisRateStore(redis, config.rateLimit)
      : new MemoryRateStore(config.rateLimit.memoryMaxKeys);
    const upstream = createHttpClient({
      logger,
      metrics,
      defaults: {
        timeoutMs: config.upstream.timeoutMs,
        retries: config.upstream.retries,
        maxRetryAfterMs: config.upstream.maxRetryAfterMs,
        breaker: {
          failureThreshold: config.upstream.breakerFailureThreshold,
          halfOpenAfterMs: config.upstream.breakerHalfOpenAfterMs,
        },
      },
    });
    const storage = createStorage(config, { metrics: liveMetrics });
    if (liveMetrics)
      diskGauges(liveMetrics, {
        data: config.database.dataDir,
        ...(config.storage.driver === 'local' ? { files: config.storage.localDir } : {}),
      });
    const access = new AccessControl({
      db: database.db,
      cache,
      ttlSeconds: identitySettings(config).permissionCacheTtlS,
    });
    const live = connect || options.database !== undefined;
    if (live) {
      const db = database;
      health.register('database', (signal) => db.ping(signal));
    }
    const queue = jobs;
    if (owned.jobs && connect) {
      await queue.start();
      if (options.work) await queue.startWorkers();
    }
    if (queue.started) health.register('queue', (signal) => queue.ping(signal));
    if (redis) {
      const client = redis;
      health.register('redis', (signal) => pingRedis(client, signal));
    }
    if (live) health.register('storage', (signal) => storage.ping(signal));
    const events = new EventBus({ registry, metrics: liveMetrics, database });
    const audit = new AuditBuffer({ db: database.db, logger, metrics: liveMetrics });
    // Written as soon as shutdown begins; `close` writes what came in since.
    lifecycle.onShutdown(() => void audit.flush());
    const platform: Platform = {
      config,
      logger,
      lifecycle,
      health,
      metrics,
      version: packageVersion(),
      database,
      jobs,
      events,
      mail,
      audit,
      cache,
      rateLimits,
      hasRedis: redis !== null,
      upstream,
      storage,
      access,
      live,
      async close() {
        await audit.close();
        await close();
        await upstream.close();
        await storage.close();
        cache.close();
      },
    };
    jobs.provide(platform);
    // Dispatch runs where jobs run (`worker`, `all`): committed events to the subscribers.
    if (options.work && live) {
      const dispatcher = new EventDispatcher({
        database,
        registry,
        logger,
        metrics,
        settings: dispatcherSettings(eventsSettings(config.modules.events)),
        platform: () => platform,
      });
      owned.dispatcher = dispatcher;
      await dispatcher.start();
    }
    return platform;
  } catch (error) {
    await close();
    throw error;
  }
}
