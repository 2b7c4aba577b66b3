import { sql } from 'kysely';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import { withTransaction, type Db } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** Resolves once `parties` callers are waiting, so two transactions reach a point together. */
function barrier(parties: number, timeoutMs = 10_000): () => Promise<void> {
  let arrived = 0;
  let release: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    release = resolve;
  });
  return async () => {
    arrived++;
    if (arrived >= parties) release();
    await Promise.race([
      all,
      sleep(timeoutMs, undefined, { ref: false }).then(() => {
        throw new Error('barrier timed out');
      }),
    ]);
  };
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

describe('withTransaction', () => {
  let tdb: TestDatabase;
  let db: Db;
  /** A connection of its own, outside the pool: sees only committed rows. */
  let observer: pg.Client;

  before(async () => {
    tdb = await createTestDatabase();
    db = tdb.database.db;
    await sql`create table tx_rows (id integer primary key, value integer not null)`.execute(db);
    observer = new pg.Client(tdb.url);
    await observer.connect();
  });
  after(async () => {
    await observer?.end();
    await tdb?.drop();
  });
  beforeEach(async () => {
    await sql`delete from tx_rows`.execute(db);
    await sql`insert into tx_rows (id, value) values (1, 100), (2, 100)`.execute(db);
  });

  /** The committed value of row `id`, read from the observer connection. */
  async function committed(id: number): Promise<number | undefined> {
    const { rows } = await observer.query<{ value: number }>(
      'select value from tx_rows where id = $1',
      [id],
    );
    return rows[0]?.value;
  }

  test('commits and returns the value', async () => {
    const result = await withTransaction(db, async (trx, ctx) => {
      await sql`insert into tx_rows (id, value) values (10, 7)`.execute(trx);
      assert.equal(await committed(10), undefined, 'not visible before the commit');
      return { answer: 42, attempt: ctx.attempt };
    });
    assert.deepEqual(result, { answer: 42, attempt: 1 });
    assert.equal(await committed(10), 7);
  });

  test('applies the isolation level asked for', async () => {
    const level = (isolation?: 'serializable' | 'repeatable read') =>
      withTransaction(
        db,
        async (trx) =>
          (
            await sql<{
              level: string;
            }>`select current_setting('transaction_isolation') as level`.execute(trx)
          ).rows[0]?.level,
        isolation ? { isolation } : {},
      );
    assert.equal(await level(), 'read committed');
    assert.equal(await level('repeatable read'), 'repeatable read');
    assert.equal(await level('serializable'), 'serializable');
  });

  test('a throw rolls back, is not retried, and runs no after-commit effect', async () => {
    let calls = 0;
    const effects: string[] = [];
    await assert.rejects(
      withTransaction(
        db,
        async (trx, ctx) => {
          calls++;
          await sql`insert into tx_rows (id, value) values (11, 1)`.execute(trx);
          await sql`update tx_rows set value = 0 where id = 1`.execute(trx);
          ctx.afterCommit(() => {
            effects.push('sent');
          });
          throw new Error('boom');
        },
        { retries: 3 },
      ),
      /boom/,
    );
    assert.equal(calls, 1);
    assert.deepEqual(effects, []);
    assert.equal(await committed(11), undefined);
    assert.equal(await committed(1), 100);
  });

  test('after-commit effects run once each, in order, once the commit is visible', async () => {
    const order: string[] = [];
    const seen: (number | undefined)[] = [];
    const errors: unknown[] = [];
    const result = await withTransaction(
      db,
      async (trx, ctx) => {
        await sql`insert into tx_rows (id, value) values (12, 5)`.execute(trx);
        ctx.afterCommit(async () => {
          seen.push(await committed(12));
          order.push('first');
        });
        ctx.afterCommit(() => {
          order.push('failing');
          throw new Error('effect failed');
        });
        ctx.afterCommit(() => {
          order.push('third');
        });
        order.push('work done');
        return 'ok';
      },
      { onEffectError: (error) => errors.push(error) },
    );
    order.push('returned');
    assert.equal(result, 'ok', 'a failing effect does not fail the committed work');
    assert.deepEqual(order, ['work done', 'first', 'failing', 'third', 'returned']);
    assert.deepEqual(seen, [5], 'the effect saw the committed row from another connection');
    assert.equal(errors.length, 1);
    assert.match((errors[0] as Error).message, /effect failed/);
    assert.equal(await committed(12), 5);
  });

  /**
   * Write skew under SERIALIZABLE: both read rows 1 and 2, wait for each other, then each updates
   * its own row. PostgreSQL must fail one with 40001.
   */
  async function writeSkew(retries: number) {
    const bothRead = barrier(2);
    const attempts: Record<1 | 2, number[]> = { 1: [], 2: [] };
    const effects: number[] = [];
    const work = (which: 1 | 2) =>
      withTransaction(
        db,
        async (trx, ctx) => {
          attempts[which].push(ctx.attempt);
          await sql`select sum(value) from tx_rows where id in (1, 2)`.execute(trx);
          ctx.afterCommit(() => {
            effects.push(which);
          });
          if (ctx.attempt === 1) await bothRead();
          await sql`update tx_rows set value = value + 1 where id = ${which}`.execute(trx);
          return ctx.attempt;
        },
        { isolation: 'serializable', retries, baseDelayMs: 5 },
      );
    const results = await Promise.allSettled([work(1), work(2)]);
    return { results, attempts, effects };
  }

  test('a real serialization failure (40001) is retried and both transactions commit', async () => {
    const { results, attempts, effects } = await writeSkew(3);
    const values = results.map((r) => {
      assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
      return r.value;
    });
    assert.ok(
      values.some((attempt) => attempt > 1),
      `one of them was retried: ${JSON.stringify(attempts)}`,
    );
    assert.deepEqual([...effects].sort(), [1, 2], 'each effect once; none from the failed attempt');
    assert.equal(await committed(1), 101);
    assert.equal(await committed(2), 101);
  });

  test('with retries: 0 the serialization failure surfaces', async () => {
    const { results, attempts, effects } = await writeSkew(0);
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.equal(rejected.length, 1, JSON.stringify(results));
    assert.equal(codeOf(rejected[0]?.reason), '40001');
    assert.deepEqual(attempts, { 1: [1], 2: [1] });
    assert.equal(effects.length, 1, 'only the committed one ran its effect');
    assert.deepEqual([await committed(1), await committed(2)].sort(), [100, 101]);
  });

  /** Two transactions lock rows 1 and 2 in opposite orders: a deadlock PostgreSQL breaks with 40P01. */
  async function deadlock(retries: number) {
    const bothLocked = barrier(2);
    const attempts: number[][] = [[], []];
    const work = (index: 0 | 1, first: number, second: number) =>
      withTransaction(
        db,
        async (trx, ctx) => {
          attempts[index]?.push(ctx.attempt);
          await sql`update tx_rows set value = value + 1 where id = ${first}`.execute(trx);
          if (ctx.attempt === 1) await bothLocked();
          await sql`update tx_rows set value = value + 1 where id = ${second}`.execute(trx);
          return ctx.attempt;
        },
        { retries, baseDelayMs: 5 },
      );
    const results = await Promise.allSettled([work(0, 1, 2), work(1, 2, 1)]);
    return { results, attempts };
  }

  test('a real deadlock (40P01) is retried and both transactions commit', async () => {
    const { results, attempts } = await deadlock(3);
    for (const r of results)
      assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    assert.ok(
      attempts.some((a) => a.length > 1),
      `the deadlock victim was retried: ${JSON.stringify(attempts)}`,
    );
    assert.equal(await committed(1), 102);
    assert.equal(await committed(2), 102);
  });

  test('with retries: 0 the deadlock surfaces', async () => {
    const { results, attempts } = await deadlock(0);
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.equal(rejected.length, 1, JSON.stringify(results));
    assert.equal(codeOf(rejected[0]?.reason), '40P01');
    assert.deepEqual(attempts, [[1], [1]]);
    assert.equal(await committed(1), 101, 'only the survivor committed');
    assert.equal(await committed(2), 101);
  });

  test('a non-retryable error (unique violation) is not retried', async () => {
    const attempts: number[] = [];
    await assert.rejects(
      withTransaction(
        db,
        async (trx, ctx) => {
          attempts.push(ctx.attempt);
          await sql`insert into tx_rows (id, value) values (1, 0)`.execute(trx);
        },
        { retries: 5, baseDelayMs: 1 },
      ),
      (error: unknown) => codeOf(error) === '23505',
    );
    assert.deepEqual(attempts, [1]);
  });

  test('retries back off exponentially with full jitter, then the error surfaces', async (t) => {
    const attempt = async (code: string, random: number, retries: number, base: number) => {
      t.mock.method(Math, 'random', () => random);
      const times: number[] = [];
      const failure = Object.assign(new Error(`simulated ${code}`), { code });
      await assert.rejects(
        withTransaction(
          db,
          async () => {
            times.push(performance.now());
            throw failure;
          },
          { retries, baseDelayMs: base },
        ),
        (error: unknown) => error === failure,
      );
      t.mock.restoreAll();
      return times.slice(1).map((at, i) => at - (times[i] as number));
    };

    // The largest jitter: each wait is close to base * 2^(n-1).
    const slow = await attempt('40001', 0.999, 3, 40);
    assert.equal(slow.length, 3, 'three retries after the first attempt');
    [40, 80, 160].forEach((full, i) => {
      const gap = slow[i] as number;
      assert.ok(gap >= full * 0.999 - 2, `retry ${i + 1} waited ${gap}ms, expected ~${full}ms`);
      assert.ok(gap < full + 150, `retry ${i + 1} waited ${gap}ms, expected ~${full}ms`);
    });
    // No jitter left: the waits shrink to nothing, so the delay is random * backoff.
    const fast = await attempt('40P01', 0, 2, 300);
    assert.equal(fast.length, 2, 'deadlocks are retried too');
    assert.ok(
      fast.every((gap) => gap < 150),
      `zero jitter waits almost nothing: ${fast.join(', ')}`,
    );
  });
});
