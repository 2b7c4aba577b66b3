/**
 * Chaos: kill -9 of a worker process mid-job.
 *
 * Promise: with two workers running a batch of jobs and one killed outright while it holds some,
 * every job completes, each exactly once in effect (one `done` row per job; a job whose worker
 * died started again elsewhere after its lease ran out), within 40 s of the kill.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { JobQueue } from '../../src/platform/jobs/index.ts';
import { slowJob } from '../fixtures/jobs-app.ts';
import { testConfig } from '../helpers/app.ts';
import { startServer, waitFor } from '../helpers/chaos.ts';
import { createTestDatabase } from '../helpers/db.ts';

const preload = fileURLToPath(new URL('../fixtures/jobs-app.ts', import.meta.url));
const JOBS = 8;

interface Run {
  job_id: string;
  pid: number;
  phase: 'start' | 'done';
}

describe('chaos: a worker killed mid-job', { timeout: 120_000 }, () => {
  test('every job completes exactly once in effect when a worker is killed with SIGKILL', async (t) => {
    const tdb = await createTestDatabase();
    t.after(() => tdb.drop());
    await tdb.database.pool.query(
      'create table e2e_runs (tag text, job_id uuid, pid int, phase text, at timestamptz default now())',
    );
    const producer = new JobQueue({
      config: testConfig(),
      database: tdb.database,
      logger: pino({ level: 'silent' }),
      definitions: [slowJob],
      work: false,
    });
    await producer.start();
    t.after(() => producer.stop(1_000));
    const env = {
      DATABASE_URL: tdb.url,
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
    };
    const a = await startServer(t, { role: 'worker', preload: [preload], env });
    const b = await startServer(t, { role: 'worker', preload: [preload], env });

    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++)
      ids.push((await producer.send(slowJob, { tag: 'chaos', ms: 1_500 })).id);
    const runs = async () =>
      (
        await tdb.database.pool.query<Run>(
          "select job_id, pid, phase from e2e_runs where tag = 'chaos' order by at",
        )
      ).rows;
    // Kill whichever worker is running a job that has not finished.
    let victimPid = 0;
    await waitFor(
      'a worker is mid-job',
      async () => {
        const all = await runs();
        const open = all.find(
          (r) =>
            r.phase === 'start' && !all.some((d) => d.phase === 'done' && d.job_id === r.job_id),
        );
        victimPid = open?.pid ?? 0;
        return victimPid !== 0;
      },
      20_000,
      20,
    );
    const victim = [a, b].find((w) => w.pid === victimPid);
    assert.ok(victim, 'one of our workers holds a job');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();

    const took = await waitFor(
      'every job done',
      async () =>
        new Set((await runs()).filter((r) => r.phase === 'done').map((r) => r.job_id)).size ===
        JOBS,
      40_000,
      200,
    );
    const all = await runs();
    const done = all.filter((r) => r.phase === 'done');
    const interrupted = all.filter(
      (r) =>
        r.phase === 'start' &&
        r.pid === victimPid &&
        !done.some((d) => d.job_id === r.job_id && d.pid === victimPid),
    );
    t.diagnostic(
      `${String(JOBS)} jobs, ${String(interrupted.length)} interrupted by the kill, all done ${String(took)} ms after it (${String(Date.now() - killedAt)} ms)`,
    );
    assert.ok(interrupted.length >= 1, 'the kill interrupted at least one job');
    for (const id of ids)
      assert.equal(
        done.filter((r) => r.job_id === id).length,
        1,
        `job ${id} took effect exactly once`,
      );
    // The queue marks a job completed just after its handler returns.
    const states = async () =>
      (
        await tdb.database.pool.query<{ state: string; n: number }>(
          "select state::text as state, count(*)::int as n from pgboss.job where name = 'e2e.slow' group by state",
        )
      ).rows;
    await waitFor(
      'every job is completed in the queue',
      async () =>
        JSON.stringify(await states()) === JSON.stringify([{ state: 'completed', n: JOBS }]),
      5_000,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}: ${JSON.stringify(await states())}`);
    });
  });
});
