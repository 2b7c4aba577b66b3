import { sql, type Kysely } from 'kysely';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { newId, softDelete, tablesOf, type AnyDb } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createWidgetsTable, type WidgetsDB } from '../helpers/widgets-app.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds in a UUID v7's first 48 bits. */
function v7Millis(id: string): number {
  return parseInt(id.replaceAll('-', '').slice(0, 12), 16);
}

describe('schema conventions', () => {
  let tdb: TestDatabase;
  let db: Kysely<WidgetsDB>;
  let raw: AnyDb;

  before(async () => {
    tdb = await createTestDatabase();
    db = tablesOf<WidgetsDB>(tdb.database.db); // a view of the test database with only widgets
    raw = db;
    await createWidgetsTable(raw);
  });
  after(() => tdb?.drop());

  async function insert(name = 'w'): Promise<string> {
    const id = newId();
    await db.insertInto('widgets').values({ id, name, status: 'active', price: 1 }).execute();
    return id;
  }

  /** Timestamps as microseconds since the epoch, which JS Dates would round to milliseconds. */
  async function stamps(id: string) {
    const { rows } = await sql<{
      created: string;
      updated: string;
      deleted: string | null;
    }>`select (extract(epoch from created_at) * 1000000)::bigint::text as created,
              (extract(epoch from updated_at) * 1000000)::bigint::text as updated,
              (extract(epoch from deleted_at) * 1000000)::bigint::text as deleted
         from widgets where id = ${id}`.execute(db);
    const row = rows[0];
    assert.ok(row, `row ${id} exists`);
    return {
      created: BigInt(row.created),
      updated: BigInt(row.updated),
      deleted: row.deleted === null ? null : BigInt(row.deleted),
    };
  }

  test('newId() makes UUID v7s carrying the current time', () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    assert.match(id, UUID_V7);
    assert.ok(v7Millis(id) >= before && v7Millis(id) <= after, 'the time in the id is now');
  });

  test('ids are unique and ordered by creation, within and across milliseconds', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) ids.push(newId());
    await sleep(3);
    ids.push(newId());
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.every((id) => UUID_V7.test(id)));
    assert.deepEqual([...ids].sort(), ids, 'string order is creation order');
    assert.ok(v7Millis(ids.at(-1) as string) > v7Millis(ids[0] as string));
  });

  test('PostgreSQL orders the ids by creation too (uuid comparison)', async () => {
    const ids = Array.from({ length: 300 }, () => newId());
    const shuffled = [...ids].reverse();
    const { rows } = await sql<{
      id: string;
    }>`select id from unnest(${shuffled}::uuid[]) as t(id) order by id`.execute(raw);
    assert.deepEqual(
      rows.map((r) => r.id),
      ids,
    );
  });

  test('the columns follow the conventions: uuid id, timestamptz times, nullable deleted_at', async () => {
    const { rows } = await sql<{
      column_name: string;
      data_type: string;
      is_nullable: string;
    }>`select column_name, data_type, is_nullable from information_schema.columns
        where table_name = 'widgets' and column_name in ('id', 'created_at', 'updated_at', 'deleted_at')
        order by column_name`.execute(raw);
    assert.deepEqual(rows, [
      { column_name: 'created_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'deleted_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
      { column_name: 'id', data_type: 'uuid', is_nullable: 'NO' },
      { column_name: 'updated_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
    const { rows: pk } = await sql<{
      def: string;
    }>`select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'widgets'::regclass and contype = 'p'`.execute(
      raw,
    );
    assert.deepEqual(pk, [{ def: 'PRIMARY KEY (id)' }]);
  });

  test('created_at and updated_at are set on insert', async () => {
    const { rows: now } = await sql<{
      now: string;
    }>`select (extract(epoch from now()) * 1000000)::bigint::text as now`.execute(raw);
    const dbNow = BigInt(now[0]?.now ?? '0');
    const id = await insert();
    const t = await stamps(id);
    assert.equal(t.updated, t.created, 'both are the insert time');
    assert.ok(t.created >= dbNow && t.created - dbNow < 10_000_000n, 'created just now');
    assert.equal(t.deleted, null);
  });

  test('updated_at changes on every update; created_at never does', async () => {
    const id = await insert();
    const first = await stamps(id);
    let previous = first.updated;
    for (let i = 0; i < 3; i++) {
      await sleep(2);
      await db
        .updateTable('widgets')
        .set({ price: i + 10 })
        .where('id', '=', id)
        .execute();
      const t = await stamps(id);
      assert.ok(t.updated > previous, `update ${i + 1} moves updated_at`);
      assert.equal(t.created, first.created, 'created_at is untouched');
      previous = t.updated;
    }
    // Even an update that changes nothing, or tries to set updated_at, gets the current time.
    await sleep(2);
    await db
      .updateTable('widgets')
      .set({ updated_at: '2000-01-01T00:00:00Z' })
      .where('id', '=', id)
      .execute();
    const forced = await stamps(id);
    assert.ok(forced.updated > previous, 'the trigger overrides a client-set updated_at');
    await sleep(2);
    await sql`update widgets set name = name where id = ${id}`.execute(raw);
    assert.ok((await stamps(id)).updated > forced.updated, 'a no-op update still counts');
    assert.equal((await stamps(id)).created, first.created);
  });

  test('updated_at is per row: an update leaves other rows alone', async () => {
    const a = await insert('a');
    const b = await insert('b');
    const bBefore = await stamps(b);
    await sleep(2);
    await db.updateTable('widgets').set({ price: 99 }).where('id', '=', a).execute();
    assert.deepEqual(await stamps(b), bBefore);
    assert.ok((await stamps(a)).updated > bBefore.updated);
  });

  test('softDelete.remove marks the row, once; restore brings it back, once', async () => {
    const id = await insert();
    const other = await insert();

    assert.equal(await softDelete.remove(raw, 'widgets', id), true);
    const removed = await stamps(id);
    assert.notEqual(removed.deleted, null, 'deleted_at is set');
    assert.equal(await softDelete.remove(raw, 'widgets', id), false, 'removing twice is false');
    assert.equal((await stamps(id)).deleted, removed.deleted, 'the second remove changes nothing');
    assert.equal((await stamps(other)).deleted, null, 'other rows are untouched');
    assert.equal(await softDelete.remove(raw, 'widgets', newId()), false, 'no such row');

    assert.equal(await softDelete.restore(raw, 'widgets', id), true);
    assert.equal((await stamps(id)).deleted, null);
    assert.equal(await softDelete.restore(raw, 'widgets', id), false, 'nothing to restore');
    assert.equal(await softDelete.restore(raw, 'widgets', other), false, 'never deleted');
    assert.equal(await softDelete.restore(raw, 'widgets', newId()), false, 'no such row');

    assert.equal(await softDelete.remove(raw, 'widgets', id), true, 'a restored row can go again');
  });

  test('softDelete.purge deletes only the rows soft-deleted before the date', async () => {
    await sql`delete from widgets`.execute(raw);
    const oldest = await insert('oldest');
    const older = await insert('older');
    const recent = await insert('recent');
    await insert('alive');
    const set = (id: string, at: string) =>
      db.updateTable('widgets').set({ deleted_at: at }).where('id', '=', id).execute();
    await set(oldest, '2026-01-01T00:00:00Z');
    await set(older, '2026-01-31T23:59:59.999999Z');
    await set(recent, '2026-02-01T00:00:00Z');

    const remaining = async () =>
      (await db.selectFrom('widgets').select('name').orderBy('name').execute()).map((r) => r.name);

    assert.equal(await softDelete.purge(raw, 'widgets', new Date('2026-02-01T00:00:00Z')), 2);
    assert.deepEqual(await remaining(), ['alive', 'recent'], 'deleted at the date is kept');
    assert.equal(await softDelete.purge(raw, 'widgets', new Date('2026-02-01T00:00:00Z')), 0);
    assert.equal(await softDelete.purge(raw, 'widgets', new Date('2100-01-01T00:00:00Z')), 1);
    assert.deepEqual(await remaining(), ['alive'], 'rows never deleted are never purged');
    assert.equal(await softDelete.restore(raw, 'widgets', recent), false, 'purged rows are gone');
  });
});
