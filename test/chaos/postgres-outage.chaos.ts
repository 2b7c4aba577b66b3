/**
 * Chaos: PostgreSQL stopped and restarted under load (a private cluster, never the shared one).
 *
 * Promise: while the database is down, every request gets an answer within 5 s: 200, or 503
 * problem+json `DEPENDENCY_UNAVAILABLE` (never a 500, a reset or a hang); readiness fails within
 * N = 5 s of the stop and recovers within M = 10 s of the restart; every write acknowledged (200)
 * is in the database afterwards, whole, and no write is half done (its transaction rolled back).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PrivatePostgres, startServer, waitFor } from '../helpers/chaos.ts';
import { keepAliveLoad, quantile, tally, type Outcome } from '../helpers/load.ts';
import { get } from '../helpers/process.ts';

const preload = fileURLToPath(new URL('../fixtures/chaos-routes.ts', import.meta.url));
const READY_FAILS_WITHIN_MS = 5_000;
const READY_RECOVERS_WITHIN_MS = 10_000;
const ANSWER_WITHIN_MS = 5_000;
const skip = await PrivatePostgres.available();

describe('chaos: PostgreSQL stopped and restarted under load', { skip, timeout: 120_000 }, () => {
  test('503 DEPENDENCY_UNAVAILABLE during the outage, readiness flips and recovers, no acknowledged write lost', async (t) => {
    const pgsrv = await PrivatePostgres.create(t);
    await pgsrv.query('create table chaos_writes (id text not null, part text not null)');
    const server = await startServer(t, {
      role: 'serve',
      preload: [preload],
      env: {
        DATABASE_URL: pgsrv.url(),
        RATE_LIMIT_ENABLED: 'false',
        DATABASE_CONNECT_TIMEOUT_MS: '2000',
      },
    });

    const load = keepAliveLoad({
      port: server.port,
      concurrency: 4,
      path: (n) => `/test/chaos/write?id=w${String(n)}&ms=5`,
      request: { method: 'POST' },
      pauseMs: 10,
      timeoutMs: ANSWER_WITHIN_MS,
    });
    t.after(() => load.stop());
    await sleep(1_000);

    const stoppedAt = performance.now();
    await pgsrv.stop();
    const failsAfter = await waitFor(
      'readiness fails',
      async () => (await get(server.port, '/health/ready', 2_000)).status === 503,
      READY_FAILS_WITHIN_MS,
    );
    await sleep(3_000);
    const restartedAt = performance.now();
    await pgsrv.start();
    const recoversAfter = await waitFor(
      'readiness recovers',
      async () => (await get(server.port, '/health/ready', 2_000)).status === 200,
      READY_RECOVERS_WITHIN_MS,
    );
    await sleep(1_000);
    load.stop();
    const outcomes = await load.done;
    const counts = tally(outcomes);
    t.diagnostic(
      `readiness failed ${String(failsAfter)} ms after the stop, recovered ${String(recoversAfter)} ms after the restart; outcomes ${JSON.stringify(counts)}; p99 ${quantile(
        outcomes.map((o) => o.ms),
        0.99,
      ).toFixed(0)} ms`,
    );

    const during = outcomes.filter((o) => o.sentAt >= stoppedAt && o.sentAt < restartedAt);
    assert.ok(during.length > 0, 'requests were sent during the outage');
    const bad = outcomes.filter(
      (o) =>
        !(
          o.status === 200 ||
          (o.status === 503 &&
            o.contentType?.startsWith('application/problem+json') === true &&
            (JSON.parse(o.body ?? '{}') as { code?: string }).code === 'DEPENDENCY_UNAVAILABLE')
        ),
    );
    assert.deepEqual(
      bad
        .slice(0, 5)
        .map((o: Outcome) => `${o.path}: ${o.error ?? String(o.status)} ${o.body ?? ''}`),
      [],
      `only 200 or 503 DEPENDENCY_UNAVAILABLE: ${JSON.stringify(counts)}`,
    );
    assert.ok(
      during.some((o) => o.status === 503),
      'the outage was seen by requests (503 answers)',
    );
    assert.ok(
      outcomes.filter((o) => o.sentAt > restartedAt + recoversAfter).some((o) => o.status === 200),
      'writes succeed again after recovery',
    );
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    assert.ok(
      slowest < ANSWER_WITHIN_MS,
      `every answer within ${String(ANSWER_WITHIN_MS)} ms (slowest ${slowest.toFixed(0)})`,
    );

    // Every acknowledged write is there, whole; no write is there in part.
    const { rows } = await pgsrv.query<{ id: string; parts: string }>(
      "select id, string_agg(part, ',' order by part) as parts from chaos_writes group by id",
    );
    const stored = new Map(rows.map((r) => [r.id, r.parts]));
    const acknowledged = outcomes
      .filter((o) => o.status === 200)
      .map((o) => new URL(o.path, 'http://x').searchParams.get('id'));
    const lost = acknowledged.filter((id) => stored.get(id ?? '') !== 'first,second');
    assert.deepEqual(lost, [], 'every acknowledged write is stored whole');
    const partial = rows.filter((r) => r.parts !== 'first,second');
    assert.deepEqual(partial, [], 'no write is stored in part');
  });
});
