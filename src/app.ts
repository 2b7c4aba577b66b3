import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { DestinationStream } from 'pino';
import type { Registry } from 'prom-client';
import { allApps } from './apps/index.ts';
import type { Config } from './platform/config/index.ts';
import { createCache, registerHttpCaching, type Cache } from './platform/cache/index.ts';
import { translateDbError, type Database } from './platform/db/index.ts';
import { API_PREFIX, registerHttp, serverOptions } from './platform/http/index.ts';
import {
  AccessControl,
  createIdentity,
  registerAuthentication,
  registerIdentityRoutes,
} from './platform/identity/index.ts';
import { registerJobRoutes, type JobQueue } from './platform/jobs/index.ts';
import { Lifecycle } from './platform/lifecycle/index.ts';
import { registerDevMailRoutes, type Mailer } from './platform/mail/index.ts';
import { selectApps, type AppModule } from './platform/modules/index.ts';
import { pingRedis, type Redis } from './platform/redis/index.ts';
import { createHttpClient, type HttpClient } from './platform/resilience/index.ts';
import { registerTraffic } from './platform/traffic/index.ts';
import {
  HealthChecks,
  createErrorReporter,
  createLogger,
  createMetricsRegistry,
  registerObservability,
  requestChildLogger,
  routeLabel,
  type Logger,
} from './platform/observability/index.ts';

/** What the platform shares with its areas and apps through `app.platform`. */
export interface Platform {
  readonly config: Config;
  readonly lifecycle: Lifecycle;
  readonly health: HealthChecks;
  readonly metrics: Registry;
  readonly version: string;
  /** The open database; null only for apps built without one (some tests, the OpenAPI script). */
  readonly database: Database | null;
  /** The job queue; null when built without one (some tests, the OpenAPI script). */
  readonly jobs: JobQueue | null;
  /** Outgoing mail (`send` enqueues); null when built without one (some tests, the OpenAPI script). */
  readonly mail: Mailer | null;
  /** The shared Redis client; null without `REDIS_URL` (in-process stores stand in). */
  readonly redis: Redis | null;
  /** Cache (Redis, or an in-process LRU without `REDIS_URL`). */
  readonly cache: Cache;
  /** Outbound HTTP with timeouts, retries and a circuit breaker per target. */
  readonly upstream: HttpClient;
  /** Roles and permissions (`hasPermission`, `actableOwners`); null without a database. */
  readonly access: AccessControl | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    platform: Platform;
  }
}

export interface BuildOptions {
  /** The process logger; made from config when absent. */
  logger?: Logger;
  /** Where a logger made here writes (tests capture lines). */
  logDestination?: DestinationStream;
  /** App modules to mount; the ones selected by `APPS` when absent. */
  apps?: readonly AppModule[];
  lifecycle?: Lifecycle;
  /** The database, opened (and later closed) by the caller. */
  database?: Database;
  /** Metrics registry; one is made when absent (pass the one the database was opened with). */
  metrics?: Registry;
  /** The job queue, started (and later stopped) by the caller. */
  jobs?: JobQueue;
  /** Outgoing mail, built on `jobs` before it started (and closed by the caller). */
  mail?: Mailer;
  /** The Redis client, connected (and later closed) by the caller; none means in-process stores. */
  redis?: Redis | null;
  /** Only the operational routes (health, metrics): a worker process's HTTP face. */
  operationalOnly?: boolean;
}

let cachedVersion: string | undefined;
/** The package version, read once. */
export function packageVersion(): string {
  cachedVersion ??= (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  return cachedVersion;
}

/** Builds the Fastify instance: platform plugins, then the enabled apps under `/api/v1`. Not yet listening. */
export async function buildApp(
  config: Config,
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const logger =
    options.logger ??
    createLogger({
      level: config.observability.logLevel,
      destination: options.logDestination,
      base: { service: 'groundwork' },
    });
  const lifecycle = options.lifecycle ?? new Lifecycle();
  const health = new HealthChecks();
  const metrics = options.metrics ?? createMetricsRegistry();
  const database = options.database ?? null;
  const jobs = options.jobs ?? null;
  const mail = options.mail ?? null;
  const redis = options.redis ?? null;
  const cache = createCache({ redis, logger, metrics });
  const access = database
    ? new AccessControl({
        db: database.db,
        cache,
        ttlSeconds: config.identity.permissionCacheTtlS,
      })
    : null;
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
  // The development mailbox and template previews exist in development only.
  const devMail = mail !== null && config.env === 'development' && !options.operationalOnly;
  const version = packageVersion();
  const apps = options.apps ?? selectApps(allApps, config.server.apps);
  const reporter = createErrorReporter(config.observability.sentryDsn, config.env, version);

  // pino's Logger is a FastifyBaseLogger; annotating keeps Fastify's generics at their defaults.
  const loggerInstance: FastifyBaseLogger = logger;
  // The observability area writes one completion line per request itself.
  const app = Fastify({
    ...serverOptions(config),
    childLoggerFactory: requestChildLogger,
    loggerInstance,
  });
  app.decorate('platform', {
    config,
    lifecycle,
    health,
    metrics,
    version,
    database,
    jobs,
    mail,
    redis,
    cache,
    upstream,
    access,
  } satisfies Platform);
  if (database) health.register('database', (signal) => database.ping(signal));
  if (jobs) health.register('queue', (signal) => jobs.ping(signal));
  if (redis) health.register('redis', (signal) => pingRedis(redis, signal));
  // Node's own server limit for the time to receive headers (Fastify has no option for it).
  app.server.headersTimeout = config.http.headersTimeoutMs;

  await registerHttp(app, {
    config,
    lifecycle,
    openapi: {
      title: 'Groundwork API',
      version,
      description: 'The Groundwork platform and its apps.',
      tags: [
        { name: 'operations', description: 'Health, readiness and metrics.' },
        ...(options.operationalOnly
          ? []
          : [
              { name: 'identity', description: 'Accounts, sign-in, sessions and access tokens.' },
              {
                name: 'admin',
                description:
                  'Operator API, by permission: accounts, roles, the audit trail, job queues and dead letters.',
              },
            ]),
        ...(jobs && !options.operationalOnly
          ? [{ name: 'jobs', description: 'Status of background jobs.' }]
          : []),
        ...(devMail
          ? [{ name: 'development', description: 'Development only: mailbox, mail previews.' }]
          : []),
        ...apps.flatMap((m) => m.tags ?? [{ name: m.name, description: m.description }]),
      ],
    },
    translators: [translateDbError],
    reportError: reporter
      ? (error, request) =>
          reporter.report(error, {
            requestId: request.id,
            method: request.method,
            route: routeLabel(request),
          })
      : undefined,
  });
  await registerObservability(app, {
    registry: metrics,
    health,
    lifecycle,
    metricsToken: config.observability.metricsToken,
    version,
    // An open breaker shows here and in `circuit_state`; it does not fail readiness (one dead
    // dependency must not take every instance out of the balancer).
    details: () => ({ circuits: upstream.breakerStates() }),
  });

  if (!options.operationalOnly) {
    // Bearer tokens first: the rate limits below key on the user it sets.
    const identity = await createIdentity({ config, database, mail, logger, access, cache });
    registerAuthentication(app, identity);
    // Client IP warning, rate limits on /api/* and unknown routes, idempotency keys.
    registerTraffic(app, { config, logger, redis, database, metrics });
    // Route `config.cache`: Cache-Control, strong ETags and 304s on public GETs.
    registerHttpCaching(app);
    await registerIdentityRoutes(app, identity, config);
    if (jobs) {
      await app.register(
        (scope) => registerJobRoutes(scope, { jobs, cursorSecret: config.secrets.appSecret }),
        { prefix: API_PREFIX },
      );
    }
    if (mail && devMail)
      await app.register((scope) => registerDevMailRoutes(scope, { mailer: mail }));
    for (const module of apps) {
      if (module.routes) await app.register(module.routes, { prefix: API_PREFIX });
    }
  }

  app.addHook('onClose', async () => {
    await upstream.close();
    cache.close();
    await reporter?.flush(2_000);
  });
  return app;
}
