import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents, recordAudit, recordAudits } from '../../src/platform/audit/index.ts';
import { withTransaction } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('audit trail', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  test('an event is stored with its actor, subject, request facts and data', async () => {
    const actorId = randomUUID();
    await recordAudit(tdb.database.db, {
      action: 'admin.user.lock',
      actorId,
      subjectType: 'user',
      subjectId: 'u-1',
      ip: '203.0.113.9',
      requestId: 'req-1',
      data: { minutes: 15 },
    });
    const [event] = await listAuditEvents(tdb.database.db, { actorId });
    assert.ok(event);
    assert.equal(event.action, 'admin.user.lock');
    assert.equal(event.subjectId, 'u-1');
    assert.equal(event.ip, '203.0.113.9');
    assert.equal(event.requestId, 'req-1');
    assert.deepEqual(event.data, { minutes: 15 });
    assert.ok(event.occurredAt instanceof Date);
  });

  test('written in the transaction of the change: a rollback leaves no event', async () => {
    const actorId = randomUUID();
    await assert.rejects(
      withTransaction(tdb.database.db, async (trx) => {
        await recordAudit(trx, { action: 'auth.password.change', actorId });
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal((await listAuditEvents(tdb.database.db, { actorId })).length, 0);
    await withTransaction(tdb.database.db, (trx) =>
      recordAudits(trx, [
        { action: 'auth.password.change', actorId },
        { action: 'auth.logout-all', actorId },
      ]),
    );
    assert.deepEqual(
      (await listAuditEvents(tdb.database.db, { actorId })).map((e) => e.action).sort(),
      ['auth.logout-all', 'auth.password.change'],
    );
  });

  test('the database refuses UPDATE, DELETE and TRUNCATE of the trail', async () => {
    await recordAudit(tdb.database.db, { action: 'auth.login.success', actorId: randomUUID() });
    for (const statement of [
      `update gw_audit_event set action = 'auth.login.failure'`,
      'delete from gw_audit_event',
      'truncate gw_audit_event',
    ]) {
      await assert.rejects(tdb.database.pool.query(statement), (error: { code?: string }) => {
        assert.equal(error.code, '42501', statement);
        return true;
      });
    }
    const { rows } = await tdb.database.pool.query<{ n: number }>(
      'select count(*)::int as n from gw_audit_event',
    );
    assert.ok(rows[0] && rows[0].n >= 1);
  });

  test('actions are dotted lowercase names: anything else is refused by the database', async () => {
    for (const action of ['login', 'Auth.Login', 'auth..login', "auth.login'; drop"]) {
      await assert.rejects(recordAudit(tdb.database.db, { action }), action);
    }
  });
});
