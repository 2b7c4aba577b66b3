/**
 * One server for the traffic benchmark, forked by `traffic.ts` (argument: `unlimited` or
 * `limited`; `BENCH_REDIS_URL` names the Redis). Both are the full Groundwork stack with the same
 * route; `limited` adds the rate limiter on the Redis store with a limit no run reaches, so every
 * request pays for its decision and none is refused; `limited-memory` is the same limiter on the
 * in-process store (one process, no Redis), to tell the store's cost from the hooks' and headers'.
 */
import type { AddressInfo } from 'node:net';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import { createLogDestination, createLogger } from '../src/platform/observability/index.ts';
import { closeRedis, connectRedis } from '../src/platform/redis/index.ts';

export const TRAFFIC_PATH = '/api/v1/bench/ping';
export const TRAFFIC_KINDS = ['unlimited', 'limited', 'limited-memory'] as const;
export type TrafficKind = (typeof TRAFFIC_KINDS)[number];

const benchApp = defineApp({
  name: 'bench',
  description: 'Benchmark fixture',
  routes: (app) => {
    app.get('/bench/ping', () => Promise.resolve({ ok: true }));
    return Promise.resolve();
  },
});

async function start(kind: TrafficKind): Promise<{ port: number; close(): Promise<void> }> {
  const limited = kind !== 'unlimited';
  const redisStore = kind === 'limited';
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_ENABLED: String(limited),
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
    ...(redisStore
      ? {
          REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
          REDIS_KEY_PREFIX: `gwbench:${String(process.pid)}:`,
        }
      : {}),
  });
  // The production logger's destination, writing to /dev/null: every request pays for its line.
  const logger = createLogger({
    level: 'info',
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork' },
  });
  // Redis from REDIS_URL; no database is opened (the routes measured use none).
  const redis = await connectRedis(config, logger);
  const platform = await createPlatform(config, {
    logger,
    modules: enabledModules(config, [benchApp]),
    connect: false,
    redis,
  });
  const app = await buildApp(config, { platform, apps: [benchApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    async close() {
      await app.close();
      await platform.close();
      if (redis) await closeRedis(redis);
    },
  };
}

if (process.send !== undefined) {
  const kind = process.argv[2] as TrafficKind;
  if (!TRAFFIC_KINDS.includes(kind)) {
    process.stderr.write(
      `usage: forked by bench/traffic.ts with one of ${TRAFFIC_KINDS.join(', ')}\n`,
    );
    process.exit(64);
  }
  const server = await start(kind);
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  });
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
  process.send({ port: server.port });
}
