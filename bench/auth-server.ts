/**
 * The server of the auth benchmark, forked by `auth.ts` (arguments: `groundwork`, the database
 * URL). The full Groundwork stack on a fresh database (migrated here), with production argon2id
 * parameters (the OWASP row: 19456 KiB, 2 iterations, 1 lane: the defaults) and the session-check
 * cache in process (`AUTH_SESSION_CACHE=auto`; no Redis). Rate limits are off, so the figures are
 * the cost of authentication alone. Seeds one verified account and sends `{ port, login,
 * password }` once listening; answers each message with `{ cpuMicros }`.
 */
import { createWriteStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { migrateToLatest, newId } from '../src/platform/db/index.ts';
import { PasswordHasher, identitySettings } from '../src/platform/identity/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import { createLogger, createMetricsRegistry } from '../src/platform/observability/index.ts';

export const AUTH_BENCH_PATHS = {
  authenticated: '/api/v1/bench/me',
  unauthenticated: '/api/v1/bench/open',
} as const;
export const BENCH_LOGIN = 'bench_user';
export const BENCH_PASSWORD = 'violet-Harbor-83-quantum-Mosaic';

// The same handler twice: one route requires a token, the other reads none.
const handler = () => Promise.resolve({ ok: true });
const benchApp = defineApp({
  name: 'bench',
  description: 'Benchmark fixture',
  routes: (app) => {
    app.get(AUTH_BENCH_PATHS.authenticated.slice(7), { config: { auth: 'required' } }, handler);
    app.get(AUTH_BENCH_PATHS.unauthenticated.slice(7), { config: { auth: 'none' } }, handler);
    return Promise.resolve();
  },
});

async function start(url: string) {
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: url,
    DATABASE_POOL_MAX: '10',
    RATE_LIMIT_ENABLED: 'false',
    PUBLIC_URL: 'https://bench.example.test',
  });
  const logger = createLogger({
    level: 'warn',
    destination: createWriteStream('/dev/null'),
    base: { service: 'groundwork' },
  });
  const metrics = createMetricsRegistry();
  const platform = await createPlatform(config, {
    logger,
    metrics,
    modules: enabledModules(config, [benchApp]),
    role: 'bench',
    prepare: async (database) => {
      await migrateToLatest(database.db, allMigrations([benchApp]));
    },
  });
  const { database } = platform;
  const hasher = new PasswordHasher(identitySettings(config).argon2);
  await database.pool.query(
    `insert into gw_user (id, email, username, password_hash, email_verified_at)
     values ($1, $2, $3, $4, now())`,
    [newId(), `${BENCH_LOGIN}@example.test`, BENCH_LOGIN, await hasher.hash(BENCH_PASSWORD)],
  );
  const app = await buildApp(config, { platform, apps: [benchApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    argon2: identitySettings(config).argon2,
    async close() {
      await app.close();
      await platform.close();
    },
  };
}

if (process.send !== undefined) {
  const url = process.argv[3];
  if (process.argv[2] !== 'groundwork' || url === undefined) {
    process.stderr.write('usage: forked by bench/auth.ts with `groundwork <database url>`\n');
    process.exit(64);
  }
  const server = await start(url);
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  });
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
  process.send({ port: server.port, argon2: server.argon2 });
}
