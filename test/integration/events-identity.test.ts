import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enabledModules } from '../../src/app.ts';
import { defineSubscriber, type DomainEvent } from '../../src/platform/events/index.ts';
import { identityMailTemplates } from '../../src/platform/identity/index.ts';
import { defineModule, type Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture } from '../helpers/app.ts';
import {
  bearer,
  createUser,
  GOOD_PASSWORD,
  mailedToken,
  signIn,
  signInAdmin,
} from '../helpers/identity.ts';
import { eventually, startMailHarness, type MailHarness } from '../helpers/mail.ts';

/** Every event the dispatcher hands over, as a subscriber module of the test sees it. */
const received: DomainEvent[] = [];
const watcher = defineModule({
  name: 'idevents',
  description: 'Records identity events (test).',
  subscribers: [
    defineSubscriber({
      name: 'idevents.recorder',
      events: [
        'user.registered',
        'user.email_verified',
        'user.deleted',
        'session.revoked',
        'role.granted',
        'role.revoked',
      ],
      handle: async (event) => {
        received.push(event);
        await Promise.resolve();
      },
    }),
  ],
});

describe('identity publishes its domain events', () => {
  let h: MailHarness;
  let dispatcher: Platform;

  /** The events of a type handed to the test subscriber about this user. */
  const handed = (type: string, userId: string) =>
    eventually(`${type} for ${userId}`, async () => {
      const found = received.filter(
        (e) => e.type === type && (e.data as { userId?: string }).userId === userId,
      );
      return found.length > 0 ? found : undefined;
    });

  before(async () => {
    h = await startMailHarness({ templates: identityMailTemplates });
    // The app's platform only publishes (no dispatcher): a worker on the same database dispatches.
    dispatcher = await createPlatform(h.config, {
      modules: enabledModules(h.config, [watcher]),
      database: h.tdb.database,
      connect: false,
      redis: null,
      work: true,
      logDestination: new LogCapture(),
    });
  });
  after(async () => {
    await dispatcher?.close();
    await h?.close();
  });

  test('register and verify through HTTP: user.registered then user.email_verified, ids and facts only', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'grace@example.com', username: 'grace_h', password: GOOD_PASSWORD },
    });
    assert.equal(res.statusCode, 202, res.body);
    const { rows } = await h.tdb.database.pool.query<{ id: string }>(
      `select id from gw_user where username = 'grace_h'`,
    );
    const userId = rows[0]?.id ?? '';
    const [registered] = await handed('user.registered', userId);
    assert.ok(registered);
    assert.deepEqual(registered.data, {
      userId,
      username: 'grace_h',
      method: 'password',
      emailVerified: false,
    });
    assert.deepEqual(registered.subject, { type: 'user', id: userId });
    assert.equal(registered.ownerId, userId);
    assert.equal(registered.actorId, userId);
    assert.equal(registered.requestId, res.headers['x-request-id']);
    assert.doesNotMatch(JSON.stringify(registered), /grace@example\.com|argon2/);

    const token = await mailedToken(h, 'grace@example.com');
    const verify = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/verify-email',
      payload: { token },
    });
    assert.equal(verify.statusCode, 200, verify.body);
    const [verified] = await handed('user.email_verified', userId);
    assert.deepEqual(verified?.data, { userId, via: 'link' });
    assert.equal(verified?.requestId, verify.headers['x-request-id']);
    assert.ok(!JSON.stringify(verified).includes(token), 'no token in the event');
  });

  test('a registration that fails (user name taken) publishes nothing', async () => {
    const before = received.length;
    const user = await createUser(h);
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'other@example.com', username: user.username, password: GOOD_PASSWORD },
    });
    assert.equal(res.statusCode, 409);
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from gw_event where type = 'user.registered' and data->>'username' = $1`,
      [user.username],
    );
    assert.equal(rows[0]?.n, 0);
    assert.equal(received.length, before);
  });

  test('revoking one of my sessions: session.revoked with the session and the reason', async () => {
    const user = await createUser(h);
    const first = await signIn(h.app, user);
    const second = await signIn(h.app, user);
    const res = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/sessions/${second.sessionId}`,
      headers: bearer(first.accessToken),
    });
    assert.equal(res.statusCode, 204, res.body);
    const [revoked] = await handed('session.revoked', user.id);
    assert.deepEqual(revoked?.data, {
      userId: user.id,
      sessionId: second.sessionId,
      reason: 'revoked',
    });
    assert.deepEqual(revoked?.subject, { type: 'session', id: second.sessionId });
    assert.equal(revoked?.ownerId, user.id);
  });

  test('deleting my account: user.deleted, and session.revoked for its sessions', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const res = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/users/me',
      headers: bearer(pair.accessToken),
    });
    assert.equal(res.statusCode, 204, res.body);
    const [deleted] = await handed('user.deleted', user.id);
    assert.deepEqual(deleted?.data, { userId: user.id });
    assert.equal(deleted?.actorId, user.id);
    const revoked = await handed('session.revoked', user.id);
    assert.deepEqual(
      revoked.map((e) => e.data),
      [{ userId: user.id, sessionId: pair.sessionId, reason: 'account-deleted' }],
    );
  });

  test('an admin changes roles: role.granted and role.revoked, the admin as actor', async () => {
    const admin = await signInAdmin(h.app, h);
    const user = await createUser(h);
    const patch = (roles: string[]) =>
      h.app.inject({
        method: 'PATCH',
        url: `/api/v1/admin/users/${user.id}`,
        headers: admin.headers,
        payload: { roles },
      });
    const granted = await patch(['user', 'moderator']);
    assert.equal(granted.statusCode, 200, granted.body);
    const [grant] = await handed('role.granted', user.id);
    assert.deepEqual(grant?.data, { userId: user.id, role: 'moderator' });
    assert.equal(grant?.actorId, admin.user.id);
    assert.equal(grant?.ownerId, user.id);
    await eventually('user and moderator granted', async () =>
      received.filter(
        (e) => e.type === 'role.granted' && (e.data as { userId: string }).userId === user.id,
      ).length === 2
        ? true
        : undefined,
    );

    assert.equal((await patch(['user'])).statusCode, 200);
    const [revoke] = await handed('role.revoked', user.id);
    assert.deepEqual(revoke?.data, { userId: user.id, role: 'moderator' });
  });

  test('every identity event type is in the catalog with its visibility', () => {
    const types = dispatcher.events.types().map((t) => t.type);
    for (const t of [
      'role.granted',
      'role.revoked',
      'session.revoked',
      'user.deleted',
      'user.email_verified',
      'user.registered',
    ])
      assert.ok(types.includes(t), t);
    const registered = dispatcher.events.types().find((t) => t.type === 'user.registered');
    assert.deepEqual(registered?.visibility, { permission: 'users:read', ownerVisible: true });
  });
});
