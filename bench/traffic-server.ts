/**
 * One server for the traffic benchmark, forked by `traffic.ts` (argument: one of `TRAFFIC_KINDS`
 * or `MANY_KINDS`; `BENCH_REDIS_URL` names the Redis). All are the full Groundwork stack with the
 * same route.
 *
 * One client (`TRAFFIC_KINDS`): `limited` adds the rate limiter on the Redis store with a limit no
 * run reaches, so every request pays for its decision and none is refused; `limited-memory` is
 * the same limiter on the in-process store (one process, no Redis), to tell the store's cost from
 * the hooks' and headers'.
 *
 * 1,000 signed-in clients (`MANY_KINDS`): the request names its user in `x-bench-user` (bench-only:
 * this server's hook sets the user and the `enterprise` tier, 10,000 requests a minute, from it),
 * so the limit is per user and each user stays far below it. `many-limited` is the Redis store as
 * configured (decisions in process from reserved units); `many-exact` the same with
 * `RATE_LIMIT_LOCAL_SHARE=0` (every decision Redis's, one script call per event-loop turn: how it
 * was before); `many-unlimited` no limiter.
 *
 * Every server counts the Redis commands its client sends, and answers them with its CPU time.
 */
import type { AddressInfo } from 'node:net';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import { createLogDestination, createLogger } from '../src/platform/observability/index.ts';
import { closeRedis, connectRedis } from '../src/platform/redis/index.ts';
import { RedisRateStore } from '../src/platform/traffic/index.ts';

export const TRAFFIC_PATH = '/api/v1/bench/ping';
export const TRAFFIC_KINDS = ['unlimited', 'limited', 'limited-memory'] as const;
export const MANY_KINDS = ['many-unlimited', 'many-limited', 'many-exact'] as const;
export type TrafficKind = (typeof TRAFFIC_KINDS)[number] | (typeof MANY_KINDS)[number];
/** The header naming the signed-in user of a request (bench-only). */
export const USER_HEADER = 'x-bench-user';

/** What a server answers to a report request. */
export interface TrafficReport {
  cpuMicros: number;
  /** Commands its Redis client sent (0 without Redis). */
  redisCommands: number;
  /** The Redis rate store's counters, when it has one. */
  limiter: { calls: number; local: number; remote: number; keys: number } | null;
}

const benchApp = defineApp({
  name: 'bench',
  description: 'Benchmark fixture',
  routes: (app) => {
    // Bench-only: the user from a header, as the identity area would set it from a token.
    app.addHook('onRequest', (request, _reply, done) => {
      const user = request.headers[USER_HEADER];
      if (typeof user === 'string') {
        request.userId = user;
        request.userTier = 'enterprise';
      }
      done();
    });
    app.get('/bench/ping', () => Promise.resolve({ ok: true }));
    return Promise.resolve();
  },
});

async function start(
  kind: TrafficKind,
): Promise<{ port: number; report(): TrafficReport; close(): Promise<void> }> {
  const limited = kind !== 'unlimited' && kind !== 'many-unlimited';
  const redisStore = kind === 'limited' || kind === 'many-limited' || kind === 'many-exact';
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_ENABLED: String(limited),
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
    RATE_LIMIT_ENTERPRISE_PER_MIN: '10000',
    ...(kind === 'many-exact' ? { RATE_LIMIT_LOCAL_SHARE: '0' } : {}),
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
  let redisCommands = 0;
  if (redis) {
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = (command, stream) => {
      redisCommands += 1;
      return send(command, stream);
    };
  }
  const platform = await createPlatform(config, {
    logger,
    modules: enabledModules(config, [benchApp]),
    connect: false,
    redis,
  });
  const app = await buildApp(config, { platform, apps: [benchApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  const store = platform.rateLimits;
  return {
    port: (app.server.address() as AddressInfo).port,
    report() {
      const { user, system } = process.cpuUsage();
      return {
        cpuMicros: user + system,
        redisCommands,
        limiter: store instanceof RedisRateStore ? { ...store.stats, keys: store.localKeys } : null,
      };
    },
    async close() {
      await app.close();
      await platform.close();
      if (redis) await closeRedis(redis);
    },
  };
}

if (process.send !== undefined) {
  const kind = process.argv[2] as TrafficKind;
  if (!(TRAFFIC_KINDS as readonly string[]).concat(MANY_KINDS).includes(kind)) {
    process.stderr.write(
      `usage: forked by bench/traffic.ts with one of ${[...TRAFFIC_KINDS, ...MANY_KINDS].join(', ')}\n`,
    );
    process.exit(64);
  }
  const server = await start(kind);
  process.on('message', () => {
    process.send?.(server.report());
  });
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
  process.send({ port: server.port });
}
