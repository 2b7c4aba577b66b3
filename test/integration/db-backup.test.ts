/**
 * Backup and restore: a seeded database is dumped (pg_dump, custom format), restored into a new,
 * empty database, and compared table by table (row count and a checksum of every row) — the same
 * check docs/operations.md asks of the monthly restore test. Once through the library functions,
 * once through the real CLI (`npm run db:backup -- <file>`, `node src/main.ts db restore <file>`).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { allMigrations } from '../../src/migrations/index.ts';
import { backupDatabase, restoreDatabase } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI_TIMEOUT_MS = 60_000;

function pgDumpMissing(): string | null {
  try {
    execFileSync('pg_dump', ['--version'], { stdio: 'ignore' });
    execFileSync('pg_restore', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'pg_dump/pg_restore are not installed (Debian: apt-get install postgresql-client)';
  }
}

/** Tables of several types, a standalone sequence, a view, a trigger; thousands of rows. */
async function seed(pool: pg.Pool): Promise<void> {
  await pool.query(`
    create sequence invoice_no_seq start 1000;
    create table authors (
      id bigint generated always as identity primary key,
      name text not null unique,
      bio text,
      joined_at timestamptz not null,
      profile jsonb not null default '{}'
    );
    create table posts (
      id uuid primary key,
      author_id bigint not null references authors (id),
      title text not null,
      tags text[] not null default '{}',
      score numeric(10, 2),
      views integer not null default 0,
      published boolean not null default false,
      published_at timestamptz,
      attributes jsonb,
      digest bytea,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index posts_author_published_idx on posts (author_id, published_at desc);
    create index posts_attributes_idx on posts using gin (attributes);
    create trigger posts_set_updated_at before update on posts
      for each row execute function gw_set_updated_at();
    create table invoices (
      no bigint primary key default nextval('invoice_no_seq'),
      author_id bigint references authors (id) on delete set null,
      amount numeric(12, 2) not null check (amount >= 0),
      issued_on date not null,
      note text
    );
    alter sequence invoice_no_seq owned by invoices.no;
    create view published_posts as select id, author_id, title from posts where published;

    insert into authors (name, bio, joined_at, profile)
    select
      format('Autor %s — Zoë Łukasz 日本語 %s', i, repeat('✓', i % 5)),
      case when i % 7 = 0 then null else format(E'Line one\\nLine "two" with \\'quotes\\' and tab\\t%s', i) end,
      timestamptz '2024-01-01 00:00:00+00' + i * interval '3 hours 17 minutes',
      jsonb_build_object('i', i, 'langs', jsonb_build_array('de', 'ja'), 'emoji', '🦀', 'nested', jsonb_build_object('ok', i % 2 = 0))
    from generate_series(1, 500) as i;

    insert into posts (id, author_id, title, tags, score, views, published, published_at, attributes, digest, created_at, updated_at)
    select
      md5('post' || i)::uuid,
      1 + (i % 500),
      format('Post %s: ünïcödé ✨ %s', i, md5(i::text)),
      array['tag' || (i % 10), 'tag' || (i % 3)],
      case when i % 11 = 0 then null else round((i * 1.37)::numeric % 1000, 2) end,
      i * 13 % 10007,
      i % 4 <> 0,
      case when i % 4 <> 0 then timestamptz '2025-06-01 12:00:00+02' + i * interval '1 minute' end,
      case when i % 5 = 0 then null else jsonb_build_object('words', i * 3, 'draft', i % 4 = 0) end,
      decode(md5(i::text), 'hex'),
      timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second',
      timestamptz '2025-01-01 00:00:00+00' + i * interval '2 seconds'
    from generate_series(1, 5000) as i;

    insert into invoices (author_id, amount, issued_on, note)
    select 1 + (i % 500), (i * 7.25)::numeric(12, 2), date '2025-01-01' + (i % 365), nullif(format('n°%s', i), 'n°13')
    from generate_series(1, 2000) as i;
  `);
}

interface TableSummary {
  rows: number;
  checksum: string;
}

/** Row count and checksum of every table, sequence values, and the schema's indexes and constraints. */
async function summarise(pool: pg.Pool): Promise<{
  tables: Record<string, TableSummary>;
  sequences: Record<string, string | null>;
  schema: string[];
}> {
  const client = await pool.connect();
  try {
    // Rows print the same way in both databases only under the same session settings.
    await client.query("set timezone = 'UTC'; set extra_float_digits = 3; set datestyle = 'ISO'");
    const { rows: names } = await client.query<{ name: string }>(
      "select tablename as name from pg_tables where schemaname = 'public' order by 1",
    );
    const tables: Record<string, TableSummary> = {};
    for (const { name } of names) {
      const { rows } = await client.query<TableSummary>(
        `select count(*)::int as rows, md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as checksum from public."${name}" t`,
      );
      tables[name] = rows[0] as TableSummary;
    }
    const { rows: seqs } = await client.query<{ name: string; last: string | null }>(
      "select sequencename as name, last_value::text as last from pg_sequences where schemaname = 'public' order by 1",
    );
    const { rows: schema } = await client.query<{ def: string }>(`
      select indexdef as def from pg_indexes where schemaname = 'public'
      union all
      select conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        from pg_constraint where connamespace = 'public'::regnamespace
      union all
      select pg_get_triggerdef(oid) from pg_trigger where not tgisinternal
      union all
      select 'view ' || viewname || ': ' || definition from pg_views where schemaname = 'public'
      order by 1`);
    return {
      tables,
      sequences: Object.fromEntries(seqs.map((s) => [s.name, s.last])),
      schema: schema.map((r) => r.def),
    };
  } finally {
    client.release();
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in the project root with `DATABASE_URL` pointing at `url` (no shell). */
function run(
  command: string,
  args: string[],
  url: string,
  extra: NodeJS.ProcessEnv = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, APP_ENV: 'test', DATABASE_URL: url, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: root, env, timeout: CLI_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('backup and restore', async () => {
  const missing = pgDumpMissing();
  const dir = mkdtempSync(join(tmpdir(), 'gw-backup-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));

  /** A new database from the migrated template (or empty), dropped after the test. */
  async function database(t: TestContext, migrated: boolean): Promise<TestDatabase> {
    const tdb = await createTestDatabase({ migrated });
    t.after(() => tdb.drop());
    return tdb;
  }

  async function seeded(t: TestContext) {
    const source = await database(t, true);
    await seed(source.database.pool);
    const before = await summarise(source.database.pool);
    const rows = Object.fromEntries(
      Object.entries(before.tables).map(([name, s]) => [name, s.rows]),
    );
    const expected: Record<string, number> = {
      authors: 500,
      // The built-in roles (admin, moderator, user), seeded by the RBAC migration.
      gw_role: 3,
      // Each built-in role's seeded permissions, recorded as default grants already applied.
      gw_permission_default: 8,
      invoices: 2000,
      kysely_migration: Object.keys(allMigrations([])).length,
      kysely_migration_lock: 1,
      posts: 5000,
    };
    assert.deepEqual(
      Object.fromEntries(Object.entries(rows).filter(([name]) => name in expected)),
      expected,
    );
    // The platform's other tables come with the template, empty.
    for (const [name, n] of Object.entries(rows)) if (!(name in expected)) assert.equal(n, 0, name);
    assert.equal(before.sequences.invoice_no_seq, '2999');
    return { source, before };
  }

  test('backupDatabase → restoreDatabase into a new empty database: same rows, checksums and schema', async (t) => {
    if (missing) return t.skip(missing);
    const { source, before } = await seeded(t);
    const file = join(dir, 'library.dump');

    await backupDatabase(source.url, file);
    assert.ok(statSync(file).size > 0);
    assert.equal(readFileSync(file).subarray(0, 5).toString('latin1'), 'PGDMP', 'custom format');

    const target = await database(t, false);
    assert.deepEqual((await summarise(target.database.pool)).tables, {}, 'the target is empty');
    await restoreDatabase(target.url, file);
    const after = await summarise(target.database.pool);
    assert.deepEqual(after.tables, before.tables);
    assert.deepEqual(after.sequences, before.sequences);
    assert.deepEqual(after.schema, before.schema);

    // The restored database works, not just compares: the sequence goes on, the trigger fires.
    const { rows } = await target.database.pool.query<{ no: string }>(
      'insert into invoices (amount, issued_on) values (1, current_date) returning no::text',
    );
    assert.equal(rows[0]?.no, '3000');
    const updated = await target.database.pool.query<{ changed: boolean }>(
      "update posts set views = views + 1 where id = md5('post1')::uuid returning updated_at > created_at + interval '1 day' as changed",
    );
    assert.equal(updated.rows[0]?.changed, true);

    // A checksum that can fail: one changed value in the restored copy is noticed.
    await target.database.pool.query(
      "update authors set bio = bio || '.' where id = (select min(id) from authors where bio is not null)",
    );
    const changed = await summarise(target.database.pool);
    assert.notEqual(changed.tables.authors?.checksum, before.tables.authors?.checksum);
    assert.equal(changed.tables.authors?.rows, before.tables.authors?.rows);
  });

  test('restoring into a database that has tables is refused and leaves it untouched', async (t) => {
    if (missing) return t.skip(missing);
    const { source, before } = await seeded(t);
    const file = join(dir, 'refused.dump');
    await backupDatabase(source.url, file);

    const occupied = await database(t, true);
    const untouched = await summarise(occupied.database.pool);
    await assert.rejects(restoreDatabase(occupied.url, file), /restore needs an empty database/);
    assert.deepEqual(await summarise(occupied.database.pool), untouched);
    // Nor into the source itself.
    await assert.rejects(restoreDatabase(source.url, file), /restore needs an empty database/);
    assert.deepEqual(await summarise(source.database.pool), before);
  });

  test('regression: without pg_dump or psql on PATH, backup and restore say which package provides them, exit 1, no stack', async (t) => {
    const tdb = await database(t, true);
    // A PATH holding no PostgreSQL client program (node is run by its full path).
    const path = mkdtempSync(join(tmpdir(), 'gw-no-pg-client-'));
    t.after(() => rmSync(path, { recursive: true, force: true }));
    const file = join(dir, 'never-written.dump');
    for (const [sub, tool] of [
      ['backup', 'pg_dump'],
      ['restore', 'psql'],
    ] as const) {
      const res = await run(process.execPath, ['src/main.ts', 'db', sub, file], tdb.url, {
        PATH: path,
      });
      assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
      const lines = res.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, res.stderr);
      assert.match(
        lines[0] ?? '',
        new RegExp(
          `^db ${sub}: \`${tool}\` is not installed or not on PATH; .*apt-get install postgresql-client`,
        ),
      );
      assert.doesNotMatch(res.stdout + res.stderr, /^\s+at |"stack"/m, 'no stack trace');
    }
    assert.equal(existsSync(file), false);
  });

  test(
    'the CLI: npm run db:backup -- <file>, then node src/main.ts db restore <file>',
    { timeout: CLI_TIMEOUT_MS * 4 },
    async (t) => {
      if (missing) return t.skip(missing);
      const { source, before } = await seeded(t);
      const file = join(dir, 'cli.dump');

      const backup = await run('npm', ['run', '--silent', 'db:backup', '--', file], source.url);
      assert.equal(backup.code, 0, `${backup.stdout}\n${backup.stderr}`);
      assert.match(backup.stdout, /"msg":"backup written"/);
      assert.equal(readFileSync(file).subarray(0, 5).toString('latin1'), 'PGDMP');

      const target = await database(t, false);
      const restore = await run('node', ['src/main.ts', 'db', 'restore', file], target.url);
      assert.equal(restore.code, 0, `${restore.stdout}\n${restore.stderr}`);
      assert.match(restore.stdout, /"msg":"backup restored"/);
      const after = await summarise(target.database.pool);
      assert.deepEqual(after.tables, before.tables);
      assert.deepEqual(after.sequences, before.sequences);
      assert.deepEqual(after.schema, before.schema);

      // Again into the now non-empty database: refused, exit 1, the reason logged.
      const again = await run('node', ['src/main.ts', 'db', 'restore', file], target.url);
      assert.equal(again.code, 1, `${again.stdout}\n${again.stderr}`);
      assert.match(again.stdout, /restore needs an empty database/);
      assert.deepEqual((await summarise(target.database.pool)).tables, before.tables);

      // No file named: usage, exit 64.
      const usage = await run('node', ['src/main.ts', 'db', 'backup'], source.url);
      assert.equal(usage.code, 64);
      assert.match(usage.stderr, /backup <file>/);
    },
  );
});
