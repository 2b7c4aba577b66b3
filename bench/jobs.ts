/**
 * Job queue benchmark against real PostgreSQL (a scratch database `gw_bench_jobs` on the server at
 * `BENCH_DATABASE_URL`, dropped at the end):
 *
 * 1. Enqueue throughput: `send()` one at a time, `send()` with 16 in flight (like concurrent
 *    requests), and `sendMany()` in batches of 500.
 * 2. End to end: 20,000 waiting jobs with a no-op handler; time from starting the workers until
 *    every job is completed in the database.
 * 3. Start lag of delayed jobs: 10,000 jobs due at moments spread over one minute; lag = handler
 *    start minus due time, p50/p99/max.
 *
 * Workers run in this process with the settings below (the tuned concurrency); the database is
 * the machine's PostgreSQL, sharing its 2 cores with this process.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { Type } from 'typebox';
import { loadConfig } from '../src/platform/config/index.ts';
import { openDatabase } from '../src/platform/db/index.ts';
import { JobQueue, defineJob } from '../src/platform/jobs/index.ts';

const SERVER = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DATABASE = 'gw_bench_jobs';
const E2E_JOBS = Number(process.env.BENCH_JOBS ?? 20_000);
const LAG_JOBS = 10_000;
const LAG_WINDOW_MS = 60_000;
const CONCURRENCY = 200;
const BATCH = 100;
const POLL_MS = 500;
const E2E_TARGET = 1_000;
const LAG_TARGET_MS = 1_000;

const lags: number[] = [];
const noop = defineJob({
  name: 'bench.noop',
  payload: Type.Object({ i: Type.Integer(), dueAt: Type.Optional(Type.Number()) }),
  handler: async (payload) => {
    if (payload.dueAt !== undefined) lags.push(Date.now() - payload.dueAt);
    return undefined;
  },
  options: { concurrency: CONCURRENCY, batchSize: BATCH, retries: 0 },
});

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client(SERVER);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function dbUrl(): string {
  const url = new URL(SERVER);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function main(): Promise<void> {
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  const config = loadConfig({
    APP_ENV: 'test',
    DATABASE_URL: dbUrl(),
    JOBS_POLL_INTERVAL_MS: String(POLL_MS),
    JOBS_POOL_MAX: '10',
  });
  const logger = pino({ level: 'warn' });
  const database = await openDatabase(config, { logger, url: dbUrl() });
  const jobs = new JobQueue({ config, database, logger, definitions: [noop], work: true });
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    settings: { concurrency: CONCURRENCY, batchSize: BATCH, pollMs: POLL_MS, poolMax: 10 },
  };
  try {
    await jobs.start();
    const completed = async () =>
      (
        await database.pool.query<{ n: number }>(
          `select count(*)::int as n from pgboss.job where name = 'bench.noop' and state = 'completed'`,
        )
      ).rows[0]?.n ?? 0;
    const clear = () => database.pool.query(`delete from pgboss.job where name = 'bench.noop'`);

    // 1. Enqueue throughput (no workers running).
    let t = performance.now();
    const single = 2_000;
    for (let i = 0; i < single; i++) await jobs.send(noop, { i });
    const singleRate = single / ((performance.now() - t) / 1000);

    t = performance.now();
    const parallel = 5_000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < parallel) {
          next++;
          await jobs.send(noop, { i: next });
        }
      }),
    );
    const parallelRate = parallel / ((performance.now() - t) / 1000);

    t = performance.now();
    const batched = 50_000;
    for (let i = 0; i < batched; i += 500) {
      await jobs.sendMany(
        noop,
        Array.from({ length: 500 }, (_, k) => ({ i: i + k })),
      );
    }
    const batchedRate = batched / ((performance.now() - t) / 1000);
    report.enqueue = {
      singleJobsPerSecond: singleRate,
      sixteenInFlightJobsPerSecond: parallelRate,
      batchedJobsPerSecond: batchedRate,
    };
    await clear();

    // 2. End to end with a no-op handler.
    for (let i = 0; i < E2E_JOBS; i += 1_000) {
      await jobs.sendMany(
        noop,
        Array.from({ length: 1_000 }, (_, k) => ({ i: i + k })),
      );
    }
    await database.pool.query('vacuum analyze pgboss.job_common');
    t = performance.now();
    await jobs.startWorkers();
    while ((await completed()) < E2E_JOBS) await sleep(100);
    const e2eSeconds = (performance.now() - t) / 1000;
    const e2eRate = E2E_JOBS / e2eSeconds;
    report.endToEnd = { jobs: E2E_JOBS, seconds: e2eSeconds, jobsPerSecond: e2eRate };
    await clear();

    // 3. Start lag: 10,000 jobs due over one minute, workers already running.
    const start = Date.now() + 5_000;
    const due = Array.from({ length: LAG_JOBS }, (_, i) => start + (i * LAG_WINDOW_MS) / LAG_JOBS);
    for (let i = 0; i < LAG_JOBS; i += 500) {
      // Grouped by due second, so each insert carries one `startAfter`.
      const slice = due.slice(i, i + 500);
      const bySecond = new Map<number, number[]>();
      for (const d of slice) {
        const key = Math.ceil(d / 1000) * 1000;
        bySecond.set(key, [...(bySecond.get(key) ?? []), d]);
      }
      for (const [second, items] of bySecond) {
        await jobs.sendMany(
          noop,
          items.map((_, k) => ({ i: i + k, dueAt: second })),
          { startAfter: new Date(second) },
        );
      }
    }
    lags.length = 0;
    while (lags.length < LAG_JOBS) await sleep(200);
    const sorted = [...lags].sort((a, b) => a - b);
    report.startLag = {
      jobs: LAG_JOBS,
      windowSeconds: LAG_WINDOW_MS / 1000,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.at(-1),
    };

    const lag = report.startLag as { p50Ms: number; p99Ms: number; maxMs: number };
    process.stdout.write(
      [
        `\n## Jobs (${process.version}, ${String(cpus().length)} cores, concurrency ${String(CONCURRENCY)}, batch ${String(BATCH)}, poll ${String(POLL_MS)} ms)\n`,
        '| Measurement | Figure | Target |',
        '| --- | ---: | ---: |',
        `| enqueue, one at a time | ${fmt(singleRate)} jobs/s | |`,
        `| enqueue, 16 in flight | ${fmt(parallelRate)} jobs/s | |`,
        `| enqueue, batches of 500 | ${fmt(batchedRate)} jobs/s | |`,
        `| end to end, no-op handler (${fmt(E2E_JOBS)} jobs) | ${fmt(e2eRate)} jobs/s | ≥ ${fmt(E2E_TARGET)} ${e2eRate >= E2E_TARGET ? '(met)' : '(missed)'} |`,
        `| start lag p50 (${fmt(LAG_JOBS)} due over ${String(LAG_WINDOW_MS / 1000)} s) | ${fmt(lag.p50Ms)} ms | |`,
        `| start lag p99 | ${fmt(lag.p99Ms)} ms | ≤ ${fmt(LAG_TARGET_MS)} ${lag.p99Ms <= LAG_TARGET_MS ? '(met)' : '(missed)'} |`,
        `| start lag max | ${fmt(lag.maxMs)} ms | |`,
        '',
      ].join('\n'),
    );
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('jobs.json', dir), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await jobs.stop(2_000);
    await database.close();
    await admin(`drop database if exists ${DATABASE} with (force)`);
  }
}
