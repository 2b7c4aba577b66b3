/**
 * The server of the files benchmark's upload part, forked by `files.ts` (arguments: `groundwork`,
 * the database URL). The full Groundwork stack with the files module on a fresh database
 * (migrated here), the local storage driver in a scratch directory (removed on exit), rate limits
 * off, a quota no run reaches. No job worker runs here: uploads enqueue their processing job and
 * nothing takes it, so the figures are the upload path alone (streaming to storage, type check,
 * header probe, records). Seeds one verified account; sends `{ port }` once listening and answers
 * each message with `{ cpuMicros, rss, peakRss, maxRss, heapUsed, external, arrayBuffers }` (peak since the previous answer,
 * sampled every 10 ms; maxRss: the kernel's lifetime peak).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, loadAppConfig } from '../src/app.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { migrateToLatest, newId } from '../src/platform/db/index.ts';
import { filesModule } from '../src/platform/files/index.ts';
import { PasswordHasher, identitySettings } from '../src/platform/identity/index.ts';
import { createLogger, createMetricsRegistry } from '../src/platform/observability/index.ts';
import { createPlatform, enabledModules, platformModules } from '../src/platform/runtime/index.ts';

export const FILES_BENCH_LOGIN = 'bench_files';
export const FILES_BENCH_PASSWORD = 'violet-Harbor-83-quantum-Mosaic';

async function start(url: string, dataDir: string) {
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: url,
    DATABASE_POOL_MAX: '10',
    RATE_LIMIT_ENABLED: 'false',
    PUBLIC_URL: 'https://bench.example.test',
    DATA_DIR: dataDir,
    STORAGE_DRIVER: 'local',
    FILES_USER_QUOTA_BYTES: String(1024 ** 4),
  });
  const logger = createLogger({
    level: 'warn',
    destination: createWriteStream('/dev/null'),
    base: { service: 'groundwork' },
  });
  // Until the files module is one of the platform's own, it comes in as an app.
  const apps = platformModules.some((m) => m.name === filesModule.name) ? [] : [filesModule];
  const platform = await createPlatform(config, {
    logger,
    metrics: createMetricsRegistry(),
    modules: enabledModules(config, apps),
    role: 'bench',
    prepare: async (database) => {
      await migrateToLatest(database.db, allMigrations(apps));
    },
  });
  const hasher = new PasswordHasher(identitySettings(config).argon2);
  await platform.database.pool.query(
    `insert into gw_user (id, email, username, password_hash, email_verified_at)
     values ($1, $2, $3, $4, now())`,
    [
      newId(),
      `${FILES_BENCH_LOGIN}@example.test`,
      FILES_BENCH_LOGIN,
      await hasher.hash(FILES_BENCH_PASSWORD),
    ],
  );
  const app = await buildApp(config, { platform, apps });
  await app.listen({ host: config.server.host, port: config.server.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    async close() {
      await app.close();
      await platform.close();
    },
  };
}

if (process.send !== undefined) {
  const url = process.argv[3];
  if (process.argv[2] !== 'groundwork' || url === undefined) {
    process.stderr.write('usage: forked by bench/files.ts with `groundwork <database url>`\n');
    process.exit(64);
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-bench-files-'));
  const server = await start(url, dataDir);
  let peak = process.memoryUsage.rss();
  setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10).unref();
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send?.({
      cpuMicros: user + system,
      rss,
      peakRss: Math.max(peak, rss),
      maxRss: process.resourceUsage().maxRSS * 1024,
      heapUsed,
      external,
      arrayBuffers,
    });
    peak = rss;
  });
  process.on('SIGTERM', () => {
    void server
      .close()
      .then(() => rm(dataDir, { recursive: true, force: true }))
      .then(() => process.exit(0));
  });
  process.send({ port: server.port });
}
