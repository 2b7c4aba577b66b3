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
import { sql } from 'kysely';
import { Type } from 'typebox';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { migrateToLatest } from '../src/platform/db/index.ts';
import { defineJob } from '../src/platform/jobs/index.ts';
import { defineModule } from '../src/platform/modules/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';

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

const soakApp = defineModule({
  name: 'soak',
  description: 'Soak benchmark fixture: a signed-in route that enqueues a job',
  jobs: [soakWork],
  routes: (app, { platform }) => {
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
        const { id } = await platform.jobs.send(
          soakWork,
          { n: request.body.n },
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
  const config = loadAppConfig({ ...env, APP_ENV: 'production', LOG_LEVEL: 'info', PORT: '0' });
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork', role: 'all' },
  });
  const metrics = createMetricsRegistry();
  // As `src/main.ts all` does: one platform, the queue working in this process.
  const platform = await createPlatform(config, {
    logger,
    metrics,
    modules: enabledModules(config, [soakApp]),
    work: true,
    role: 'all',
    prepare: async (database) => {
      await migrateToLatest(database.db, allMigrations([soakApp]));
    },
  });
  const app = await buildApp(config, { platform, apps: [soakApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return {
    port: (app.server.address() as AddressInfo).port,
    async close() {
      await app.close();
      await platform.close();
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
