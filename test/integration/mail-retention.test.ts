import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { MAIL_RETENTION_DAYS, purgeMailDeliveries } from '../../src/platform/mail/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('mail delivery retention', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  const insert = async (status: string, daysAgo: number) => {
    const id = randomUUID();
    await tdb.database.pool.query(
      `insert into gw_mail_delivery (id, template, locale, recipient, status, created_at, updated_at)
       values ($1, 'notification', 'en', 'a@example.com', $2, now() - make_interval(days => $3), now())`,
      [id, status, daysAgo],
    );
    return id;
  };

  test('the daily purge removes settled records older than the retention, and only those', async () => {
    const old = MAIL_RETENTION_DAYS + 1;
    const oldSent = await insert('sent', old);
    const oldFailed = await insert('failed', old);
    const oldQueued = await insert('queued', old);
    const recent = await insert('sent', MAIL_RETENTION_DAYS - 1);
    const result = await purgeMailDeliveries.handler({}, {
      db: tdb.database.db,
      log: pino({ level: 'silent' }),
    } as unknown as JobContext);
    assert.equal(result.deleted, 2);
    const { rows } = await tdb.database.pool.query<{ id: string }>(
      'select id from gw_mail_delivery',
    );
    const left = new Set(rows.map((r) => r.id));
    assert.ok(!left.has(oldSent) && !left.has(oldFailed));
    assert.ok(left.has(oldQueued), 'a message still queued is kept');
    assert.ok(left.has(recent));
    // The purge is served by its partial index (seq scans off: the table is tiny here).
    const client = await tdb.database.pool.connect();
    try {
      await client.query('begin');
      await client.query('set local enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `explain delete from gw_mail_delivery where status <> 'queued' and created_at < now() - interval '90 days'`,
      );
      await client.query('rollback');
      assert.match(
        plan.rows.map((r) => r['QUERY PLAN']).join('\n'),
        /gw_mail_delivery_created_idx/,
      );
    } finally {
      client.release();
    }
    assert.equal(purgeMailDeliveries.options.cron?.expression, '41 3 * * *');
  });
});
