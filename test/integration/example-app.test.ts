// The example app of docs/writing-an-app.md (test/fixtures/notes-app), mounted exactly as an app
// listed in src/apps/index.ts is: its settings validated with the platform's, its migrations in
// the one history, its jobs and mail templates on the platform's queue and mailer, its routes
// under /api/v1 through buildApp. Everything is checked through HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { ConfigError, loadConfig, type Config } from '../../src/platform/config/index.ts';
import { migrationStatus, rollback } from '../../src/platform/db/index.ts';
import { JOBS_SCHEMA } from '../../src/platform/jobs/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { applyPermissions, createPlatform } from '../../src/platform/runtime/index.ts';
import { notesApp } from '../fixtures/notes-app/index.ts';
import { notesDb } from '../fixtures/notes-app/notes.repository.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, createUser, grantRoles, signIn } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';

/** The platform's database type, for the compile-time checks (never called). */
const tdbType = () => undefined as unknown as Platform['database']['db'];

interface Note {
  id: string;
  authorId: string;
  title: string;
  body: string;
  createdAt: string;
}
interface NotePage {
  items: Note[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
}

describe('example app: settings', () => {
  test('NOTES_MAX_LENGTH is parsed into the module’s slice, with its default', () => {
    assert.equal(testConfig({}, [notesApp]).modules.notes?.NOTES_MAX_LENGTH, 2000);
    assert.equal(
      testConfig({ NOTES_MAX_LENGTH: '40' }, [notesApp]).modules.notes?.NOTES_MAX_LENGTH,
      40,
    );
  });

  test('a bad NOTES_MAX_LENGTH is listed by the configuration error, with the platform’s', () => {
    for (const bad of ['0', 'many', '1000000']) {
      try {
        loadConfig(
          { APP_ENV: 'test', PORT: 'x', NOTES_MAX_LENGTH: bad },
          { modules: [...knownModules(), notesApp] },
        );
        assert.fail(`NOTES_MAX_LENGTH=${bad} was accepted`);
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        assert.deepEqual(error.issues.map((i) => i.key).sort(), ['NOTES_MAX_LENGTH', 'PORT']);
      }
    }
  });
});

describe('example app: its tables', () => {
  test('its view of the database types its own tables and no other module’s', () => {
    // Compile-time checks (`npm run typecheck`): each @ts-expect-error fails the build if the line
    // it covers ever compiles, that is if identity's or mail's tables became visible to the app.
    const db = notesDb(undefined as unknown as Platform['database']['db']);
    const check = (_query: unknown) => true;
    assert.ok(check(() => db.selectFrom('notes').select('title')));
    // @ts-expect-error identity's users are not the notes app's table
    assert.ok(check(() => db.selectFrom('gw_user').selectAll()));
    // @ts-expect-error nor are mail's deliveries
    assert.ok(check(() => db.selectFrom('gw_mail_delivery').selectAll()));
    // Nor does the platform's own database type name any table: each module brings its view.
    // @ts-expect-error the platform's database has no tables typed
    assert.ok(check(() => tdbType().selectFrom('gw_user').selectAll()));
  });
});

describe('example app: migration', () => {
  test('up creates the notes table, down removes it', async (t) => {
    const migrations = allMigrations([notesApp]);
    const tdb = await createTestDatabase({ migrations });
    t.after(() => tdb.drop());
    const table = async () =>
      (
        await tdb.database.pool.query<{ t: string | null }>(
          `select to_regclass('public.notes')::text as t`,
        )
      ).rows[0]?.t;
    assert.equal(await table(), 'notes');
    const db = tdb.database.db;
    // The one history is ordered by name: roll back the platform's later migrations, then notes.
    const names = Object.keys(migrations).sort();
    const later = names.slice(names.indexOf('202612061600_notes_create'));
    assert.deepEqual(await rollback(db, migrations, later.length), later.reverse());
    assert.equal(await table(), null);
    const status = await migrationStatus(db, migrations);
    assert.ok(status.some((m) => m.name === '202612061600_notes_create' && !m.executedAt));
  });
});

describe('example app: through HTTP', () => {
  let config: Config;
  let tdb: TestDatabase;
  let platform: Platform;
  let app: FastifyInstance;
  const h = () => ({ tdb, config });

  before(async () => {
    config = testConfig(
      {
        NOTES_MAX_LENGTH: '40',
        JOBS_POLL_INTERVAL_MS: '500',
        JOBS_SUPERVISE_INTERVAL_S: '1',
        PUBLIC_URL: 'https://app.example.test',
      },
      [notesApp],
    );
    // What main.ts does with the apps of src/apps/index.ts: their migrations in the one history,
    // the platform built with every enabled module, the app built on it.
    tdb = await createTestDatabase({ config, migrations: allMigrations([notesApp]) });
    platform = await createPlatform(config, {
      modules: enabledModules(config, [notesApp]),
      database: tdb.database,
      redis: null,
      work: true,
      logDestination: new LogCapture(),
      mailRetry: { retries: 1, initialSeconds: 1, maxSeconds: 1 },
    });
    app = await buildApp(config, { platform, apps: [notesApp] });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await platform?.close();
    await tdb?.drop();
  });

  /** A signed-in account holding these roles (granted before its first request). */
  async function reader(...roles: string[]): Promise<Record<string, string>> {
    const user = await createUser(h());
    if (roles.length > 0) await grantRoles(h(), user.id, ...roles);
    return bearer((await signIn(app, user)).accessToken);
  }

  const post = (headers: Record<string, string>, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/notes', headers, payload });
  const list = (headers: Record<string, string>, query = '') =>
    app.inject({ method: 'GET', url: `/api/v1/notes${query}`, headers });
  const countNotes = async () =>
    (await tdb.database.pool.query<{ n: number }>('select count(*)::int as n from notes')).rows[0]
      ?.n ?? 0;

  test('GET /notes needs notes:read: 401 anonymous, 403 without it, 200 with a role given it by default', async () => {
    assertProblem(await list({}), 401, 'UNAUTHORIZED');
    const forbidden = assertProblem(await list(await reader()), 403, 'FORBIDDEN');
    assert.match(forbidden.detail ?? '', /notes:read/);
    // `user` and `moderator` got notes:read when the app started (the module's default roles).
    assert.equal((await list(await reader('user'))).statusCode, 200);
    assert.equal((await list(await reader('moderator'))).statusCode, 200);
    const roles = await tdb.database.pool.query<{ name: string }>(
      `select name from gw_role where 'notes:read' = any(permissions) order by name`,
    );
    assert.deepEqual(
      roles.rows.map((r) => r.name),
      ['moderator', 'user'],
    );
  });

  test('notes written are listed newest first, in two pages joined by the cursor', async () => {
    const headers = await reader('user');
    const titles: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const res = await post(headers, { title: `page-test ${i}`, body: `note ${i}` });
      assert.equal(res.statusCode, 201, res.body);
      titles.unshift(res.json<Note>().title);
    }
    const total = await countNotes();
    const first = await list(headers, '?limit=2');
    assert.equal(first.statusCode, 200, first.body);
    const page1 = first.json<NotePage>();
    assert.equal(page1.items.length, 2);
    assert.equal(page1.page.hasMore, true);
    assert.ok(page1.page.nextCursor);
    const second = await list(
      headers,
      `?limit=${total}&cursor=${encodeURIComponent(page1.page.nextCursor)}`,
    );
    assert.equal(second.statusCode, 200, second.body);
    const page2 = second.json<NotePage>();
    assert.equal(page2.page.hasMore, false);
    assert.equal(page2.page.nextCursor, null);
    const seen = [...page1.items, ...page2.items];
    assert.equal(seen.length, total, 'every note once, none on both pages');
    assert.equal(new Set(seen.map((n) => n.id)).size, total);
    // Newest first: the three just written lead, the rest follow in created order.
    assert.deepEqual(
      seen.slice(0, 3).map((n) => n.title),
      titles,
    );
    const times = seen.map((n) => Date.parse(n.createdAt));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
  });

  test('bad input is refused: 422 for the schemas, the list query and the setting (NOTE_TOO_LONG), 400 for a forged cursor; nothing stored', async () => {
    const headers = await reader('user');
    const before = await countNotes();
    assertProblem(await post(headers, { body: 'no title' }), 422, 'VALIDATION_FAILED');
    assertProblem(
      await post(headers, { title: 'x', shareWith: 'not-an-address' }),
      422,
      'VALIDATION_FAILED',
    );
    // The listing's own checks: the limit's range, and cursors it signed itself.
    assertProblem(await list(headers, '?limit=0'), 422, 'INVALID_LIST_QUERY');
    assertProblem(await list(headers, '?cursor=forged'), 400, 'INVALID_CURSOR');
    // NOTES_MAX_LENGTH=40 in this configuration.
    const long = assertProblem(
      await post(headers, { title: 'long', body: 'x'.repeat(41) }),
      422,
      'NOTE_TOO_LONG',
    );
    assert.match(long.detail ?? '', /at most 40 characters/);
    assert.equal(await countNotes(), before, 'nothing stored');
    assert.equal((await post(headers, { title: 'fits', body: 'x'.repeat(40) })).statusCode, 201);
    assert.equal(await countNotes(), before + 1);
    assertProblem(await post({}, { title: 'anonymous' }), 401, 'UNAUTHORIZED');
  });

  test('its routes are in the live OpenAPI document, under its tag', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json<{
      paths: Record<string, Record<string, { tags?: string[] }>>;
      tags: { name: string }[];
    }>();
    assert.deepEqual(Object.keys(doc.paths['/api/v1/notes'] ?? {}).sort(), ['get', 'post']);
    assert.deepEqual(doc.paths['/api/v1/notes']?.get?.tags, ['notes']);
    assert.ok(doc.tags.some((t) => t.name === 'notes'));
  });

  test('shareWith enqueues notes.share with the note; the job runs and the mail is delivered', async () => {
    const headers = await reader('user');
    const to = `friend-${process.pid}@example.com`;
    const res = await post(headers, {
      title: 'Groceries',
      body: 'Milk, bread, coffee.',
      shareWith: to,
    });
    assert.equal(res.statusCode, 201, res.body);
    const note = res.json<Note>();
    const message = await eventually('the shared note in the development mailbox', async () => {
      const { rows } = await tdb.database.pool.query<{ subject: string; text: string }>(
        `select subject, text from gw_mail_dev_message
          where recipient = $1 and template = 'notes.shared'`,
        [to],
      );
      return rows[0];
    });
    assert.equal(message.subject, 'A note for you: Groceries');
    assert.match(message.text, /Milk, bread, coffee\./);
    // The job that sent it completed (its completion may be written just after the mail).
    await eventually('notes.share completed', async () => {
      const { rows } = await tdb.database.pool.query<{ state: string }>(
        `select state::text as state from ${JOBS_SCHEMA}.job
          where name = 'notes.share' and data->'payload' = $1::jsonb`,
        [JSON.stringify({ noteId: note.id, to })],
      );
      return rows.length === 1 && rows[0]?.state === 'completed';
    });
  });
  // Last in this suite: it takes notes:read away from `user`.
  test('regression: a default grant is applied once; taken away by an operator, it stays away at the next start', async () => {
    await tdb.database.pool.query(
      `update gw_role set permissions = array_remove(permissions, 'notes:read') where name = 'user'`,
    );
    // What every start runs once the app is ready (src/app.ts): the modules' default grants.
    await applyPermissions(platform, enabledModules(config, [notesApp]));
    const roles = await tdb.database.pool.query<{ name: string }>(
      `select name from gw_role where 'notes:read' = any(permissions) order by name`,
    );
    assert.deepEqual(
      roles.rows.map((r) => r.name),
      ['moderator'],
    );
    const applied = await tdb.database.pool.query<{ role: string }>(
      `select role from gw_permission_default where permission = 'notes:read' order by role`,
    );
    assert.deepEqual(
      applied.rows.map((r) => r.role),
      ['moderator', 'user'],
    );
  });
});
