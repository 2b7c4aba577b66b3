import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { buildApp } from '../../src/app.ts';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { closeRedis, connectRedis, type Redis } from '../../src/platform/redis/index.ts';
import { TEST_JWT_PRIVATE_KEY, testConfig } from '../helpers/app.ts';
import type { MailHarness } from '../helpers/mail.ts';
import {
  GOOD_PASSWORD,
  bearer,
  createUser,
  grantRoles,
  login,
  markMfa,
  signIn,
  signInAdmin,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

interface AdminUser {
  id: string;
  email: string;
  username: string;
  locked: boolean;
  lockedUntil: string | null;
  failedLoginCount: number;
  roles: string[];
  createdAt: string;
}
interface Role {
  id: string;
  name: string;
  permissions: string[];
  mfaRequired: boolean;
  builtin: boolean;
  userCount: number;
}
interface Page<T> {
  items: T[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
}

describe('identity: roles, permissions and the admin API', () => {
  let h: MailHarness;
  let admin: Record<string, string>;
  let adminUser: TestUser;
  before(async () => {
    h = await startIdentityHarness();
    const signed = await signInAdmin(h.app, h);
    admin = signed.headers;
    adminUser = signed.user;
  });
  after(() => h.close());

  const get = (url: string, headers: Record<string, string> = admin) =>
    h.app.inject({ url: `/api/v1${url}`, headers });
  const send = (
    method: 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = admin,
  ) =>
    h.app.inject({ method, url: `/api/v1${url}`, headers, payload: payload as object | undefined });
  const roleByName = async (name: string) => {
    const res = await get('/admin/roles');
    assert.equal(res.statusCode, 200, res.body);
    const role = res.json<{ items: Role[] }>().items.find((r) => r.name === name);
    assert.ok(role, `role ${name}`);
    return role;
  };
  const signedInAs = async (user: TestUser) => bearer((await signIn(h.app, user)).accessToken);

  test('the seeded roles: admin holds every platform permission and requires MFA', async () => {
    const res = await get('/admin/roles');
    assert.equal(res.statusCode, 200, res.body);
    const roles = res.json<{ items: Role[] }>().items;
    const byName = new Map(roles.map((r) => [r.name, r]));
    assert.deepEqual([...byName.keys()].sort(), ['admin', 'moderator', 'user']);
    assert.deepEqual(byName.get('admin')?.permissions, [
      'audit:export',
      'audit:read',
      'files:admin',
      'flags:admin',
      'jobs:admin',
      'roles:admin',
      'roles:read',
      'users:admin',
      'users:read',
      'webhooks:admin',
      'webhooks:manage',
    ]);
    assert.equal(byName.get('admin')?.mfaRequired, true);
    assert.ok(roles.every((r) => r.builtin));
    assert.ok((byName.get('admin')?.userCount ?? 0) >= 1);
  });

  test('registration gives the new account the user role, in the same transaction', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'grace@example.com', username: 'grace_h', password: GOOD_PASSWORD },
    });
    assert.equal(res.statusCode, 202, res.body);
    const { rows } = await h.tdb.database.pool.query<{ name: string }>(
      `select r.name from gw_user_role ur join gw_role r on r.id = ur.role_id
        join gw_user u on u.id = ur.user_id where u.username = 'grace_h'`,
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['user'],
    );
  });

  test('anonymous is 401, a signed-in user without the permission 403, on every admin route', async () => {
    const plain = await signedInAs(await createUser(h));
    const routes: ['GET' | 'POST' | 'PATCH' | 'DELETE', string][] = [
      ['GET', '/admin/users'],
      ['GET', `/admin/users/${adminUser.id}`],
      ['PATCH', `/admin/users/${adminUser.id}`],
      ['GET', '/admin/roles'],
      ['POST', '/admin/roles'],
      ['PATCH', '/admin/roles/00000000-0000-0000-0000-000000000000'],
      ['DELETE', '/admin/roles/00000000-0000-0000-0000-000000000000'],
      ['GET', '/admin/audit-events'],
      ['GET', '/admin/queues'],
    ];
    for (const [method, url] of routes) {
      // A body that does not validate: the permission is checked first, so nothing is revealed.
      const payload = method === 'GET' || method === 'DELETE' ? undefined : { bogus: 1 };
      const anonymous = await h.app.inject({ method, url: `/api/v1${url}`, payload });
      assertProblem(anonymous, 401, 'UNAUTHORIZED');
      assert.match(String(anonymous.headers['www-authenticate']), /^Bearer realm=/);
      assertProblem(
        await h.app.inject({ method, url: `/api/v1${url}`, payload, headers: plain }),
        403,
        'FORBIDDEN',
      );
    }
  });

  test('an admin whose session has no second factor gets 403 MFA_REQUIRED; with otp in amr, 200', async () => {
    const user = await createUser(h);
    await grantRoles(h, user.id, 'admin');
    const tokens = await signIn(h.app, user);
    const headers = bearer(tokens.accessToken);
    assertProblem(await get('/admin/users', headers), 403, 'MFA_REQUIRED');
    assertProblem(await get('/admin/roles', headers), 403, 'MFA_REQUIRED');
    await markMfa(h.app, h, tokens.sessionId);
    assert.equal((await get('/admin/users', headers)).statusCode, 200);
  });

  test('a permission also granted by a role without mfa_required needs no second factor', async () => {
    const user = await createUser(h);
    await grantRoles(h, user.id, 'admin', 'moderator');
    const headers = await signedInAs(user);
    // users:read comes from moderator too; users:admin only from admin.
    assert.equal((await get('/admin/users', headers)).statusCode, 200);
    assertProblem(
      await send('PATCH', `/admin/users/${user.id}`, { locked: false }, headers),
      403,
      'MFA_REQUIRED',
    );
  });

  test('a role edit reaches the next request of its holders (the permission cache is invalidated)', async () => {
    const user = await createUser(h);
    await grantRoles(h, user.id, 'moderator');
    const headers = await signedInAs(user);
    // Cached now: the moderator may read accounts but not the audit trail.
    assert.equal((await get('/admin/users', headers)).statusCode, 200);
    assertProblem(await get('/admin/audit-events', headers), 403, 'FORBIDDEN');
    const moderator = await roleByName('moderator');
    const grant = await send('PATCH', `/admin/roles/${moderator.id}`, {
      permissions: [...moderator.permissions, 'audit:read'],
    });
    assert.equal(grant.statusCode, 200, grant.body);
    assert.equal((await get('/admin/audit-events', headers)).statusCode, 200);
    const revoke = await send('PATCH', `/admin/roles/${moderator.id}`, {
      permissions: moderator.permissions,
    });
    assert.equal(revoke.statusCode, 200, revoke.body);
    assertProblem(await get('/admin/audit-events', headers), 403, 'FORBIDDEN');

    const events = await listAuditEvents(h.tdb.database.db, {
      action: 'admin.role.update',
      subjectId: moderator.id,
    });
    assert.equal(events.length, 2);
    assert.equal(events[0]?.actorId, adminUser.id);
    assert.deepEqual(events[0]?.data, {
      changes: {
        permissions: {
          from: [...moderator.permissions, 'audit:read'].sort(),
          to: moderator.permissions,
        },
      },
    });
    assert.ok(events[0]?.requestId);
  });

  test('an assignment change reaches the next request (the user’s cached grants are dropped)', async () => {
    const user = await createUser(h);
    const headers = await signedInAs(user);
    assertProblem(await get('/admin/users', headers), 403, 'FORBIDDEN');
    const res = await send('PATCH', `/admin/users/${user.id}`, { roles: ['moderator', 'user'] });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<AdminUser>().roles, ['moderator', 'user']);
    assert.equal((await get('/admin/users', headers)).statusCode, 200);
    const removed = await send('PATCH', `/admin/users/${user.id}`, { roles: ['user'] });
    assert.equal(removed.statusCode, 200, removed.body);
    assertProblem(await get('/admin/users', headers), 403, 'FORBIDDEN');
    const events = await listAuditEvents(h.tdb.database.db, {
      action: 'admin.user.roles',
      subjectId: user.id,
    });
    assert.deepEqual(
      events.map((e) => e.data),
      [
        {
          added: [],
          removed: ['moderator'],
          changes: { roles: { from: ['moderator', 'user'], to: ['user'] } },
        },
        {
          added: ['moderator', 'user'],
          removed: [],
          changes: { roles: { from: [], to: ['moderator', 'user'] } },
        },
      ],
    );
  });

  test('PATCH /admin/users refuses unknown role names (422), malformed ones and empty bodies', async () => {
    const user = await createUser(h);
    const unknown = assertProblem(
      await send('PATCH', `/admin/users/${user.id}`, { roles: ['user', 'wizard'] }),
      422,
      'UNKNOWN_ROLE',
    );
    assert.deepEqual(unknown.errors, [
      { path: '/body/roles/1', message: 'no role is named "wizard"' },
    ]);
    for (const payload of [{ roles: ['Not A Role!'] }, { roles: [''] }, {}, { locked: 'yes' }])
      assertProblem(
        await send('PATCH', `/admin/users/${user.id}`, payload),
        422,
        'VALIDATION_FAILED',
      );
    // Nothing changed on the refused requests.
    const { rows } = await h.tdb.database.pool.query(
      'select 1 from gw_user_role where user_id = $1',
      [user.id],
    );
    assert.equal(rows.length, 0);
  });

  test('a non-UUID or unknown user id is 404, not 500', async () => {
    for (const id of [
      'not-a-uuid',
      '1',
      "1'; drop table gw_user; --",
      '00000000-0000-0000-0000-000000000000',
    ]) {
      const url = `/admin/users/${encodeURIComponent(id)}`;
      assertProblem(await get(url), 404, 'USER_NOT_FOUND');
      assertProblem(await send('PATCH', url, { locked: true }), 404, 'USER_NOT_FOUND');
    }
    assertProblem(await send('DELETE', '/admin/roles/not-a-uuid'), 404, 'ROLE_NOT_FOUND');
    assertProblem(
      await send('PATCH', '/admin/roles/nope', { description: 'x' }),
      404,
      'ROLE_NOT_FOUND',
    );
  });

  test('lock revokes every session at once and refuses sign-in; unlock clears the counters', async () => {
    const user = await createUser(h);
    const one = await signIn(h.app, user);
    const two = await signIn(h.app, user);
    await h.tdb.database.pool.query(
      'update gw_user set failed_login_count = 3, lockout_count = 2 where id = $1',
      [user.id],
    );
    const locked = await send('PATCH', `/admin/users/${user.id}`, { locked: true });
    assert.equal(locked.statusCode, 200, locked.body);
    assert.equal(locked.json<AdminUser>().locked, true);
    assert.equal(locked.json<AdminUser>().lockedUntil, null, 'until an administrator unlocks');
    for (const t of [one, two]) {
      assertProblem(
        await h.app.inject({ url: '/api/v1/auth/sessions', headers: bearer(t.accessToken) }),
        401,
        'INVALID_ACCESS_TOKEN',
      );
    }
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );

    const unlocked = await send('PATCH', `/admin/users/${user.id}`, { locked: false });
    assert.equal(unlocked.statusCode, 200, unlocked.body);
    assert.equal(unlocked.json<AdminUser>().locked, false);
    const { rows } = await h.tdb.database.pool.query<{
      failed_login_count: number;
      lockout_count: number;
      locked_until: Date | null;
    }>('select failed_login_count, lockout_count, locked_until from gw_user where id = $1', [
      user.id,
    ]);
    assert.deepEqual(rows[0], { failed_login_count: 0, lockout_count: 0, locked_until: null });
    assert.equal(
      (await login(h.app, { login: user.email, password: user.password })).statusCode,
      200,
    );

    // The admin actions on the account (its own sign-ins are audited too, as auth.*).
    const events = (await listAuditEvents(h.tdb.database.db, { subjectId: user.id })).filter((e) =>
      e.action.startsWith('admin.'),
    );
    assert.deepEqual(
      events.map((e) => e.action),
      ['admin.user.unlock', 'admin.user.lock'],
    );
    assert.deepEqual(events[1]?.data, { sessionsRevoked: 2 });
    assert.equal(events[1]?.actorId, adminUser.id);
  });

  test('an administrator cannot lock their own account', async () => {
    assertProblem(
      await send('PATCH', `/admin/users/${adminUser.id}`, { locked: true }),
      409,
      'CANNOT_LOCK_SELF',
    );
    assert.equal((await get('/admin/roles')).statusCode, 200, 'still signed in');
  });

  test('roles: create, edit, delete; builtin roles are neither renamed nor deleted; in use is refused', async () => {
    const created = await send('POST', '/admin/roles', {
      name: 'editor',
      description: 'Edits posts',
      permissions: ['posts:update', 'posts:create', 'posts:update', 'comments:*'],
    });
    assert.equal(created.statusCode, 201, created.body);
    const editor = created.json<Role>();
    assert.deepEqual(editor.permissions, ['comments:*', 'posts:create', 'posts:update']);
    assert.equal(editor.builtin, false);
    assert.equal(editor.mfaRequired, false);
    assertProblem(
      await send('POST', '/admin/roles', { name: 'editor', permissions: [] }),
      409,
      'ROLE_NAME_TAKEN',
    );

    const user = await createUser(h);
    assert.equal(
      (await send('PATCH', `/admin/users/${user.id}`, { roles: ['editor'] })).statusCode,
      200,
    );
    assertProblem(await send('DELETE', `/admin/roles/${editor.id}`), 409, 'ROLE_IN_USE');
    const renamed = await send('PATCH', `/admin/roles/${editor.id}`, { name: 'writer' });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json<Role>().name, 'writer');
    assertProblem(
      await send('PATCH', `/admin/roles/${editor.id}`, { name: 'admin' }),
      409,
      'ROLE_NAME_TAKEN',
    );
    assert.equal((await send('PATCH', `/admin/users/${user.id}`, { roles: [] })).statusCode, 200);
    const deleted = await send('DELETE', `/admin/roles/${editor.id}`);
    assert.equal(deleted.statusCode, 204, deleted.body);
    assertProblem(await send('DELETE', `/admin/roles/${editor.id}`), 404, 'ROLE_NOT_FOUND');

    for (const name of ['admin', 'moderator', 'user']) {
      const role = await roleByName(name);
      assertProblem(await send('DELETE', `/admin/roles/${role.id}`), 409, 'ROLE_BUILTIN');
      assertProblem(
        await send('PATCH', `/admin/roles/${role.id}`, { name: `${name}-2` }),
        409,
        'ROLE_BUILTIN',
      );
    }
    const adminRole = await roleByName('admin');
    assertProblem(
      await send('PATCH', `/admin/roles/${adminRole.id}`, {
        permissions: adminRole.permissions.filter((p) => p !== 'roles:admin'),
      }),
      409,
      'ROLE_BUILTIN',
    );
    const more = await send('PATCH', `/admin/roles/${adminRole.id}`, {
      permissions: [...adminRole.permissions, 'posts:*'],
    });
    assert.equal(more.statusCode, 200, more.body);
    assert.ok(more.json<Role>().permissions.includes('posts:*'), 'admin may gain permissions');
    const actions = (await listAuditEvents(h.tdb.database.db, { subjectId: editor.id })).map(
      (e) => e.action,
    );
    assert.deepEqual(actions, ['admin.role.delete', 'admin.role.update', 'admin.role.create']);
  });

  test('malformed permission strings and role names are refused (422) and nothing is stored', async () => {
    const bad = [
      'posts',
      'posts:',
      ':read',
      'Posts:Read',
      'posts:read:extra',
      '*:*',
      '*:read',
      'posts: read',
      'posts:re ad',
      'posts:**',
      `${'a'.repeat(49)}:read`,
      '',
    ];
    for (const permission of bad) {
      assertProblem(
        await send('POST', '/admin/roles', { name: 'broken', permissions: [permission] }),
        422,
        'VALIDATION_FAILED',
      );
    }
    for (const name of ['A', 'x', '1abc', 'with space', 'a'.repeat(33), 'ünï']) {
      assertProblem(
        await send('POST', '/admin/roles', { name, permissions: [] }),
        422,
        'VALIDATION_FAILED',
      );
    }
    const moderator = await roleByName('moderator');
    assertProblem(
      await send('PATCH', `/admin/roles/${moderator.id}`, { permissions: ['nope'] }),
      422,
      'VALIDATION_FAILED',
    );
    const { rows } = await h.tdb.database.pool.query("select 1 from gw_role where name = 'broken'");
    assert.equal(rows.length, 0);
    // The database refuses them too, whatever the API does.
    await assert.rejects(
      h.tdb.database.pool.query(
        "insert into gw_role (id, name, permissions) values (gen_random_uuid(), 'sneaky', array['*:*'])",
      ),
      /gw_role_permissions_ck/,
    );
  });

  test('changing roles needs roles:admin besides users:admin (no self-escalation)', async () => {
    const created = await send('POST', '/admin/roles', {
      name: 'support',
      permissions: ['users:admin', 'users:read'],
    });
    assert.equal(created.statusCode, 201, created.body);
    const agent = await createUser(h);
    await grantRoles(h, agent.id, 'support');
    const headers = await signedInAs(agent);
    assertProblem(
      await send('PATCH', `/admin/users/${agent.id}`, { roles: ['admin'] }, headers),
      403,
      'FORBIDDEN',
    );
    const other = await createUser(h);
    const lock = await send('PATCH', `/admin/users/${other.id}`, { locked: true }, headers);
    assert.equal(lock.statusCode, 200, lock.body);
    const { rows } = await h.tdb.database.pool.query(
      `select 1 from gw_user_role ur join gw_role r on r.id = ur.role_id
        where ur.user_id = $1 and r.name = 'admin'`,
      [agent.id],
    );
    assert.equal(rows.length, 0);
  });

  test('GET /admin/users pages with a cursor and filters by email, username, role, locked, createdAt', async () => {
    const tag = `pg${process.pid}`;
    const made: TestUser[] = [];
    for (let i = 0; i < 5; i++)
      made.push(
        await createUser(h, { email: `${tag}-${i}@list.example`, username: `${tag}_${i}` }),
      );
    await grantRoles(h, made[1]?.id ?? '', 'moderator');
    await grantRoles(h, made[3]?.id ?? '', 'moderator');
    await send('PATCH', `/admin/users/${made[4]?.id ?? ''}`, { locked: true });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await get(`/admin/users?email[contains]=${tag}&limit=2${q}`);
      assert.equal(res.statusCode, 200, res.body);
      const page = res.json<Page<AdminUser>>();
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((u) => u.id));
      cursor = page.page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen.sort(), made.map((u) => u.id).sort());

    const ids = async (query: string) => {
      const res = await get(`/admin/users?email[contains]=${tag}&${query}`);
      assert.equal(res.statusCode, 200, res.body);
      return res
        .json<Page<AdminUser>>()
        .items.map((u) => u.username)
        .sort();
    };
    assert.deepEqual(await ids('role=moderator'), [`${tag}_1`, `${tag}_3`]);
    assert.deepEqual(await ids('locked=true'), [`${tag}_4`]);
    assert.equal((await ids('locked=false')).length, 4);
    assert.deepEqual(await ids(`username=${tag}_2`), [`${tag}_2`]);
    assert.deepEqual(await ids(`username[contains]=${tag}_`), made.map((u) => u.username).sort());
    assert.deepEqual(await ids('createdAt[gte]=2999-01-01'), []);
    assert.equal((await ids('createdAt[lte]=2999-01-01T00:00:00Z')).length, 5);
    const one = (await get(`/admin/users?username=${tag}_1`)).json<Page<AdminUser>>().items[0];
    assert.deepEqual(one?.roles, ['moderator']);
    // LIKE wildcards match literally.
    const wildcard = await get('/admin/users?email[contains]=%25');
    assert.equal(wildcard.statusCode, 200, wildcard.body);
    assert.deepEqual(wildcard.json<Page<AdminUser>>().items, []);
    assert.deepEqual(await ids(`username[contains]=${tag}%5F%5F`), [], '_ is not a wildcard');

    // A cursor of one role's listing does not page another's.
    const first = (await get(`/admin/users?role=moderator&email[contains]=${tag}&limit=1`)).json<
      Page<AdminUser>
    >();
    assert.ok(first.page.nextCursor);
    assertProblem(
      await get(
        `/admin/users?role=user&email[contains]=${tag}&limit=1&cursor=${encodeURIComponent(first.page.nextCursor)}`,
      ),
      400,
      'INVALID_CURSOR',
    );
  });

  test('GET /admin/users refuses bad limits, cursors and filters', async () => {
    for (const query of [
      'limit=0',
      'limit=101',
      'limit=abc',
      'limit=-1',
      'locked=maybe',
      'createdAt[gte]=yesterday',
      'createdAt[eq]=2026-01-01',
      'password=x',
      'sort=password',
      'email[gt]=a',
      'role=Not%20A%20Role',
    ]) {
      assertProblem(await get(`/admin/users?${query}`), 422, 'INVALID_LIST_QUERY');
    }
    // A parameter given twice is refused by the schema already.
    for (const query of ['role=a&role=b', 'limit=1&limit=2', 'locked=true&locked=false'])
      assertProblem(await get(`/admin/users?${query}`), 422, 'VALIDATION_FAILED');
    for (const cursor of ['abc.def', 'x', 'a'.repeat(3000), '..']) {
      assertProblem(
        await get(`/admin/users?cursor=${encodeURIComponent(cursor)}`),
        400,
        'INVALID_CURSOR',
      );
    }
  });

  test('GET /admin/audit-events pages and filters by actor, subject and action', async () => {
    const user = await createUser(h);
    await send('PATCH', `/admin/users/${user.id}`, { locked: true });
    await send('PATCH', `/admin/users/${user.id}`, { locked: false });
    const res = await get(`/admin/audit-events?subjectId=${user.id}&limit=1`);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<Page<{ action: string; actorId: string; subjectType: string }>>();
    assert.equal(page.items[0]?.action, 'admin.user.unlock');
    assert.equal(page.items[0]?.actorId, adminUser.id);
    assert.equal(page.items[0]?.subjectType, 'user');
    assert.ok(page.page.nextCursor);
    const next = await get(
      `/admin/audit-events?subjectId=${user.id}&limit=1&cursor=${encodeURIComponent(page.page.nextCursor)}`,
    );
    assert.equal(next.json<Page<{ action: string }>>().items[0]?.action, 'admin.user.lock');
    const locks = await get(`/admin/audit-events?action=admin.user.lock&actorId=${adminUser.id}`);
    assert.ok(
      locks.json<Page<{ action: string }>>().items.every((e) => e.action === 'admin.user.lock'),
    );
    const both = await get(
      `/admin/audit-events?action[in]=admin.user.lock,admin.user.unlock&subjectId=${user.id}`,
    );
    assert.equal(both.json<Page<unknown>>().items.length, 2);
    for (const query of ['actorId=not-a-uuid', 'limit=0', 'occurredAt[gte]=soon', 'nope=1'])
      assertProblem(await get(`/admin/audit-events?${query}`), 422, 'INVALID_LIST_QUERY');
    assertProblem(await get('/admin/audit-events?cursor=abc.def'), 400, 'INVALID_CURSOR');
  });
});

describe('identity: the permission cache across processes', () => {
  /**
   * Two app instances on one database stand for two processes: each has its own cache, shared
   * only through Redis when given one. One signing key, so a token works on both.
   */
  async function twoProcesses(redis: Redis | null, overrides: Record<string, string>) {
    const h = await startIdentityHarness({
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      ...overrides,
    });
    const build = async () => {
      const app = await buildApp(h.config, {
        logger: pino({ level: 'silent' }),
        database: h.tdb.database,
        jobs: h.jobs,
        mail: h.mail,
        redis,
        apps: [],
      });
      await app.ready();
      return app;
    };
    const a = await build();
    const b = await build();
    const admin = (await signInAdmin(b, h)).headers;
    const moderator = await createUser(h);
    await grantRoles(h, moderator.id, 'moderator');
    const headers = bearer((await signIn(a, moderator)).accessToken);
    const auditOnA = () => a.inject({ url: '/api/v1/admin/audit-events', headers });
    // Cached in process A: no audit:read.
    assertProblem(await auditOnA(), 403, 'FORBIDDEN');
    const roles = await b.inject({ url: '/api/v1/admin/roles', headers: admin });
    const role = roles.json<{ items: Role[] }>().items.find((r) => r.name === 'moderator');
    assert.ok(role);
    const edit = await b.inject({
      method: 'PATCH',
      url: `/api/v1/admin/roles/${role.id}`,
      headers: admin,
      payload: { permissions: [...role.permissions, 'audit:read'] },
    });
    assert.equal(edit.statusCode, 200, edit.body);
    return {
      auditOnA,
      async close() {
        await a.close();
        await b.close();
        await h.close();
      },
    };
  }

  test('with Redis, a role edit in one process reaches the next request in another', async (t) => {
    const skip = await needsRedis();
    if (skip.skip) return t.skip(skip.skip);
    const prefix = `gwtest:rbac:${randomUUID()}:`;
    const config = testConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const redis = await connectRedis(config, pino({ level: 'silent' }));
    assert.ok(redis);
    const p = await twoProcesses(redis, { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    try {
      assert.equal((await p.auditOnA()).statusCode, 200);
    } finally {
      await p.close();
      await closeRedis(redis);
    }
  });

  test('without Redis, another process keeps its grants until AUTH_PERMISSION_CACHE_TTL (documented)', async () => {
    const p = await twoProcesses(null, { AUTH_PERMISSION_CACHE_TTL: '1s' });
    try {
      assertProblem(await p.auditOnA(), 403, 'FORBIDDEN');
      await sleep(1_100);
      assert.equal((await p.auditOnA()).statusCode, 200);
    } finally {
      await p.close();
    }
  });
});
