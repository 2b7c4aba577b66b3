import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp, enabledModules, knownModules, packageVersion } from './app.ts';
import { allApps } from './apps/index.ts';
import { runAuditCommand } from './commands/audit.ts';
import { runDbCommand } from './commands/db.ts';
import { runUsersCommand } from './commands/users.ts';
import { allMigrations } from './migrations/index.ts';
import {
  ConfigError,
  EXIT_CONFIG,
  loadProcessConfig,
  type Config,
} from './platform/config/index.ts';
import {
  migrateToLatest,
  migrationStatus,
  type Database,
  type MigrationSet,
} from './platform/db/index.ts';
import { ConnectionTracker, Lifecycle } from './platform/lifecycle/index.ts';
import { selectApps, type Platform } from './platform/modules/index.ts';
import { createPlatform } from './platform/runtime/index.ts';
import {
  createLogger,
  createMetricsRegistry,
  flushLogger,
  registerLogMetrics,
  startTracing,
  type Logger,
} from './platform/observability/index.ts';

const COMMANDS = ['serve', 'worker', 'migrate', 'all', 'db', 'users', 'audit'] as const;
type Command = (typeof COMMANDS)[number];

function parseCommand(argv: readonly string[]): Command {
  const command = argv[2] ?? 'all';
  if ((COMMANDS as readonly string[]).includes(command)) return command as Command;
  process.stderr.write(`usage: main [${COMMANDS.join('|')}] (default: all)\n`);
  process.exit(64);
}

function loadOrExit(): Config {
  try {
    return loadProcessConfig(knownModules());
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}

/** Installs signal and crash handling: first signal drains, second forces exit, crashes exit non-zero. */
function onShutdown(
  logger: Logger,
  config: Config,
  lifecycle: Lifecycle,
  close: () => Promise<void>,
): void {
  closeWithGrace(
    {
      delay: config.lifecycle.shutdownGraceMs + config.lifecycle.shutdownDrainDelayMs,
      logger: { error: (msg: unknown) => logger.error(msg) },
      onSecondSignal: (signal) => logger.error({ signal }, 'second signal, forcing exit'),
      onTimeout: (delay) =>
        logger.error({ delayMs: delay }, 'shutdown grace period exceeded, forcing exit'),
    },
    async ({ signal, err }) => {
      if (err) logger.fatal({ err }, 'uncaught error, shutting down');
      else logger.info({ signal }, 'shutting down');
      lifecycle.beginShutdown();
      if (config.lifecycle.shutdownDrainDelayMs > 0)
        await sleep(config.lifecycle.shutdownDrainDelayMs);
      await close();
      logger.info('shutdown complete');
      await flushLogger(logger);
    },
  );
}

/** Migrates at start where config says so; otherwise warns when the schema is behind the code. */
async function prepareSchema(
  config: Config,
  database: Database,
  migrations: MigrationSet,
  logger: Logger,
): Promise<void> {
  const db = database.db;
  if (config.database.migrateOnStart) {
    const applied = await migrateToLatest(db, migrations);
    if (applied.length > 0) logger.info({ applied }, `applied ${applied.length} migration(s)`);
    return;
  }
  const pending = (await migrationStatus(db, migrations))
    .filter((m) => m.executedAt === null)
    .map((m) => m.name);
  if (pending.length > 0)
    logger.warn({ pending }, 'the database has pending migrations: run `migrate` before serving');
}

async function main(): Promise<void> {
  const command = parseCommand(process.argv);
  const config = loadOrExit();
  // OpenTelemetry, when the OTEL_* variables ask for it (docs/operations.md#tracing): started
  // before the logger, whose lines then carry trace ids, and before the app and its hooks.
  const tracing =
    command === 'serve' || command === 'worker' || command === 'all'
      ? await startTracing({ serviceVersion: packageVersion() })
      : null;
  const logger = createLogger({
    level: config.observability.logLevel,
    base: { service: 'groundwork', role: command },
  });
  const apps = selectApps(allApps, config.server.apps);
  // Unknown dependencies and cycles between modules refuse to start, before anything opens.
  const modules = enabledModules(config, apps);
  const migrations = allMigrations(modules);

  if (command === 'db' || command === 'migrate') {
    const args = command === 'migrate' ? ['migrate'] : process.argv.slice(3);
    process.exitCode = await runDbCommand(args, config, logger, migrations);
    await flushLogger(logger);
    return;
  }
  if (command === 'users') {
    process.exitCode = await runUsersCommand(process.argv.slice(3), config, logger);
    await flushLogger(logger);
    return;
  }
  if (command === 'audit') {
    process.exitCode = await runAuditCommand(process.argv.slice(3), config, logger);
    await flushLogger(logger);
    return;
  }

  if (tracing) logger.info({ serviceName: tracing.serviceName }, 'tracing on');
  const lifecycle = new Lifecycle();
  const metrics = createMetricsRegistry();
  registerLogMetrics(logger, metrics);
  const opened: {
    app?: FastifyInstance;
    connections?: ConnectionTracker;
    closePlatform?: () => Promise<void>;
  } = {};
  // Installed first, so a signal during start-up still closes what was opened (the embedded server).
  onShutdown(logger, config, lifecycle, async () => {
    // HTTP first (in-flight requests may still enqueue), then workers finish their running jobs.
    // The listener closes and each keep-alive connection is closed between requests, then the
    // requests still in flight finish. The platform then closes queue, mail, Redis, database.
    lifecycle.closeConnections();
    await opened.connections?.drain();
    await opened.app?.close();
    await opened.closePlatform?.();
    // The spans still buffered are exported last (the jobs' included).
    await tracing?.shutdown();
  });

  const works = command === 'worker' || command === 'all';
  let platform: Platform;
  try {
    platform = await createPlatform(config, {
      logger,
      lifecycle,
      metrics,
      modules,
      work: works,
      role: command,
      prepare: (database) => prepareSchema(config, database, migrations, logger),
      track: (close) => (opened.closePlatform = close),
    });
  } catch (error) {
    if (lifecycle.shuttingDown) return;
    throw error;
  }
  opened.closePlatform = () => platform.close();
  logger.info({ transport: platform.mail.transport }, 'mail transport');
  if (lifecycle.shuttingDown) return;

  // A worker serves only the operational routes (health, metrics) for probes and scrapes.
  const app = await buildApp(config, {
    platform,
    apps,
    operationalOnly: command === 'worker',
  });
  opened.app = app;
  opened.connections = new ConnectionTracker(app.server);
  await app.listen({ host: config.server.host, port: config.server.port });
}

try {
  await main();
} catch (error) {
  // APPS naming an unknown app is found after the config loads: still a configuration error.
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(EXIT_CONFIG);
}
