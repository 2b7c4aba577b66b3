// Named prepared statements for the hot listings (platform/db/prepared.ts): what is named, the
// per-connection bound, statements made stale by DDL, and a dataset re-imported while its rows
// listing runs.
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  MAX_PREPARED_PER_CONNECTION,
  executePrepared,
  paginate,
  parseListQuery,
  preparedName,
  preparedSql,
  tablesOf,
  withTransaction,
  type AnyDb,
  type ListSpec,
} from '../../src/platform/db/index.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { publish, read, startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

interface T {
  prep_item: { id: number; name: string; price: number };
}

/** The gw_ statements prepared on the connection running `db`'s next statement. */
async function namedOn(db: AnyDb): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select name from pg_prepared_statements where name like 'gw\\_%' order by name`.execute(db);
  return rows.map((r) => r.name);
}

describe('named prepared statements', () => {
  let tdb: TestDatabase;
  let db: Kysely<T>;
  before(async () => {
    tdb = await createTestDatabase();
    db = tablesOf<T>(tdb.database.db);
    await sql`create table prep_item (id int primary key, name text not null, price int not null)`.execute(
      db,
    );
    await sql`insert into prep_item select g, 'item ' || g, g * 10 from generate_series(1, 50) g`.execute(
      db,
    );
  });
  after(async () => {
    await tdb?.drop();
  });

  test('a marked query runs as one named statement per shape; unmarked ones stay unnamed', async () => {
    await db.connection().execute(async (conn) => {
      const query = (min: number) =>
        conn.selectFrom('prep_item').select(['id', 'name']).where('price', '>=', min).orderBy('id');
      const name = preparedName(query(0).compile().sql);
      const first = await executePrepared(conn, query(100));
      const second = await executePrepared(conn, query(480));
      assert.equal(first.rows.length, 41);
      assert.deepEqual(
        second.rows.map((r) => r.id),
        [48, 49, 50],
      );
      // Unmarked, as every other statement of the platform: nothing more is prepared.
      await query(10).execute();
      assert.deepEqual(await namedOn(conn), [name]);
      const [statement] = (
        await sql<{ statement: string }>`select statement from pg_prepared_statements
          where name = ${name}`.execute(conn)
      ).rows;
      assert.match(statement?.statement ?? '', /prep_item/);
    });
  });

  test('pool.query with a marked text (callback form) is named too', async () => {
    const client = await tdb.database.pool.connect();
    try {
      const text = 'select count(*)::int as n from prep_item where price > $1';
      const res = await new Promise<{ rows: { n: number }[] }>((resolve, reject) => {
        client.query(preparedSql(text), [250], (error, result) => {
          if (error) reject(error);
          else resolve(result as never);
        });
      });
      assert.equal(res.rows[0]?.n, 25);
      const { rows } = await client.query<{ name: string }>(
        'select name from pg_prepared_statements where name = $1',
        [preparedName(text)],
      );
      assert.equal(rows.length, 1);
    } finally {
      client.release();
    }
  });

  test('a table replaced with other columns: no "cached plan must not change result type" outside a transaction', async () => {
    await sql`create table prep_swap (a int)`.execute(db);
    await sql`insert into prep_swap values (1)`.execute(db);
    await db.connection().execute(async (conn) => {
      const read = () =>
        executePrepared(conn, sql<Record<string, unknown>>`select * from prep_swap where 1 = ${1}`);
      assert.deepEqual((await read()).rows, [{ a: 1 }]);
      await sql`drop table prep_swap`.execute(conn);
      await sql`create table prep_swap (a text, b int)`.execute(conn);
      await sql`insert into prep_swap values ('x', 2)`.execute(conn);
      // The statement's result type changed: PostgreSQL refuses the prepared one (0A000); it is
      // read again unnamed, and unnamed from then on on this connection.
      assert.deepEqual((await read()).rows, [{ a: 'x', b: 2 }]);
      assert.deepEqual((await read()).rows, [{ a: 'x', b: 2 }]);
      // In a transaction the error is the caller's (it aborted the transaction): shown on a fresh
      // statement name, prepared and then made stale inside one.
      await sql`create table prep_swap2 (a int)`.execute(conn);
      const read2 = () =>
        executePrepared(
          conn,
          sql<Record<string, unknown>>`select * from prep_swap2 where 2 = ${2}`,
        );
      await read2();
      await sql`begin`.execute(conn);
      try {
        await sql`drop table prep_swap2`.execute(conn);
        await sql`create table prep_swap2 (b text)`.execute(conn);
        await assert.rejects(read2(), { code: '0A000' });
      } finally {
        await sql`rollback`.execute(conn);
      }
      assert.deepEqual((await read2()).rows, []);
    });
  });

  test('a write made stale in a transaction: withTransaction runs the unit of work again, unnamed, and it commits', async () => {
    // One connection, so the retry meets the connection that holds the stale statement.
    const one = await createTestDatabase({
      migrated: false,
      config: testConfig({ DATABASE_POOL_MAX: '1' }),
    });
    try {
      const odb = one.database.db;
      await sql`create table prep_stale (id int primary key, note text)`.execute(odb);
      const write = (trx: AnyDb, id: number) =>
        executePrepared(
          trx,
          sql<Record<string, unknown>>`insert into prep_stale (id) values (${id}) returning *`,
        );
      await withTransaction(odb, (trx) => write(trx, 1));
      assert.deepEqual(
        (await namedOn(odb)).length,
        1,
        'the insert is a named statement on the connection',
      );
      // Its result type changes under it (a column added: `returning *` answers another shape).
      await sql`alter table prep_stale add column extra int`.execute(odb);
      const attempts: number[] = [];
      const rows = await withTransaction(odb, async (trx, ctx) => {
        attempts.push(ctx.attempt);
        return (await write(trx, 2)).rows;
      });
      assert.deepEqual(attempts, [1, 2], 'the first attempt met the stale statement');
      assert.deepEqual(rows, [{ id: 2, note: null, extra: null }]);
      const { rows: stored } = await sql<{
        id: number;
      }>`select id from prep_stale order by id`.execute(odb);
      assert.deepEqual(
        stored.map((r) => r.id),
        [1, 2],
        'written once: the failed attempt rolled back',
      );
    } finally {
      await one.drop();
    }
  });

  test('named statements run in transactions like any other', async () => {
    const rows = await withTransaction(db, async (trx) => {
      await sql`insert into prep_item values (51, 'new', 510)`.execute(trx);
      const q = trx.selectFrom('prep_item').select('id').where('price', '>', 500);
      return (await executePrepared(trx, q)).rows;
    });
    assert.deepEqual(rows, [{ id: 51 }]);
  });

  test('paginate({ prepared: true }) names its keyset pages and answers the same pages', async () => {
    const spec: ListSpec = {
      name: 'prep-items',
      sorts: { price: 'price', name: 'name' },
      defaultSort: '-price',
    };
    const paging = { secret: 'x'.repeat(40), estimateAbove: 1_000_000 };
    await db.connection().execute(async (conn) => {
      const walk = async (prepared: boolean) => {
        const ids: unknown[] = [];
        let cursor: string | null = null;
        for (let i = 0; i < 20; i++) {
          const list = parseListQuery(spec, { limit: '7', ...(cursor ? { cursor } : {}) });
          const base = conn.selectFrom('prep_item').select(['id', 'name']);
          const page = await paginate(conn, spec, list, base, { ...paging, prepared });
          ids.push(...page.items.map((r) => r.id));
          cursor = page.page.nextCursor;
          if (cursor === null) break;
        }
        return ids;
      };
      const before = (await namedOn(conn)).length;
      const unnamed = await walk(false);
      assert.equal((await namedOn(conn)).length, before);
      const named = await walk(true);
      assert.deepEqual(named, unnamed);
      assert.equal(named.length, 51);
      // The first page and the later pages: two shapes.
      assert.equal((await namedOn(conn)).length, before + 2);
    });
  });

  // Last: it fills its connection up to the bound.
  test(`each connection names at most ${String(MAX_PREPARED_PER_CONNECTION)} statements; further shapes run unnamed`, async () => {
    await db.connection().execute(async (conn) => {
      const before = (await namedOn(conn)).length;
      const extra = 5;
      for (let i = 0; i < MAX_PREPARED_PER_CONNECTION + extra; i++) {
        // A distinct shape per i (the alias is in the text).
        const q = sql<{ n: number }>`select count(*)::int as ${sql.ref(`n${String(i)}`)}
          from prep_item where price > ${i}`;
        const res = await executePrepared(conn, q);
        assert.equal(Object.values(res.rows[0] ?? {})[0], 51 - Math.floor(i / 10));
      }
      const named = (await namedOn(conn)).length;
      assert.ok(before <= MAX_PREPARED_PER_CONNECTION);
      assert.equal(named, MAX_PREPARED_PER_CONNECTION);
    });
  });

  describe("the pool's client answers promise-form calls through pg's callback form", () => {
    // What reaches pg.Client.prototype.query (looked up at each call, so a wrapper sees it).
    async function callsSeen<R>(
      run: (client: pg.PoolClient) => Promise<R>,
    ): Promise<{ result: R; withCallback: boolean[] }> {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- restored as it was below
      const original = pg.Client.prototype.query;
      const withCallback: boolean[] = [];
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        withCallback.push(typeof args[2] === 'function');
        return Reflect.apply(original, this, args) as unknown;
      } as typeof original;
      const client = await tdb.database.pool.connect();
      try {
        return { result: await run(client), withCallback };
      } finally {
        pg.Client.prototype.query = original;
        client.release();
      }
    }

    test('a text with values answers its rows, and pg was called with a callback', async () => {
      const { result, withCallback } = await callsSeen((client) =>
        client.query<{ n: number }>('select $1::int + 1 as n', [40]),
      );
      assert.equal(result.rows[0]?.n, 41);
      assert.deepEqual(withCallback, [true]);
    });

    test('a marked text runs named through the callback form too', async () => {
      const text = preparedSql('select max(price)::int as top from prep_item where id < $1');
      const { result, withCallback } = await callsSeen((client) =>
        client.query<{ top: number }>(text, [10]),
      );
      assert.equal(result.rows[0]?.top, 90);
      assert.deepEqual(withCallback, [true]);
    });

    test("a failing statement rejects with pg's error, its stack leading back to the caller", async () => {
      async function readsAMissingTable(client: pg.PoolClient) {
        return await client.query('select * from no_such_table where id = $1', [1]);
      }
      const { withCallback } = await callsSeen(async (client) => {
        await assert.rejects(readsAMissingTable(client), (error: Error & { code?: string }) => {
          assert.equal(error.code, '42P01');
          assert.match(error.stack ?? '', /readsAMissingTable/);
          return true;
        });
      });
      assert.deepEqual(withCallback, [true]);
    });

    test('a config object is answered and left as it was given (no callback written into it)', async () => {
      const config = { text: 'select name from prep_item where id = $1', values: [7] };
      const { result } = await callsSeen((client) => client.query<{ name: string }>(config));
      assert.equal(result.rows[0]?.name, 'item 7');
      assert.deepEqual(Object.keys(config), ['text', 'values']);
    });

    test('calls with their own callback, and submittables, go to pg as they are', async () => {
      const { result, withCallback } = await callsSeen(async (client) => {
        const viaCallback = await new Promise<number>((resolve, reject) => {
          client.query<{ n: number }>('select 2 + $1::int as n', [3], (error, res) => {
            if (error) reject(error);
            else resolve(res.rows[0]?.n ?? -1);
          });
        });
        const submittable = new pg.Query('select 1 as one');
        const returned = client.query(submittable);
        const rows = await new Promise<unknown[]>((resolve, reject) => {
          const seen: unknown[] = [];
          submittable.on('row', (row: unknown) => seen.push(row));
          submittable.on('end', () => resolve(seen));
          submittable.on('error', reject);
        });
        return { viaCallback, same: returned === submittable, rows };
      });
      assert.equal(result.viaCallback, 5);
      assert.equal(result.same, true);
      assert.deepEqual(result.rows, [{ one: 1 }]);
      // The callback call reached pg with its own callback; the submittable with none.
      assert.deepEqual(withCallback, [true, false]);
    });
  });
});

describe('a dataset re-imported while its rows listing runs', () => {
  let h: PublicDataHarness;
  before(async () => {
    h = await startPublicData({ PUBLIC_DATA_KEEP_VERSIONS: '1' });
  });
  after(async () => {
    await h?.close();
  });

  test('every read answers 200 with one version’s rows, through three swaps (columns change type)', async () => {
    const slug = 'swapping';
    const v1 = await publish(h, slug, 'n,label\n1,a\n2,b\n3,c\n');
    assert.equal(v1.status, 'ready');
    let stop = false;
    const seen = new Set<number>();
    const failures: string[] = [];
    const reader = async () => {
      const urls = [
        `/datasets/${slug}/rows?limit=2`,
        `/datasets/${slug}/rows?sort=-n&limit=2`,
        `/datasets/${slug}/rows?n=1&limit=5`,
      ];
      for (let i = 0; !stop; i++) {
        const res = await read(h, urls[i % urls.length] ?? '');
        if (res.statusCode !== 200) failures.push(`${String(res.statusCode)} ${res.body}`);
        else seen.add(res.json<{ version: number }>().version);
      }
    };
    const readers = Array.from({ length: 4 }, reader);
    try {
      // Version 2: `n` becomes text, `label` goes; version 3: `n` a number again, another column.
      assert.equal((await publish(h, slug, 'n,extra\nx,1\ny,2\n')).status, 'ready');
      assert.equal((await publish(h, slug, 'n,other\n5,true\n6,false\n7,true\n')).status, 'ready');
      assert.equal((await publish(h, slug, 'n\n8\n9\n')).status, 'ready');
    } finally {
      stop = true;
      await Promise.all(readers);
    }
    assert.deepEqual(failures, []);
    assert.ok(seen.has(4), `the last version was read: ${JSON.stringify([...seen])}`);
    const last = await read(h, `/datasets/${slug}/rows?sort=n&limit=5`);
    assert.deepEqual(last.json<{ items: unknown[] }>().items, [{ n: 8 }, { n: 9 }]);
  });
});
