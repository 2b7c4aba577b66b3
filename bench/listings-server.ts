/**
 * The Groundwork server of bench/listings-pool.ts: the spots app on `buildApp` with
 * `DATABASE_POOL_MAX` from the command line, every request logged to /dev/null. Listens on a free
 * port, sends `{ port }` over IPC, then answers each message with `{ cpuMicros }`.
 */
import type { AddressInfo } from 'node:net';
import { buildApp, enabledModules, knownModules } from '../src/app.ts';
import { spotsApp } from '../src/apps/spots/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';

const [poolMax, url] = process.argv.slice(2);
if (poolMax === undefined || url === undefined || process.send === undefined) {
  process.stderr.write(
    'usage: forked by bench/listings-pool.ts with a pool size and a database URL\n',
  );
  process.exit(64);
}
const config = loadConfig(
  {
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: url,
    DATABASE_POOL_MAX: poolMax,
    // Rate limits stay on, with a limit the load from one IP never reaches.
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
  },
  { modules: [...knownModules(), spotsApp] },
);
const logger = createLogger({
  level: config.observability.logLevel,
  destination: createLogDestination('/dev/null'),
  base: { service: 'groundwork' },
});
const platform = await createPlatform(config, {
  logger,
  metrics: createMetricsRegistry(),
  modules: enabledModules(config, [spotsApp]),
  role: 'bench-listings',
});
const app = await buildApp(config, { platform, apps: [spotsApp] });
await app.listen({ host: config.server.host, port: config.server.port });
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.send({ port: (app.server.address() as AddressInfo).port });
process.on('SIGTERM', () => process.exit(0));
