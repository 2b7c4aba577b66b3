import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Registry } from 'prom-client';
import { allApps } from './apps/index.ts';
import { loadConfig, type Config, type LoadOptions } from './platform/config/index.ts';
import { registerHttpCaching } from './platform/cache/index.ts';
import { translateDbError, type Database } from './platform/db/index.ts';
import { API_PREFIX, registerHttp, serverOptions } from './platform/http/index.ts';
import type { JobQueue } from './platform/jobs/index.ts';
import type { Lifecycle } from './platform/lifecycle/index.ts';
import type { Mailer } from './platform/mail/index.ts';
import {
  selectApps,
  type AnyModule,
  type ModuleContext,
  type Platform,
} from './platform/modules/index.ts';
import type { Redis } from './platform/redis/index.ts';
import {
  applyPermissions,
  createPlatform,
  enabledModules,
  packageVersion,
  platformModules,
} from './platform/runtime/index.ts';
import { registerTraffic } from './platform/traffic/index.ts';
import {
  createErrorReporter,
  registerObservability,
  requestChildLogger,
  routeLabel,
  type Logger,
} from './platform/observability/index.ts';

export type { Platform } from './platform/modules/index.ts';
export { enabledModules, packageVersion };

declare module 'fastify' {
  interface FastifyInstance {
    platform: Platform;
  }
}

/** Every module the code knows (for validating and documenting settings). */
export function knownModules(): AnyModule[] {
  return [...platformModules, ...allApps];
}

/** `loadConfig` with every known module's settings (identity's included), as a process loads them. */
export function loadAppConfig(
  source: Readonly<Record<string, string | undefined>>,
  options: LoadOptions = {},
): Config {
  return loadConfig(source, { modules: knownModules(), ...options });
}

export interface BuildOptions {
  /** The platform (from `createPlatform`); made here when absent, from the options below. */
  platform?: Platform;
  /** App modules to mount; the ones selected by `APPS` when absent. */
  apps?: readonly AnyModule[];
  /** Only the operational routes (health, metrics): a worker process's HTTP face. */
  operationalOnly?: boolean;
  // Without `platform`: what `createPlatform` gets (a platform made here is closed with the app).
  /** The process logger; made from config when absent. */
  logger?: Logger;
  /** Where a logger made here writes (tests capture lines). */
  logDestination?: DestinationStream;
  lifecycle?: Lifecycle;
  /** The database, opened (and later closed) by the caller; none: a platform that opens nothing. */
  database?: Database;
  metrics?: Registry;
  jobs?: JobQueue;
  mail?: Mailer;
  redis?: Redis | null;
}

/** Builds the Fastify instance: platform plugins, then the enabled apps under `/api/v1`. Not yet listening. */
export async function buildApp(
  config: Config,
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const apps = options.apps ?? selectApps(allApps, config.server.apps);
  const modules = enabledModules(config, apps);
  const ownPlatform = options.platform === undefined;
  const platform =
    options.platform ??
    (await createPlatform(config, {
      logger: options.logger,
      logDestination: options.logDestination,
      lifecycle: options.lifecycle,
      metrics: options.metrics,
      modules,
      // A platform made here opens nothing itself: tests hand it their database, queue and mailer.
      connect: false,
      database: options.database,
      jobs: options.jobs,
      mail: options.mail,
      redis: options.redis,
    }));
  const { logger, lifecycle, health, metrics, version, upstream } = platform;
  const reporter = createErrorReporter(config.observability.sentryDsn, config.env, version);
  const context = (module: AnyModule): ModuleContext =>
    Object.freeze({ platform, config: config.modules[module.name] ?? {} });

  // pino's Logger is a FastifyBaseLogger; annotating keeps Fastify's generics at their defaults.
  const loggerInstance: FastifyBaseLogger = logger;
  // The observability area writes one completion line per request itself.
  const app = Fastify({
    ...serverOptions(config),
    childLoggerFactory: requestChildLogger,
    loggerInstance,
  });
  app.decorate('platform', platform);
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
          : uniqueTags(
              modules.flatMap((m) => m.tags ?? [{ name: m.name, description: m.description }]),
            )),
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
    // Root-scope hooks of the modules first (authentication): the rate limits key on the user.
    for (const module of modules) await module.register?.(app, context(module));
    // Client IP warning, rate limits on /api/* and unknown routes, idempotency keys.
    registerTraffic(app, {
      config,
      logger,
      redis: null,
      store: platform.rateLimits,
      database: platform.live ? platform.database : null,
      metrics,
    });
    // Route `config.cache`: Cache-Control, strong ETags and 304s on public GETs.
    registerHttpCaching(app);
    for (const module of modules) {
      if (!module.routes) continue;
      await app.register(
        (scope) =>
          module.routes?.(scope.withTypeProvider<TypeBoxTypeProvider>(), context(module)) ??
          Promise.resolve(),
        { prefix: module.prefix ?? API_PREFIX },
      );
    }
    if (platform.live) {
      app.addHook('onReady', async () => {
        await applyPermissions(platform, modules);
        for (const module of modules) await module.onStart?.(context(module));
      });
    }
    app.addHook('onClose', async () => {
      for (const module of [...modules].reverse()) await module.onStop?.(context(module));
    });
  }

  app.addHook('onClose', async () => {
    // A platform given by the caller is closed by the caller (after the app: HTTP first).
    if (ownPlatform) await platform.close();
    await reporter?.flush(2_000);
  });
  return app;
}

function uniqueTags(
  tags: readonly { name: string; description: string }[],
): { name: string; description: string }[] {
  const seen = new Set<string>();
  return tags.filter((t) => (seen.has(t.name) ? false : (seen.add(t.name), true)));
}
