import closeWithGrace from 'close-with-grace';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './app.ts';
import {
  ConfigError,
  EXIT_CONFIG,
  loadProcessConfig,
  type Config,
} from './platform/config/index.ts';
import { Lifecycle } from './platform/lifecycle/index.ts';
import { createLogger, flushLogger, type Logger } from './platform/observability/index.ts';

const COMMANDS = ['serve', 'worker', 'migrate', 'all'] as const;
type Command = (typeof COMMANDS)[number];

function parseCommand(argv: readonly string[]): Command {
  const command = argv[2] ?? 'all';
  if ((COMMANDS as readonly string[]).includes(command)) return command as Command;
  process.stderr.write(`usage: main [${COMMANDS.join('|')}] (default: all)\n`);
  process.exit(64);
}

function loadOrExit(): Config {
  try {
    return loadProcessConfig();
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

async function main(): Promise<void> {
  const command = parseCommand(process.argv);
  const config = loadOrExit();
  const logger = createLogger({
    level: config.observability.logLevel,
    base: { service: 'groundwork', role: command },
  });
  const lifecycle = new Lifecycle();

  switch (command) {
    case 'migrate':
      logger.info('no migrations to apply');
      await flushLogger(logger);
      return;
    case 'worker': {
      // The jobs area fills this role; until then a worker idles until it is told to stop.
      const keepAlive = setInterval(() => undefined, 60_000);
      onShutdown(logger, config, lifecycle, async () => clearInterval(keepAlive));
      logger.info('worker started');
      return;
    }
    case 'serve':
    case 'all': {
      const app = await buildApp(config, { logger, lifecycle });
      onShutdown(logger, config, lifecycle, () => app.close());
      await app.listen({ host: config.server.host, port: config.server.port });
      return;
    }
  }
}

try {
  await main();
} catch (error) {
  // APPS naming an unknown app is found while building the app: still a configuration error.
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(EXIT_CONFIG);
}
