import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { describe, test } from 'node:test';
import { allMigrations } from '../../src/migrations/index.ts';
import {
  mergeMigrations,
  migrateToLatest,
  migrationStatus,
  rollback,
  type MigrationSet,
  type AnyDb,
} from '../../src/platform/db/index.ts';
import { createTestDatabase } from '../helpers/db.ts';

/** Migrations of a pretend app, to exercise a history longer than the platform's own. */
const sample: MigrationSet = {
  '209901010100_sample_notes': {
    async up(db) {
      await db.schema
        .createTable('sample_notes')
        .addColumn('id', 'uuid', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createIndex('sample_notes_created_at_idx')
        .on('sample_notes')
        .column('created_at')
        .execute();
      await sql`create trigger sample_notes_set_updated_at before update on sample_notes for each row execute function gw_set_updated_at()`.execute(
        db,
      );
    },
    async down(db) {
      await db.schema.dropTable('sample_notes').execute();
    },
  },
  '209901010101_sample_tags': {
    async up(db) {
      await db.schema
        .alterTable('sample_notes')
        .addColumn('tags', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
        .execute();
      await db.schema
        .createIndex('sample_notes_tags_idx')
        .on('sample_notes')
        .using('gin')
        .column('tags')
        .execute();
    },
    async down(db) {
      await db.schema.alterTable('sample_notes').dropColumn('tags').execute();
    },
  },
};

/** Everything the catalog says about the public schema, in a stable order. */
async function catalog(db: AnyDb): Promise<string> {
  const parts = await Promise.all([
    sql`select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = 'public' and table_name not like 'kysely_%' order by 1, 2`.execute(
      db,
    ),
    sql`select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' and tablename not like 'kysely_%' order by 1, 2`.execute(
      db,
    ),
    sql`select conrelid::regclass::text as tbl, conname, pg_get_constraintdef(oid) as def from pg_constraint where connamespace = 'public'::regnamespace and conrelid::regclass::text not like 'kysely_%' order by 1, 2`.execute(
      db,
    ),
    sql`select tgrelid::regclass::text as tbl, tgname, pg_get_triggerdef(oid) as def from pg_trigger where not tgisinternal order by 1, 2`.execute(
      db,
    ),
    sql`select proname, pg_get_functiondef(p.oid) as def from pg_proc p where pronamespace = 'public'::regnamespace order by 1`.execute(
      db,
    ),
  ]);
  return JSON.stringify(parts.map((p) => p.rows));
}

describe('migrations', () => {
  const migrations = mergeMigrations(allMigrations([]), sample);

  test('up, down to zero and up again leave an identical schema', async (t) => {
    const tdb = await createTestDatabase({ migrated: false });
    t.after(() => tdb.drop());
    const db = tdb.database.db;
    const applied = await migrateToLatest(db, migrations);
    assert.deepEqual(applied, Object.keys(migrations));
    const first = await catalog(db);
    assert.match(first, /sample_notes_tags_idx/);
    assert.match(first, /gw_set_updated_at/);

    const undone = await rollback(db, migrations, 'all');
    assert.deepEqual(undone, Object.keys(migrations).reverse());
    const empty = await catalog(db);
    assert.equal(
      empty,
      JSON.stringify([[], [], [], [], []]),
      'nothing is left after rolling back to zero',
    );

    await migrateToLatest(db, migrations);
    assert.equal(await catalog(db), first);
  });

  test('rollback goes one step at a time; status lists applied and pending', async (t) => {
    const tdb = await createTestDatabase({ migrated: false });
    t.after(() => tdb.drop());
    const db = tdb.database.db;
    await migrateToLatest(db, migrations);
    assert.deepEqual(await rollback(db, migrations, 1), ['209901010101_sample_tags']);
    const status = await migrationStatus(db, migrations);
    assert.deepEqual(
      status.map((s) => [s.name, s.executedAt !== null]),
      [
        ...Object.keys(allMigrations([])).map((name) => [name, true]),
        ['209901010100_sample_notes', true],
        ['209901010101_sample_tags', false],
      ],
    );
  });

  test('an app enabled later runs its older migrations; a rollback undoes the latest applied first', async (t) => {
    const tdb = await createTestDatabase({ migrated: false });
    t.after(() => tdb.drop());
    const db = tdb.database.db;
    // A platform migration newer than the app's, applied before the app is enabled.
    const newer: MigrationSet = {
      '209912310100_platform_later': {
        async up(d) {
          await d.schema.createTable('platform_later').addColumn('id', 'integer').execute();
        },
        async down(d) {
          await d.schema.dropTable('platform_later').execute();
        },
      },
    };
    const before = mergeMigrations(allMigrations([]), newer);
    await migrateToLatest(db, before);
    const after = mergeMigrations(before, sample);
    assert.deepEqual(await migrateToLatest(db, after), [
      '209901010100_sample_notes',
      '209901010101_sample_tags',
    ]);
    // The app's tables exist; rolling back one step undoes the app's last, not the newer name.
    assert.deepEqual(await rollback(db, after, 1), ['209901010101_sample_tags']);
    const status = new Map(
      (await migrationStatus(db, after)).map((s) => [s.name, s.executedAt !== null]),
    );
    assert.equal(status.get('209912310100_platform_later'), true);
    assert.equal(status.get('209901010100_sample_notes'), true);
    assert.equal(status.get('209901010101_sample_tags'), false);
  });

  test('concurrent runners apply each migration once', async (t) => {
    const tdb = await createTestDatabase({ migrated: false });
    t.after(() => tdb.drop());
    const db = tdb.database.db;
    const results = await Promise.all([1, 2, 3, 4].map(() => migrateToLatest(db, migrations)));
    const all = results.flat().sort();
    assert.deepEqual(
      all,
      Object.keys(migrations).sort(),
      'each migration applied by exactly one runner',
    );
    const { rows } = await sql<{ n: string }>`select count(*) as n from kysely_migration`.execute(
      db,
    );
    assert.equal(Number(rows[0]?.n), Object.keys(migrations).length);
  });

  test('a failing migration rolls back entirely', async (t) => {
    const tdb = await createTestDatabase({ migrated: false });
    t.after(() => tdb.drop());
    const db = tdb.database.db;
    const broken = mergeMigrations(migrations, {
      '202611220200_sample_broken': {
        async up(d) {
          await d.schema.createTable('half_made').addColumn('id', 'integer').execute();
          await sql`select * from table_that_does_not_exist`.execute(d);
        },
        async down() {},
      },
    });
    await assert.rejects(migrateToLatest(db, broken), /202611220200_sample_broken failed/);
    const { rows } = await sql<{
      n: string;
    }>`select count(*) as n from information_schema.tables where table_name = 'half_made'`.execute(
      db,
    );
    assert.equal(Number(rows[0]?.n), 0);
  });

  test('names must be ordered timestamps and unique; every migration needs a down', () => {
    assert.throws(
      () =>
        mergeMigrations({
          create_users: { up: async () => undefined, down: async () => undefined },
        }),
      /must look like/,
    );
    assert.throws(() => mergeMigrations(sample, sample), /declared twice/);
    assert.throws(
      () => mergeMigrations({ '202611220300_x_y': { up: async () => undefined } }),
      /has no down/,
    );
  });
});
