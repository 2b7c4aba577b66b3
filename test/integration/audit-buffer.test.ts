import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { AuditBuffer, verifyAuditChain } from '../../src/platform/audit/index.ts';
import { Lifecycle } from '../../src/platform/lifecycle/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const logger = pino({ level: 'silent' });

async function countOf(tdb: TestDatabase, prefix: string): Promise<number> {
  const { rows } = await tdb.database.pool.query<{ n: number }>(
    `select count(*)::int as n from gw_audit_event where subject_id like $1`,
    [`${prefix}%`],
  );
  return rows[0]?.n ?? 0;
}

async function dropped(metrics: Registry, reason: string): Promise<number> {
  const metric = await metrics.getSingleMetric('audit_events_dropped_total')?.get();
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

const access = (subjectId: string) => ({
  action: 'admin.user.read',
  actorId: null,
  subjectType: 'user',
  subjectId,
});

describe('audit: the data-access buffer (platform.audit.recordAccess)', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  test('a full batch is written at once; the rest after the interval, stamped when recorded', async () => {
    const buffer = new AuditBuffer({
      db: tdb.database.db,
      logger,
      batchSize: 10,
      intervalMs: 200,
    });
    const at = Date.now();
    for (let i = 0; i < 10; i++) assert.equal(buffer.recordAccess(access(`batch-${i}`)), true);
    // recordAccess never waits: it returned with the batch still queued (the write starts on the
    // next turn of the event loop). Checked here, not by counting rows: a count sent now raced
    // the write, which a fast machine finished first (CI saw 10 rows).
    assert.equal(buffer.pending, 10);
    await sleep(100);
    assert.equal(await countOf(tdb, 'batch-'), 10, 'the full batch, at once');
    for (let i = 10; i < 13; i++) buffer.recordAccess(access(`batch-${i}`));
    await sleep(50);
    assert.equal(await countOf(tdb, 'batch-'), 10, 'a partial batch waits');
    assert.equal(buffer.pending, 3);
    await sleep(300);
    assert.equal(await countOf(tdb, 'batch-'), 13, 'the rest, after the interval');
    assert.equal(buffer.pending, 0);
    const { rows } = await tdb.database.pool.query<{ t: Date }>(
      `select min(occurred_at) as t from gw_audit_event where subject_id like 'batch-%'`,
    );
    assert.ok(Math.abs((rows[0]?.t.getTime() ?? 0) - at) < 1_000, 'stamped when recorded');
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
    await buffer.close();
  });

  test('when full, events are dropped and counted in audit_events_dropped_total', async () => {
    const metrics = new Registry();
    const buffer = new AuditBuffer({
      db: tdb.database.db,
      logger,
      metrics,
      capacity: 5,
      batchSize: 100,
      intervalMs: 60_000,
    });
    const series = (await metrics.getSingleMetric('audit_events_dropped_total')?.get())?.values;
    assert.deepEqual(
      series?.map((v) => [v.labels.reason, v.value]).sort(),
      [
        ['error', 0],
        ['overflow', 0],
      ],
      'both series exist from the start, at 0',
    );
    const kept = Array.from({ length: 8 }, (_, i) => buffer.recordAccess(access(`full-${i}`)));
    assert.deepEqual(kept, [true, true, true, true, true, false, false, false]);
    assert.equal(buffer.pending, 5);
    assert.equal(buffer.dropped, 3);
    assert.equal(await dropped(metrics, 'overflow'), 3);
    await buffer.flush();
    assert.equal(await countOf(tdb, 'full-'), 5);
    // Room again once written.
    assert.equal(buffer.recordAccess(access('full-again')), true);
    await buffer.close();
    assert.equal(await countOf(tdb, 'full-again'), 1);
    // Closed: refused and counted.
    assert.equal(buffer.recordAccess(access('full-closed')), false);
    assert.equal(await dropped(metrics, 'overflow'), 4);
  });

  test('an invalid event is refused alone; a batch the database refuses is dropped and counted; recording goes on', async () => {
    const metrics = new Registry();
    const buffer = new AuditBuffer({ db: tdb.database.db, logger, metrics, intervalMs: 60_000 });
    // Refused at once, alone: the events around it are written.
    assert.equal(buffer.recordAccess({ action: 'Not A Valid Action' }), false);
    buffer.recordAccess(access('beside-invalid'));
    await buffer.flush();
    assert.equal(await dropped(metrics, 'error'), 1);
    assert.equal(await countOf(tdb, 'beside-invalid'), 1);
    // A batch the database refuses (an actor id that is not a uuid): all of it is dropped.
    buffer.recordAccess({ ...access('refused'), actorId: 'not-a-uuid' });
    buffer.recordAccess(access('refused-too'));
    await buffer.flush();
    assert.equal(await dropped(metrics, 'error'), 3, 'the whole refused batch');
    buffer.recordAccess(access('after-error'));
    await buffer.close();
    assert.equal(await countOf(tdb, 'after-error'), 1);
  });

  test('the platform writes what waits when shutdown begins, and on close', async () => {
    const config = testConfig();
    const lifecycle = new Lifecycle();
    const platform = await createPlatform(config, {
      logger,
      lifecycle,
      database: tdb.database,
      connect: false,
      redis: null,
    });
    for (let i = 0; i < 7; i++) platform.audit.recordAccess(access(`shutdown-${i}`));
    assert.equal(await countOf(tdb, 'shutdown-'), 0, 'waiting for the interval');
    lifecycle.beginShutdown();
    await sleep(200);
    assert.equal(await countOf(tdb, 'shutdown-'), 7, 'written when shutdown began');
    platform.audit.recordAccess(access('late-0'));
    await platform.close();
    assert.equal(await countOf(tdb, 'late-'), 1, 'written on close');
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });
});
