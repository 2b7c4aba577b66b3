import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  grantRoles,
  signIn,
  signInAdmin,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

/*
 * The last active holder of `admin` cannot be unassigned, locked or deleted (409 LAST_ADMIN),
 * through any API path, race-safe; the operator's `users grant-role` recovery still works.
 */
describe('identity: the last administrator stays', () => {
  let h: MailHarness;
  /** An operator: users:admin and roles:admin through a custom role, not `admin`. */
  let operator: Record<string, string>;
  before(async () => {
    h = await startIdentityHarness();
    const boot = await signInAdmin(h.app, h);
    const role = await h.app.inject({
      method: 'POST',
      url: '/api/v1/admin/roles',
      headers: boot.headers,
      payload: {
        name: 'operator',
        permissions: ['users:admin', 'users:read', 'roles:admin', 'roles:read'],
        mfaRequired: false,
      },
    });
    assert.equal(role.statusCode, 201, role.body);
    const op = await createUser(h);
    await grantRoles(h, op.id, 'operator');
    operator = bearer((await signIn(h.app, op)).accessToken);
    // Start every test with no admin at all: each one makes its own.
    await q(
      `delete from gw_user_role where role_id = (select id from gw_role where name = 'admin')`,
    );
  });
  after(() => h.close());

  const q = async <T>(text: string, values: unknown[] = []) =>
    (await h.tdb.database.pool.query<T & Record<string, unknown>>(text, values)).rows;
  const patchUser = (id: string, payload: unknown, headers = operator) =>
    h.app.inject({
      method: 'PATCH',
      url: `/api/v1/admin/users/${id}`,
      headers,
      payload: payload as object,
    });
  const resetAdmins = () =>
    q(`delete from gw_user_role where role_id = (select id from gw_role where name = 'admin')`);
  const newAdmin = async (): Promise<TestUser> => {
    const user = await createUser(h);
    await grantRoles(h, user.id, 'admin', 'user');
    return user;
  };
  const holdsAdmin = async (id: string) =>
    (
      await q(
        `select 1 from gw_user_role ur join gw_role r on r.id = ur.role_id where ur.user_id = $1 and r.name = 'admin'`,
        [id],
      )
    ).length === 1;

  test('unassigning admin from its last holder through PATCH /admin/users/:id is 409 LAST_ADMIN; with another admin it passes', async () => {
    await resetAdmins();
    const a = await newAdmin();
    const refused = await patchUser(a.id, { roles: ['user'] });
    const body = assertProblem(refused, 409, 'LAST_ADMIN');
    assert.match(body.detail ?? '', /last active holder/);
    assert.ok(await holdsAdmin(a.id), 'still admin');
    assert.equal(
      (await listAuditEvents(h.tdb.database.db, { action: 'admin.user.roles', subjectId: a.id }))
        .length,
      0,
    );

    const b = await newAdmin();
    const ok = await patchUser(a.id, { roles: ['user'] });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(await holdsAdmin(a.id), false);
    assertProblem(await patchUser(b.id, { roles: [] }), 409, 'LAST_ADMIN');
    // A change that keeps admin (adds a role) is not refused.
    assert.equal((await patchUser(b.id, { roles: ['admin', 'moderator'] })).statusCode, 200);
  });

  test('the last admin unassigning themselves is refused too (signed in as that admin)', async () => {
    await resetAdmins();
    const signed = await signInAdmin(h.app, h);
    const res = await patchUser(signed.user.id, { roles: ['user'] }, signed.headers);
    assertProblem(res, 409, 'LAST_ADMIN');
    assert.ok(await holdsAdmin(signed.user.id));
  });

  test('locking the last active admin is 409 LAST_ADMIN; an admin locked by an administrator does not count as active', async () => {
    await resetAdmins();
    const a = await newAdmin();
    assertProblem(await patchUser(a.id, { locked: true }), 409, 'LAST_ADMIN');
    const locked = await q<{ locked_until: Date | null }>(
      `select locked_until from gw_user where id = $1`,
      [a.id],
    );
    assert.equal(locked[0]?.locked_until, null, 'not locked');

    const b = await newAdmin();
    assert.equal((await patchUser(b.id, { locked: true })).statusCode, 200, 'another admin stays');
    // b is locked: a is the only active admin again.
    assertProblem(await patchUser(a.id, { locked: true }), 409, 'LAST_ADMIN');
    assertProblem(await patchUser(a.id, { roles: ['user'] }), 409, 'LAST_ADMIN');
    // Unlocking b makes a lockable.
    assert.equal((await patchUser(b.id, { locked: false })).statusCode, 200);
    assert.equal((await patchUser(a.id, { locked: true })).statusCode, 200);
    // A lockout after failed sign-ins ends by itself: such an admin still counts.
    await q(`update gw_user set locked_until = now() + interval '15 minutes' where id = $1`, [
      b.id,
    ]);
    assertProblem(await patchUser(b.id, { locked: true }), 409, 'LAST_ADMIN');
  });

  test('the last admin deleting their own account is 409 LAST_ADMIN', async () => {
    await resetAdmins();
    const signed = await signInAdmin(h.app, h);
    const res = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/users/me',
      headers: signed.headers,
    });
    assertProblem(res, 409, 'LAST_ADMIN');
    const row = await q<{ deleted_at: Date | null }>(
      `select deleted_at from gw_user where id = $1`,
      [signed.user.id],
    );
    assert.equal(row[0]?.deleted_at, null);
    await newAdmin();
    const again = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/users/me',
      headers: signed.headers,
    });
    assert.equal(again.statusCode, 204, again.body);
  });

  test('the role edit cannot take the admin role away from anyone: stripping its platform permissions or renaming it is 409, holders unchanged', async () => {
    await resetAdmins();
    const a = await newAdmin();
    const roles = await h.app.inject({ url: '/api/v1/admin/roles', headers: operator });
    const admin = roles
      .json<{ items: { id: string; name: string; permissions: string[] }[] }>()
      .items.find((r) => r.name === 'admin');
    assert.ok(admin);
    const strip = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/admin/roles/${admin.id}`,
      headers: operator,
      payload: { permissions: admin.permissions.filter((p) => p !== 'users:admin') },
    });
    assertProblem(strip, 409, 'ROLE_BUILTIN');
    const rename = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/admin/roles/${admin.id}`,
      headers: operator,
      payload: { name: 'former-admin' },
    });
    assertProblem(rename, 409, 'ROLE_BUILTIN');
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/admin/roles/${admin.id}`,
      headers: operator,
    });
    assertProblem(del, 409, 'ROLE_BUILTIN');
    assert.ok(await holdsAdmin(a.id));
    const perms = await q<{ permissions: string[] }>(
      `select permissions from gw_role where name = 'admin'`,
    );
    assert.ok(perms[0]?.permissions.includes('users:admin'));
  });

  test('race: unassigning one of two admins and locking the other at once: exactly one passes', async () => {
    for (let round = 0; round < 5; round += 1) {
      await resetAdmins();
      const a = await newAdmin();
      const b = await newAdmin();
      const [x, y] = await Promise.all([
        patchUser(a.id, { roles: ['user'] }),
        patchUser(b.id, { locked: true }),
      ]);
      const statuses = [x.statusCode, y.statusCode].sort();
      assert.deepEqual(statuses, [200, 409], `round ${round}: ${x.body} ${y.body}`);
      const active = await q(
        `select 1 from gw_user_role ur join gw_role r on r.id = ur.role_id join gw_user u on u.id = ur.user_id
          where r.name = 'admin' and u.deleted_at is null and (u.locked_until is null or u.locked_until <> 'infinity')`,
      );
      assert.equal(active.length, 1, 'one active admin left');
    }
  });

  test('the operator command still grants admin (the recovery when no admin can sign in)', async () => {
    await resetAdmins();
    const a = await newAdmin();
    await q(`update gw_user set locked_until = 'infinity' where id = $1`, [a.id]);
    const spare = await createUser(h);
    const admin = h.app.identity.admin;
    assert.ok(admin);
    const granted = await admin.grantRole(spare.email, 'admin');
    assert.deepEqual(granted, { userId: spare.id, added: true });
    assert.ok(await holdsAdmin(spare.id));
    const audit = await listAuditEvents(h.tdb.database.db, {
      action: 'admin.user.roles',
      subjectId: spare.id,
    });
    assert.equal(audit.length, 1);
    assert.equal((audit[0]?.data as { via?: string }).via, 'cli');
  });
});
