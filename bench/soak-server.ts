/**
 * The server of the soak benchmark, forked by `soak.ts` (arguments: `groundwork` and a JSON object
 * of environment variables). The process `npm start` runs (`src/main.ts all`: HTTP and job
 * workers in one process) put together the same way, in production mode: argon2id at the OWASP
 * defaults, rate limits on (Redis store), the session-check and permission caches in Redis, mail
 * through SMTP (the parent's sink), JSON logs at `info` written to /dev/null (every request pays
 * for its line). One fixture app adds the job enqueue route an app would have:
 * `POST /api/v1/soak/jobs` (signed in) enqueues `soak.work` for the caller, whose status the
 * platform's `GET /api/v1/jobs/:id` answers. Sends `{ port }` once listening and answers each IPC
 * message with `{ cpuMicros, rss, heapUsed, external, afterMajorGc }`: the memory now, and as it
 * was right after the latest full (mark-compact) collection, which is the live heap, the figure a
 * leak moves (heap used between collections is a sawtooth of garbage).
 */
import type { AddressInfo } from 'node:net';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import { buildApp } from '../src/app.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrateToLatest, openDatabase } from '../src/platform/db/index.ts';
import {
  identityMailTemplates,
  purgeDeletedAccountsJob,
  purgeOidcStatesJob,
} from '../src/platform/identity/index.ts';
import { JobQueue, defineJob } from '../src/platform/jobs/index.ts';
import { Mailer } from '../src/platform/mail/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { closeRedis, connectRedis } from '../src/platform/redis/index.ts';
import { purgeIdempotencyKeys } from '../src/platform/traffic/index.ts';

export const SOAK_JOBS_PATH = '/api/v1/soak/jobs';

/** A small job: what a handler that touches the database and returns a result costs. */
const soakWork = defineJob({
  name: 'soak.work',
  payload: Type.Object({ n: Type.Integer({ minimum: 0 }) }),
  handler: async ({ n }, ctx) => {
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(ctx.db);
    return { n, at: rows[0]?.now.toISOString() ?? null };
  },
  options: { concurrency: 8, batchSize: 8, retries: 1 },
});

const soakApp = defineApp({
  name: 'soak',
  description: 'Soak benchmark fixture: a signed-in route that enqueues a job',
  jobs: [soakWork],
  routes: (app) => {
    app.post(
      SOAK_JOBS_PATH.slice(7),
      {
        config: { auth: 'required' },
        schema: {
          body: Type.Object({ n: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }) }),
          response: { 202: Type.Object({ id: Type.String() }) },
        },
      },
      async (request, reply) => {
        const jobs = app.platform.jobs;
        if (jobs === null) throw new Error('soak: no job queue');
        const { id } = await jobs.send(
          soakWork,
          { n: (request.body as { n: number }).n },
          { userId: request.userId ?? null, requestId: request.id },
        );
        reply.code(202);
        return { id };
      },
    );
    return Promise.resolve();
  },
});

async function start(env: Record<string, string>) {
  const config = loadConfig({ ...env, APP_ENV: 'production', LOG_LEVEL: 'info', PORT: '0' });
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork', role: 'all' },
  });
  const metrics = createMetricsRegistry();
  const database = await openDatabase(config, { logger, metrics, role: 'all' });
  await migrateToLatest(database.db as unknown as Kysely<unknown>, allMigrations([soakApp]));
  const redis = await connectRedis(config, logger);
  // As `src/main.ts all` does: the queue works in this process, mail registers its job first.
  const jobs = new JobQueue({
    config,
    database,
    logger,
    metrics,
    definitions: [soakWork],
    work: true,
  });
  const mail = new Mailer({
    config,
    database,
    jobs,
    logger,
    metrics,
    templates: identityMailTemplates,
  });
  jobs.register(purgeIdempotencyKeys);
  jobs.register(purgeDeletedAccountsJob(config.identity.accountRetentionS));
  jobs.register(purgeOidcStatesJob);
  await jobs.start();
  await jobs.startWorkers();
  const app = await buildApp(config, {
    logger,
    database,
    metrics,
    apps: [soakApp],
    jobs,
    mail,
    redis,
  });
  await app.listen({ host: config.server.host, port: config.server.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    async close() {
      await app.close();
      await jobs.stop(2_000);
      await mail.close();
      if (redis) await closeRedis(redis);
      await database.close();
    },
  };
}

/** Memory right after the latest full collection, and how many there have been. */
const afterMajorGc = { count: 0, heapUsed: NaN, rss: NaN };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    // A 'gc' entry carries `detail.kind` (Node's own type leaves `detail` off PerformanceEntry).
    const { detail } = entry as unknown as { detail?: { kind?: number } };
    if (detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
    const { heapUsed, rss } = process.memoryUsage();
    afterMajorGc.count++;
    afterMajorGc.heapUsed = heapUsed;
    afterMajorGc.rss = rss;
  }
}).observe({ entryTypes: ['gc'] });

if (process.send !== undefined) {
  const raw = process.argv[3];
  if (process.argv[2] !== 'groundwork' || raw === undefined) {
    process.stderr.write('usage: forked by bench/soak.ts with `groundwork <env JSON>`\n');
    process.exit(64);
  }
  const server = await start(JSON.parse(raw) as Record<string, string>);
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    const { rss, heapUsed, external } = process.memoryUsage();
    process.send?.({
      cpuMicros: user + system,
      rss,
      heapUsed,
      external,
      afterMajorGc: { ...afterMajorGc },
    });
  });
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
  process.send({ port: server.port });
}
