// The authors app (issue 19, seed 003): one service behind HTTP (JSON or Protobuf) and WebSocket
// commands; permissions, keyset listing with search, validation, avatar files, audit records and
// events reaching the `authors` channel. Mounted explicitly, as an app of src/apps/index.ts is.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { authorsApp } from '../../src/apps/authors/index.ts';
import {
  AuthorPageSchema,
  AuthorSchema,
  CreateAuthorSchema,
} from '../../src/apps/authors/gen/groundwork/authors/v1/authors_pb.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { migrationStatus, rollback } from '../../src/platform/db/index.ts';
import type { ProblemBody } from '../../src/platform/http/index.ts';
import { PROTOBUF_PROTOCOL } from '../../src/platform/realtime/index.ts';
import { ProblemSchema } from '../../src/platform/realtime/gen/groundwork/problem/v1/problem_pb.ts';
import { multipart, png } from '../fixtures/files/samples.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { bearer, createUser, grantRoles, signIn, signInAdmin } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRealtimeHarness, TestSocket, type RealtimeHarness } from '../helpers/realtime.ts';

interface Author {
  id: string;
  name: string;
  bio: string | null;
  birthDate: string | null;
  links: string[];
  avatarFileId: string | null;
  createdAt: string;
  updatedAt: string;
}
interface AuthorPage {
  items: Author[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
}

const URL = '/api/v1/authors';
let h: RealtimeHarness;
let storageDir: string;
const sockets: TestSocket[] = [];

async function as(...roles: string[]) {
  const user = await createUser(h);
  if (roles.length > 0) await grantRoles(h, user.id, ...roles);
  const tokens = await signIn(h.app, user);
  return { user, tokens, headers: bearer(tokens.accessToken) };
}

async function socket(token: string, protocols?: string[]): Promise<TestSocket> {
  const s = await TestSocket.open(h.base, protocols ? { protocols } : {});
  sockets.push(s);
  s.send({ type: 'auth', token });
  await s.next('ready');
  return s;
}

const withoutRequestId = (p: ProblemBody) => ({ ...p, requestId: undefined });

before(async () => {
  storageDir = await mkdtemp(join(tmpdir(), 'gw-authors-'));
  h = await startRealtimeHarness({ STORAGE_LOCAL_DIR: storageDir }, [authorsApp]);
});

after(async () => {
  for (const s of sockets) s.ws.terminate();
  await h?.close();
  await rm(storageDir, { recursive: true, force: true });
});

describe('authors: permissions', () => {
  test('401 anonymous, 403 without authors:read; users read, moderators write, admins delete', async () => {
    assertProblem(await h.app.inject({ method: 'GET', url: URL }), 401, 'UNAUTHORIZED');
    const nobody = await as();
    assertProblem(
      await h.app.inject({ method: 'GET', url: URL, headers: nobody.headers }),
      403,
      'FORBIDDEN',
    );
    const user = await as('user');
    assert.equal(
      (await h.app.inject({ method: 'GET', url: URL, headers: user.headers })).statusCode,
      200,
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: URL,
        headers: user.headers,
        payload: { name: 'X' },
      }),
      403,
      'FORBIDDEN',
    );
    const moderator = await as('moderator');
    const created = await h.app.inject({
      method: 'POST',
      url: URL,
      headers: moderator.headers,
      payload: { name: 'Octavia E. Butler' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json<Author>().id;
    assertProblem(
      await h.app.inject({ method: 'DELETE', url: `${URL}/${id}`, headers: moderator.headers }),
      403,
      'FORBIDDEN',
    );
    const admin = await signInAdmin(h.app, h);
    const deleted = await h.app.inject({
      method: 'DELETE',
      url: `${URL}/${id}`,
      headers: admin.headers,
    });
    assert.equal(deleted.statusCode, 204, deleted.body);
    assertProblem(
      await h.app.inject({ method: 'GET', url: `${URL}/${id}`, headers: user.headers }),
      404,
      'NOT_FOUND',
    );
    const { rows } = await h.tdb.database.pool.query<{ name: string }>(
      `select name from gw_role where 'authors:write' = any(permissions) order by name`,
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['admin', 'moderator'],
    );
  });
});

describe('authors: over HTTP', () => {
  test('create, show, change (merge patch), list with keyset pages and search', async () => {
    const { headers } = await as('moderator');
    const post = (payload: Record<string, unknown>) =>
      h.app.inject({ method: 'POST', url: URL, headers, payload });
    const res = await post({
      name: '  Ursula K. Le Guin ',
      bio: 'Wrote Earthsea and The Dispossessed.',
      birthDate: '1929-10-21',
      links: ['https://www.ursulakleguin.com/'],
    });
    assert.equal(res.statusCode, 201, res.body);
    const author = res.json<Author>();
    assert.equal(author.name, 'Ursula K. Le Guin');
    assert.equal(author.birthDate, '1929-10-21');
    assert.deepEqual(author.links, ['https://www.ursulakleguin.com/']);
    const shown = await h.app.inject({ method: 'GET', url: `${URL}/${author.id}`, headers });
    assert.deepEqual(shown.json(), author);
    const patched = await h.app.inject({
      method: 'PATCH',
      url: `${URL}/${author.id}`,
      headers,
      payload: { bio: null, links: [] },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    const after = patched.json<Author>();
    assert.equal(after.bio, null);
    assert.deepEqual(after.links, []);
    assert.equal(after.birthDate, '1929-10-21', 'absent fields unchanged');
    for (let i = 0; i < 3; i++) assert.equal((await post({ name: `Pager ${i}` })).statusCode, 201);
    const first = await h.app.inject({ method: 'GET', url: `${URL}?limit=2`, headers });
    const page1 = first.json<AuthorPage>();
    assert.equal(page1.items.length, 2);
    assert.ok(page1.page.nextCursor);
    const page2 = (
      await h.app.inject({
        method: 'GET',
        url: `${URL}?limit=2&cursor=${encodeURIComponent(page1.page.nextCursor)}`,
        headers,
      })
    ).json<AuthorPage>();
    assert.ok(
      page2.items.every((a) => !page1.items.some((b) => b.id === a.id)),
      'no author twice',
    );
    const found = (
      await h.app.inject({ method: 'GET', url: `${URL}?q=earthsea`, headers })
    ).json<AuthorPage>();
    assert.deepEqual(
      found.items.map((a) => a.id),
      [],
      'the bio was cleared: no longer found',
    );
    const byName = (
      await h.app.inject({ method: 'GET', url: `${URL}?q=guin`, headers })
    ).json<AuthorPage>();
    assert.deepEqual(
      byName.items.map((a) => a.id),
      [author.id],
    );
  });

  test('bad input: 422 for the schema, a date in the future, an unknown avatar; 404 for an unknown id; nothing stored', async () => {
    const { headers } = await as('moderator');
    const count = async () =>
      (await h.tdb.database.pool.query<{ n: number }>('select count(*)::int n from authors'))
        .rows[0]?.n;
    const before = await count();
    const post = (payload: Record<string, unknown>) =>
      h.app.inject({ method: 'POST', url: URL, headers, payload });
    assertProblem(await post({}), 422, 'VALIDATION_FAILED');
    assertProblem(await post({ name: 'x'.repeat(201) }), 422, 'VALIDATION_FAILED');
    assertProblem(
      await post({ name: 'A', links: ['javascript:alert(1)'] }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(await post({ name: 'A', birthDate: '1929-02-30' }), 422, 'VALIDATION_FAILED');
    assertProblem(
      await post({ name: 'A', birthDate: '2999-01-01' }),
      422,
      'AUTHOR_BIRTH_DATE_INVALID',
    );
    assertProblem(
      await post({ name: 'A', avatarFileId: '0190a5d2-7c3e-7000-8000-000000000001' }),
      422,
      'AUTHOR_AVATAR_NOT_FOUND',
    );
    assert.equal(await count(), before, 'nothing stored');
    const missing = '0190a5d2-7c3e-7000-8000-00000000dead';
    assertProblem(
      await h.app.inject({ method: 'GET', url: `${URL}/${missing}`, headers }),
      404,
      'NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        method: 'PATCH',
        url: `${URL}/${missing}`,
        headers,
        payload: { name: 'B' },
      }),
      404,
      'NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        method: 'PATCH',
        url: `${URL}/not-a-uuid`,
        headers,
        payload: { name: 'B' },
      }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await h.app.inject({ method: 'PATCH', url: `${URL}/${missing}`, headers, payload: {} }),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('an avatar uploaded by the writer (purpose authors.avatar) is accepted', async () => {
    const { headers } = await as('moderator');
    const form = multipart([
      { name: 'purpose', data: 'authors.avatar' },
      { name: 'file', filename: 'a.png', contentType: 'image/png', data: await png() },
    ]);
    const up = await h.app.inject({
      method: 'POST',
      url: '/api/v1/files',
      headers: { ...headers, 'content-type': form.contentType },
      payload: form.body,
    });
    assert.equal(up.statusCode, 201, up.body);
    const fileId = up.json<{ id: string }>().id;
    const res = await h.app.inject({
      method: 'POST',
      url: URL,
      headers,
      payload: { name: 'With a picture', avatarFileId: fileId },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<Author>().avatarFileId, fileId);
    // Another writer may not use it.
    const other = await as('moderator');
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: URL,
        headers: other.headers,
        payload: { name: 'Borrowed', avatarFileId: fileId },
      }),
      422,
      'AUTHOR_AVATAR_NOT_FOUND',
    );
  });

  test('every change is audited, with the changed fields', async () => {
    const { user, headers } = await as('moderator');
    const created = (
      await h.app.inject({ method: 'POST', url: URL, headers, payload: { name: 'Audited' } })
    ).json<Author>();
    await h.app.inject({
      method: 'PATCH',
      url: `${URL}/${created.id}`,
      headers,
      payload: { bio: 'Now with a bio.' },
    });
    const admin = await signInAdmin(h.app, h);
    await h.app.inject({ method: 'DELETE', url: `${URL}/${created.id}`, headers: admin.headers });
    const { rows } = await h.tdb.database.pool.query<{
      action: string;
      actor_id: string;
      data: { changes?: Record<string, unknown> };
      request_id: string | null;
    }>(
      `select action, actor_id, data, request_id from gw_audit_event
        where subject_type = 'author' and subject_id = $1 order by seq`,
      [created.id],
    );
    assert.deepEqual(
      rows.map((r) => r.action),
      ['authors.author.create', 'authors.author.update', 'authors.author.delete'],
    );
    assert.equal(rows[0]?.actor_id, user.id);
    assert.deepEqual(rows[1]?.data.changes, { bio: { from: null, to: 'Now with a bio.' } });
    assert.equal(rows[2]?.actor_id, admin.user.id);
    assert.ok(rows.every((r) => r.request_id));
  });

  test('the OpenAPI document lists JSON and Protobuf for the negotiated routes', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: { content: Record<string, unknown> };
            responses: Record<string, { content?: Record<string, unknown> }>;
          }
        >
      >;
    }>();
    const post = doc.paths['/api/v1/authors']?.post;
    assert.deepEqual(Object.keys(post?.requestBody?.content ?? {}).sort(), [
      'application/json',
      'application/x-protobuf',
    ]);
    assert.ok(
      Object.keys(post?.responses['201']?.content ?? {}).includes('application/x-protobuf'),
    );
    const get = doc.paths['/api/v1/authors/{id}']?.get;
    assert.ok(Object.keys(get?.responses['200']?.content ?? {}).includes('application/x-protobuf'));
  });
});

describe('authors: Protobuf over HTTP', () => {
  test('JSON and Protobuf answers carry the same data; bodies accepted in Protobuf', async () => {
    const { headers } = await as('moderator');
    const body = toBinary(
      CreateAuthorSchema,
      create(CreateAuthorSchema, {
        name: 'N. K. Jemisin',
        bio: 'The Broken Earth.',
        birthDate: '1972-09-19',
        links: ['https://nkjemisin.com/'],
      }),
    );
    const res = await h.app.inject({
      method: 'POST',
      url: URL,
      headers: {
        ...headers,
        'content-type': 'application/x-protobuf',
        accept: 'application/x-protobuf',
      },
      payload: Buffer.from(body),
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers['content-type'], 'application/x-protobuf');
    assert.equal(res.headers['x-protobuf-message'], 'groundwork.authors.v1.Author');
    const proto = fromBinary(AuthorSchema, res.rawPayload);
    const json = (
      await h.app.inject({ method: 'GET', url: `${URL}/${proto.id}`, headers })
    ).json<Author>();
    assert.deepEqual(
      {
        id: proto.id,
        name: proto.name,
        bio: proto.bio ?? null,
        birthDate: proto.birthDate ?? null,
        links: proto.links,
        avatarFileId: proto.avatarFileId ?? null,
        createdAt: proto.createdAt,
        updatedAt: proto.updatedAt,
      },
      json,
    );
    // The listing too, and JSON when Accept prefers it.
    const page = await h.app.inject({
      method: 'GET',
      url: `${URL}?limit=3`,
      headers: { ...headers, accept: 'application/x-protobuf, application/json;q=0.5' },
    });
    const decoded = fromBinary(AuthorPageSchema, page.rawPayload);
    const jsonPage = (
      await h.app.inject({
        method: 'GET',
        url: `${URL}?limit=3`,
        headers: { ...headers, accept: 'application/json, application/x-protobuf;q=0.5' },
      })
    ).json<AuthorPage>();
    assert.deepEqual(
      decoded.items.map((a) => a.id),
      jsonPage.items.map((a) => a.id),
    );
    assert.equal(decoded.page?.hasMore, jsonPage.page.hasMore);
    assert.equal(decoded.page?.nextCursor ?? null, jsonPage.page.nextCursor);
  });

  test('problems in Protobuf carry the HTTP problem; invalid Protobuf bytes are a 400', async () => {
    const { headers } = await as('moderator');
    const missing = await h.app.inject({
      method: 'GET',
      url: `${URL}/0190a5d2-7c3e-7000-8000-00000000beef`,
      headers: { ...headers, accept: 'application/x-protobuf' },
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers['content-type'], 'application/x-protobuf');
    const problem = fromBinary(ProblemSchema, missing.rawPayload);
    assert.equal(problem.code, 'NOT_FOUND');
    assert.equal(problem.status, 404);
    assert.equal(problem.requestId, missing.headers['x-request-id']);
    const invalid = await h.app.inject({
      method: 'POST',
      url: URL,
      headers: { ...headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
    });
    assertProblem(invalid, 400, 'MALFORMED_BODY');
    // A Protobuf body that decodes but misses the name: the schema's 422.
    const empty = await h.app.inject({
      method: 'POST',
      url: URL,
      headers: { ...headers, 'content-type': 'application/x-protobuf' },
      payload: Buffer.alloc(0),
    });
    assert.ok([400, 422].includes(empty.statusCode), empty.body);
    // PATCH takes JSON only.
    assertProblem(
      await h.app.inject({
        method: 'PATCH',
        url: `${URL}/0190a5d2-7c3e-7000-8000-00000000beef`,
        headers: { ...headers, 'content-type': 'application/x-protobuf' },
        payload: Buffer.from([10, 1, 65]),
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });
});

describe('authors: WebSocket commands and the authors channel', () => {
  test('the commands run the same service: created over WS, seen over HTTP, and back', async () => {
    const { tokens, headers } = await as('moderator');
    const s = await socket(tokens.accessToken);
    const created = await s.command('authors.create', {
      name: 'Ted Chiang',
      links: ['https://example.com/tc'],
    });
    assert.equal(created.type, 'result', JSON.stringify(created));
    const author = created.payload as Author;
    const http = await h.app.inject({ method: 'GET', url: `${URL}/${author.id}`, headers });
    assert.deepEqual(http.json(), author);
    const got = await s.command('authors.get', { id: author.id });
    assert.deepEqual(got.payload, author);
    const updated = await s.command('authors.update', {
      id: author.id,
      bio: 'Stories of Your Life.',
    });
    assert.equal((updated.payload as Author).bio, 'Stories of Your Life.');
    const listed = await s.command('authors.list', { q: 'chiang' });
    assert.deepEqual(
      (listed.payload as AuthorPage).items.map((a) => a.id),
      [author.id],
    );
    const denied = await s.command('authors.delete', { id: author.id });
    assert.equal(denied.type, 'error');
    assert.equal(denied.problem.status, 403);
    const missing = await s.command('authors.get', { id: '0190a5d2-7c3e-7000-8000-00000000abcd' });
    assert.equal(missing.problem.code, 'NOT_FOUND');
  });

  test('reads are served from the cache; each change drops the cached author at once', async () => {
    const { tokens, headers } = await as('moderator');
    const s = await socket(tokens.accessToken);
    const created = await s.command('authors.create', { name: 'Octavia Butler' });
    const author = created.payload as Author;
    assert.equal((await s.command('authors.get', { id: author.id })).type, 'result');
    // A write that bypasses the service is not seen: the read came from the cache.
    await h.tdb.database.pool.query(`update authors set name = 'Bypassed' where id = $1`, [
      author.id,
    ]);
    const cached = await h.app.inject({ method: 'GET', url: `${URL}/${author.id}`, headers });
    assert.equal(cached.json<Author>().name, 'Octavia Butler');
    // A change through the service (HTTP) is seen at once over both transports.
    const patched = await h.app.inject({
      method: 'PATCH',
      url: `${URL}/${author.id}`,
      headers,
      payload: { bio: 'Kindred.' },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    const got = (await s.command('authors.get', { id: author.id })).payload as Author;
    assert.equal(got.bio, 'Kindred.');
    assert.equal(got.name, 'Bypassed');
    // Deleted: absent over both transports at once.
    const admin = await signInAdmin(h.app, h);
    const deleted = await h.app.inject({
      method: 'DELETE',
      url: `${URL}/${author.id}`,
      headers: admin.headers,
    });
    assert.equal(deleted.statusCode, 204, deleted.body);
    const gone = await s.command('authors.get', { id: author.id });
    assert.equal(gone.problem.status, 404);
    const http = await h.app.inject({ method: 'GET', url: `${URL}/${author.id}`, headers });
    assert.equal(http.statusCode, 404);
  });

  test('a payload failing validation gets the very problem body HTTP answers with 422', async () => {
    const { tokens, headers } = await as('moderator');
    const s = await socket(tokens.accessToken);
    for (const payload of [
      { name: '' },
      { name: 'A', links: ['ftp://x'], extra: true },
      { bio: 'no name' },
      { name: 'A', birthDate: '2999-01-01' },
    ]) {
      const http = await h.app.inject({ method: 'POST', url: URL, headers, payload });
      assert.equal(http.statusCode, 422);
      const ws = await s.command('authors.create', payload);
      assert.equal(ws.type, 'error');
      assert.deepEqual(withoutRequestId(ws.problem), withoutRequestId(http.json<ProblemBody>()));
    }
  });

  test('changes reach the authors channel after commit (created, updated, deleted), readers only', async () => {
    const reader = await as('user');
    const writer = await as('moderator');
    const admin = await signInAdmin(h.app, h);
    const r = await socket(reader.tokens.accessToken);
    assert.equal((await r.subscribe('authors')).type, 'subscribed');
    const nobody = await as();
    const n = await socket(nobody.tokens.accessToken);
    assert.equal((await n.subscribe('authors')).problem.code, 'CHANNEL_NOT_FOUND');
    const created = (
      await h.app.inject({
        method: 'POST',
        url: URL,
        headers: writer.headers,
        payload: { name: 'Live' },
      })
    ).json<Author>();
    await h.app.inject({
      method: 'PATCH',
      url: `${URL}/${created.id}`,
      headers: writer.headers,
      payload: { name: 'Live, renamed' },
    });
    await h.app.inject({ method: 'DELETE', url: `${URL}/${created.id}`, headers: admin.headers });
    const mine = () =>
      r.events('authors').filter((e) => {
        const d = e.data as { author?: { id: string }; authorId?: string };
        return d.author?.id === created.id || d.authorId === created.id;
      });
    await eventually('three events', () => Promise.resolve(mine().length === 3), 15_000);
    assert.deepEqual(
      mine().map((e) => e.event),
      ['authors.author.created', 'authors.author.updated', 'authors.author.deleted'],
    );
    const offsets = mine().map((e) => e.offset);
    assert.deepEqual(
      offsets,
      [...offsets].sort((a, b) => a - b),
    );
    assert.deepEqual((mine()[1]?.data as { changed: string[] }).changed, ['name']);
    assert.equal(n.events().length, 0);
  });

  test('the Protobuf subprotocol answers commands with the same data', async () => {
    const { tokens } = await as('moderator');
    const json = await socket(tokens.accessToken);
    const proto = await socket(tokens.accessToken, [PROTOBUF_PROTOCOL]);
    assert.equal(proto.protocol, PROTOBUF_PROTOCOL);
    const made = (
      await json.command('authors.create', { name: 'Protobuf', birthDate: '1950-01-01' })
    ).payload as Author;
    const viaProto = await proto.command('authors.get', { id: made.id });
    assert.equal(viaProto.type, 'result');
    assert.deepEqual(viaProto.payload, made);
    const bad = await proto.command('authors.create', { name: '' });
    const badJson = await json.command('authors.create', { name: '' });
    assert.deepEqual(withoutRequestId(bad.problem), withoutRequestId(badJson.problem));
  });
});

describe('authors: migration', () => {
  test('up creates the table, down removes it', async (t) => {
    const migrations = allMigrations([authorsApp]);
    const tdb = await createTestDatabase({ migrations });
    t.after(() => tdb.drop());
    const table = async () =>
      (
        await tdb.database.pool.query<{ t: string | null }>(
          `select to_regclass('public.authors')::text as t`,
        )
      ).rows[0]?.t;
    assert.equal(await table(), 'authors');
    const names = Object.keys(migrations).sort();
    const later = names.slice(names.indexOf('202612071200_authors_create'));
    await rollback(tdb.database.db, migrations, later.length);
    assert.equal(await table(), null);
    const status = await migrationStatus(tdb.database.db, migrations);
    assert.ok(status.some((m) => m.name === '202612071200_authors_create' && !m.executedAt));
  });
});
