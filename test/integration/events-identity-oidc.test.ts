import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startIdentityHarness } from '../helpers/identity.ts';
import { PUBLIC_URL, type MailHarness } from '../helpers/mail.ts';
import { followToCallback, TestOpenIdProvider } from '../helpers/oidc.ts';

const CALLBACK_BASE = `${PUBLIC_URL}/api/v1/auth/oidc`;

describe('identity events: an account created at a first provider sign-in', () => {
  let h: MailHarness;
  const op = new TestOpenIdProvider();

  before(async () => {
    await op.start([`${CALLBACK_BASE}/idp/callback`]);
    h = await startIdentityHarness({
      AUTH_OIDC_PROVIDERS: JSON.stringify([
        {
          id: 'idp',
          kind: 'oidc',
          issuer: op.issuer,
          clientId: op.clientId,
          clientSecret: op.clientSecret,
        },
      ]),
    });
  });
  after(async () => {
    await h?.close();
    await op.stop();
  });

  test('publishes user.registered (method oidc, address verified) in the sign-in transaction', async () => {
    op.signInAs({
      sub: `op-events-${process.pid}`,
      email: `fed-events-${process.pid}@example.com`,
      email_verified: true,
      preferred_username: `fed_events_${process.pid}`,
    });
    const start = await h.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/idp/authorize' });
    assert.equal(start.statusCode, 302, start.body);
    const callback = await followToCallback(String(start.headers.location), CALLBACK_BASE);
    const res = await h.app.inject({
      method: 'GET',
      url: `${callback.pathname}${callback.search}`,
    });
    assert.equal(res.statusCode, 200, res.body);
    const { rows: users } = await h.tdb.database.pool.query<{ id: string; username: string }>(
      'select id, username from gw_user where email = $1',
      [`fed-events-${process.pid}@example.com`],
    );
    const user = users[0];
    assert.ok(user);
    const { rows } = await h.tdb.database.pool.query<{
      data: unknown;
      owner_id: string;
      request_id: string;
    }>(`select data, owner_id, request_id from gw_event where type = 'user.registered'`);
    assert.deepEqual(
      rows.map((r) => r.data),
      [{ userId: user.id, username: user.username, method: 'oidc', emailVerified: true }],
    );
    assert.equal(rows[0]?.owner_id, user.id);
    assert.equal(rows[0]?.request_id, res.headers['x-request-id']);
  });
});
