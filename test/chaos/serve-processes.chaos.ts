/**
 * Chaos: serve processes killed outright and stopped under load.
 *
 * - kill -9 of a serve process mid-request. Promise: the other process keeps answering every
 *   request (all 200, none lost); the killed request's transaction is rolled back (none of its
 *   rows, no session left open in the database).
 * - SIGTERM under load. Promise: every request sent gets a complete answer (200, or 503) except
 *   those refused at connect once the listener is closed; readiness turns 503 during the drain
 *   delay; the process exits 0 within drain delay + 2 s (its requests are short).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startServer, waitFor } from '../helpers/chaos.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { keepAliveLoad, quantile, send, tally } from '../helpers/load.ts';
import { get } from '../helpers/process.ts';

const preload = fileURLToPath(new URL('../fixtures/chaos-routes.ts', import.meta.url));

describe('chaos: serve processes', { timeout: 120_000 }, () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
    await tdb.database.pool.query(
      'create table chaos_writes (id text not null, part text not null)',
    );
  });
  after(() => tdb.drop());

  const env = () => ({ DATABASE_URL: tdb.url, RATE_LIMIT_ENABLED: 'false' });

  test('kill -9 of a serve process mid-request: the other keeps serving, the transaction rolls back', async (t) => {
    const victim = await startServer(t, { role: 'serve', preload: [preload], env: env() });
    const survivor = await startServer(t, { role: 'serve', preload: [preload], env: env() });
    const load = keepAliveLoad({
      port: survivor.port,
      concurrency: 4,
      path: (n) =>
        n % 2 === 0 ? `/test/chaos/write?id=s${String(n)}&ms=2` : '/test/chaos/read?id=none',
      request: { method: 'POST' },
      timeoutMs: 5_000,
    });
    t.after(() => load.stop());
    // A write whose transaction has its first row in when the process dies.
    const killed = send(false, victim.port, '/test/chaos/write?id=killed&ms=3000', {
      method: 'POST',
    });
    await waitFor(
      'the victim is inside its transaction',
      async () =>
        (
          await tdb.database.pool.query(
            "select 1 from pg_stat_activity where datname = current_database() and state = 'idle in transaction'",
          )
        ).rowCount === 1,
      5_000,
      20,
    );
    victim.child.kill('SIGKILL');
    const outcome = await killed;
    assert.ok(outcome.error !== undefined, 'the killed request got no answer (its process died)');
    await sleep(1_000);
    load.stop();
    const outcomes = await load.done;
    const counts = tally(outcomes);
    t.diagnostic(
      `survivor outcomes ${JSON.stringify(counts)}, p99 ${quantile(
        outcomes.map((o) => o.ms),
        0.99,
      ).toFixed(0)} ms`,
    );
    assert.deepEqual(
      Object.keys(counts),
      ['200'],
      `the survivor answered everything: ${JSON.stringify(counts)}`,
    );

    await waitFor(
      "the dead process's session is gone",
      async () =>
        (
          await tdb.database.pool.query(
            "select 1 from pg_stat_activity where datname = current_database() and state = 'idle in transaction'",
          )
        ).rowCount === 0,
      5_000,
    );
    const { rows } = await tdb.database.pool.query(
      "select part from chaos_writes where id = 'killed'",
    );
    assert.deepEqual(rows, [], 'the killed transaction left nothing');
    const partial = await tdb.database.pool.query(
      'select id from chaos_writes group by id having count(*) <> 2',
    );
    assert.deepEqual(partial.rows, [], 'every stored write is whole');
  });

  test('SIGTERM under load: every request answered or refused at connect, exit 0 in time', async (t) => {
    const drainMs = 2_000;
    const server = await startServer(t, {
      role: 'serve',
      preload: [preload],
      env: { ...env(), SHUTDOWN_DRAIN_DELAY_MS: String(drainMs), SHUTDOWN_GRACE_MS: '5000' },
    });
    const load = keepAliveLoad({
      port: server.port,
      concurrency: 8,
      path: (n) =>
        n % 2 === 0
          ? `/test/chaos/write?id=t${String(n)}&ms=${String(n % 7)}`
          : `/test/chaos/read?id=t${String(n)}`,
      request: { method: 'POST' },
      stopOn: (o) => o.error === 'ECONNREFUSED',
      pauseMs: 1,
      timeoutMs: 10_000,
    });
    t.after(() => load.stop());
    await sleep(1_000);
    const signalled = performance.now();
    process.kill(server.pid, 'SIGTERM');
    const readyFails = await waitFor(
      'readiness fails while draining',
      async () => (await get(server.port, '/health/ready', 1_000)).status === 503,
      1_000,
      20,
    );
    const exit = await server.exited;
    const exitMs = performance.now() - signalled;
    const outcomes = await load.done;
    const counts = tally(outcomes);
    t.diagnostic(
      `readiness 503 after ${String(readyFails)} ms, exit ${String(exit.code)} ${exitMs.toFixed(0)} ms after SIGTERM (drain ${String(drainMs)} ms); outcomes ${JSON.stringify(counts)}`,
    );
    assert.deepEqual(
      { code: exit.code, signal: exit.signal },
      { code: 0, signal: null },
      server.stdout().slice(-2000),
    );
    assert.ok(
      exitMs < drainMs + 2_000,
      `exited within the drain delay + 2 s (${exitMs.toFixed(0)} ms)`,
    );
    assert.ok(exitMs >= drainMs, 'served through the drain delay');
    const lost = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED');
    assert.deepEqual(
      lost.map((o) => `${o.path}: ${String(o.error)}`),
      [],
      JSON.stringify(counts),
    );
    assert.ok(
      outcomes.every((o) => o.error !== undefined || o.status === 200 || o.status === 503),
      JSON.stringify(counts),
    );
    assert.ok(
      outcomes.filter((o) => o.sentAt > signalled).some((o) => o.status === 200),
      'served during the drain',
    );
    const logged = new Set(
      server
        .logs()
        .filter((l) => l.msg === 'request completed')
        .map((l) => l.url),
    );
    const unlogged = outcomes.filter((o) => o.status !== undefined && !logged.has(o.path));
    assert.equal(unlogged.length, 0, 'every answered request has its log line');
  });
});
