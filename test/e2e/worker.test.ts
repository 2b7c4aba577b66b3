import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { JobQueue } from '../../src/platform/jobs/index.ts';
import { slowJob } from '../fixtures/jobs-app.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { freePort, get, isAlive, parseLogs } from '../helpers/process.ts';
import { redisAnswers, TEST_REDIS_URL } from '../helpers/redis.ts';

/** Workers use the shared Redis when one answers: the scaled-out path (REDIS_URL set). */
const withRedis = await redisAnswers();

const root = fileURLToPath(new URL('../..', import.meta.url));
const preload = fileURLToPath(new URL('../fixtures/jobs-app.ts', import.meta.url));

interface Worker {
  child: ChildProcess;
  pid: number;
  port: number;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startWorker(url: string): Promise<Worker> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APP_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: url,
    LOG_LEVEL: 'info',
    JOBS_POLL_INTERVAL_MS: '500',
    JOBS_SUPERVISE_INTERVAL_S: '1',
    SHUTDOWN_GRACE_MS: '8000',
    ...(withRedis ? { REDIS_URL: TEST_REDIS_URL } : {}),
  };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--import', preload, 'src/main.ts', 'worker'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = await eventually(
    `worker on ${String(port)} ready`,
    async () => {
      const res = await get(port, '/health/ready').catch(() => ({ status: 0, body: '' }));
      return res.status === 200 ? res : undefined;
    },
    30_000,
  );
  const checks = (JSON.parse(ready.body) as { checks: Record<string, { status: string }> }).checks;
  assert.equal(checks.queue?.status, 'up');
  if (withRedis) assert.equal(checks.redis?.status, 'up');
  return { child, pid: child.pid as number, port, stdout: () => stdout, exited };
}

interface Run {
  tag: string;
  job_id: string;
  pid: number;
  phase: 'start' | 'done';
}

describe('worker processes', { timeout: 120_000 }, () => {
  let tdb: TestDatabase;
  let producer: JobQueue;
  const workers: Worker[] = [];

  before(async () => {
    tdb = await createTestDatabase();
    await tdb.database.pool.query(
      'create table e2e_runs (tag text, job_id uuid, pid int, phase text, at timestamptz default now())',
    );
    // The producer enqueues only (like a `serve` process); the two workers do the work.
    producer = new JobQueue({
      config: testConfig(),
      database: tdb.database,
      logger: pino({ level: 'silent' }),
      definitions: [slowJob],
      work: false,
    });
    await producer.start();
    workers.push(await startWorker(tdb.url), await startWorker(tdb.url));
  });

  after(async () => {
    for (const w of workers) if (isAlive(w.pid)) w.child.kill('SIGKILL');
    await producer.stop(1_000);
    await tdb.drop();
  });

  const runs = async (tag: string) =>
    (await tdb.database.pool.query<Run>('select * from e2e_runs where tag = $1 order by at', [tag]))
      .rows;

  test('a job whose worker is killed mid-run is picked up by another after its lease and completes once', async () => {
    const { id } = await producer.send(slowJob, { tag: 'killed', ms: 2_000 });
    const started = await eventually('the job started', async () =>
      (await runs('killed')).find((r) => r.phase === 'start'),
    );
    const victim = workers.find((w) => w.pid === started.pid);
    assert.ok(victim, 'one of our workers ran it');
    victim.child.kill('SIGKILL');
    await victim.exited;
    workers.splice(workers.indexOf(victim), 1);

    const done = await eventually(
      'the job completed elsewhere',
      async () => (await runs('killed')).find((r) => r.phase === 'done'),
      40_000,
    );
    assert.notEqual(done.pid, victim.pid);
    const all = await runs('killed');
    assert.equal(all.filter((r) => r.phase === 'done').length, 1, 'completed exactly once');
    assert.equal(all.filter((r) => r.phase === 'start').length, 2, 'started by both workers');
    // The handler's 'done' row commits before pg-boss marks the job completed (after the handler
    // returns): on a loaded machine the check came between the two and read 'active'.
    const state = async () =>
      (
        await tdb.database.pool.query<{ state: string }>(
          `select state::text as state from pgboss.job where name = 'e2e.slow' and id = $1`,
          [id],
        )
      ).rows[0]?.state;
    await eventually(
      'the job marked completed',
      async () => (await state()) === 'completed',
      10_000,
    ).catch(() => undefined);
    assert.equal(await state(), 'completed');
    // The survivor's log line for it carries the job id (log lines are written asynchronously,
    // up to 50 ms after they are logged).
    const survivor = workers.find((w) => w.pid === done.pid);
    await eventually(
      "the survivor's log line",
      () =>
        Promise.resolve(
          parseLogs(survivor?.stdout() ?? '').some(
            (l) => l.msg === 'job completed' && l.jobId === id && l.queue === 'e2e.slow',
          ),
        ),
      5_000,
    );
    workers.push(await startWorker(tdb.url));
  });

  test('SIGTERM: a worker finishes its running job, takes no new ones, and exits 0', async () => {
    // Two live workers, whatever the test before left (it replaces the one it kills).
    while (workers.length < 2) workers.push(await startWorker(tdb.url));
    await producer.send(slowJob, { tag: 'draining', ms: 2_500 });
    const started = await eventually('the job started', async () =>
      (await runs('draining')).find((r) => r.phase === 'start'),
    );
    const draining = workers.find((w) => w.pid === started.pid);
    const other = workers.find((w) => w.pid !== started.pid);
    assert.ok(draining && other);
    draining.child.kill('SIGTERM');
    // Jobs sent while it drains go to the other worker.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 0; i < 3; i++) await producer.send(slowJob, { tag: 'after-term', ms: 10 });

    const exit = await draining.exited;
    assert.equal(exit.code, 0, draining.stdout());
    const drainingRuns = await runs('draining');
    assert.deepEqual(
      drainingRuns.map((r) => [r.phase, r.pid]),
      [
        ['start', draining.pid],
        ['done', draining.pid],
      ],
      'the running job finished in the draining worker',
    );
    const later = await eventually(
      'the later jobs ran',
      async () => {
        const r = (await runs('after-term')).filter((x) => x.phase === 'done');
        return r.length === 3 ? r : undefined;
      },
      20_000,
    );
    assert.ok(
      later.every((r) => r.pid === other.pid),
      'jobs sent after SIGTERM ran in the other worker',
    );
    const logs = parseLogs(draining.stdout());
    assert.ok(logs.some((l) => l.msg === 'shutdown complete'));
  });
});
