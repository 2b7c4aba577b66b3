import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from '../../src/app.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { JobQueue, JOBS_SCHEMA, type AnyJob } from '../../src/platform/jobs/index.ts';
import type { AppModule } from '../../src/platform/modules/index.ts';
import { createLogger, createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface JobsHarness {
  tdb: TestDatabase;
  jobs: JobQueue;
  app: FastifyInstance;
  logs: LogCapture;
  metrics: Registry;
  config: Config;
  /** Rows of pg-boss's job table for a queue (every state). */
  rows(
    queue: string,
  ): Promise<{ id: string; state: string; retry_count: number; output: unknown }[]>;
  close(): Promise<void>;
}

/**
 * A test database, a started JobQueue with these definitions (workers running unless `work` is
 * false), and the app built on both. Requests carrying `x-test-user` are treated as that user
 * (the identity area sets `request.userId` for real).
 */
export async function startJobsHarness(
  definitions: readonly AnyJob[],
  options: { work?: boolean; overrides?: Record<string, string>; apps?: AppModule[] } = {},
): Promise<JobsHarness> {
  const config = testConfig({
    JOBS_POLL_INTERVAL_MS: '500',
    JOBS_SUPERVISE_INTERVAL_S: '1',
    JOBS_CRON_INTERVAL_S: '1',
    ...options.overrides,
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const metrics = createMetricsRegistry();
  const tdb = await createTestDatabase({ config, metrics });
  const jobs = new JobQueue({
    config,
    database: tdb.database,
    logger,
    metrics,
    definitions,
    work: options.work ?? true,
  });
  await jobs.start();
  if (options.work ?? true) await jobs.startWorkers();
  const app = await buildApp(config, {
    logger,
    database: tdb.database,
    metrics,
    jobs,
    apps: options.apps ?? [],
  });
  app.addHook('onRequest', (request, _reply, done) => {
    const user = request.headers['x-test-user'];
    if (typeof user === 'string') request.userId = user;
    done();
  });
  await app.ready();
  return {
    tdb,
    jobs,
    app,
    logs,
    metrics,
    config,
    async rows(queue) {
      const { rows } = await tdb.database.pool.query<{
        id: string;
        state: string;
        retry_count: number;
        output: unknown;
      }>(
        `select id, state::text as state, retry_count, output from ${JOBS_SCHEMA}.job where name = $1 order by created_on`,
        [queue],
      );
      return rows;
    },
    async close() {
      await app.close();
      await jobs.stop(1_000);
      await tdb.drop();
    },
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
