import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import type { TokenPair } from '../../src/platform/identity/index.ts';
import { bearer, createUser, signIn, startIdentityHarness } from '../helpers/identity.ts';
import { eventually, PUBLIC_URL, type MailHarness } from '../helpers/mail.ts';
import { followToCallback, TestOpenIdProvider, type ProviderAccount } from '../helpers/oidc.ts';
import { assertProblem } from '../helpers/problem.ts';

const CALLBACK_BASE = `${PUBLIC_URL}/api/v1/auth/oidc`;
let seq = 0;
const uniq = () => `${process.pid}l${(seq += 1)}`;

/*
 * Linking a provider identity while signed in needs a recent authentication (step-up); links and
 * unlinks are published (`user.provider_linked`, `user.provider_unlinked`) and mailed to the owner.
 */
describe('identity: linking a provider identity (step-up, events, mail)', () => {
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
    await h.close();
    await op.stop();
  });

  const sql = <R extends object>(text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<R>(text, values).then((r) => r.rows);
  const authorize = (headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/idp/authorize', headers });
  const account = (over: Partial<ProviderAccount> = {}): ProviderAccount => {
    const id = uniq();
    return {
      sub: `op-${id}`,
      email: `fed${id}@example.com`,
      email_verified: true,
      preferred_username: `Fed.User-${id}`,
      ...over,
    };
  };
  async function link(who: ProviderAccount, headers: Record<string, string> = {}) {
    op.signInAs(who);
    const res = await authorize(headers);
    assert.equal(res.statusCode, 302, res.body);
    const callback = await followToCallback(String(res.headers.location), CALLBACK_BASE);
    return h.app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}` });
  }
  const identitiesOf = (userId: string) =>
    sql<{ id: string }>(`select id from gw_user_identity where user_id = $1`, [userId]);
  const events = (type: string, userId: string) =>
    sql<{ data: Record<string, unknown> }>(
      `select data from gw_event where type = $1 and data->>'userId' = $2 order by id`,
      [type, userId],
    );
  const mailText = (to: string, template: string) =>
    eventually(`${template} to ${to}`, async () => {
      await (h.app.identity.notices as { drain?: () => Promise<void> }).drain?.();
      const rows = await sql<{ text: string }>(
        `select text from gw_mail_dev_message where recipient = $1 and template = $2`,
        [to, template],
      );
      return rows[0]?.text;
    });
  const age = async (userId: string, sessionId: string, seconds: number) => {
    await sql(
      `update gw_session set authenticated_at = now() - make_interval(secs => $2) where id = $1`,
      [sessionId, seconds],
    );
    await h.app.identity.sessionCache.invalidateSession(userId, sessionId);
  };

  test('signed in long ago: 403 REAUTHENTICATION_REQUIRED before any redirect or state; after POST /auth/reauthenticate the link goes through', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    await age(user.id, pair.sessionId, 3_600);
    const refused = await authorize(bearer(pair.accessToken));
    const problem = assertProblem(refused, 403, 'REAUTHENTICATION_REQUIRED');
    assert.equal((problem as { maxAge?: number }).maxAge, 600);
    assert.equal(refused.headers.location, undefined);
    assert.equal(
      (await sql(`select 1 from gw_oidc_state where link_user_id = $1`, [user.id])).length,
      0,
      'no linking flow was stored',
    );
    const reauth = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/reauthenticate',
      headers: bearer(pair.accessToken),
      payload: { password: user.password },
    });
    assert.equal(reauth.statusCode, 200, reauth.body);
    const res = await link(account({ email: `o${uniq()}@example.org` }), bearer(pair.accessToken));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, user.id);
    assert.equal((await identitiesOf(user.id)).length, 1);
  });

  test('a fresh sign-in may link: user.provider_linked (signed-in) and a mail naming the provider; anonymous sign-in is unaffected', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const res = await link(account({ email: `o${uniq()}@example.org` }), bearer(pair.accessToken));
    assert.equal(res.statusCode, 200, res.body);
    const [identity] = await identitiesOf(user.id);
    assert.ok(identity);
    assert.deepEqual(
      (await events('user.provider_linked', user.id)).map((e) => e.data),
      [{ userId: user.id, provider: 'idp', identityId: identity.id, via: 'signed-in' }],
    );
    const text = await mailText(user.email, 'identity.provider-linked');
    assert.match(text, /signed in to with idp/);
    // Without a token the flow is a sign-in, no step-up involved.
    assert.equal((await authorize()).statusCode, 302);
  });

  test('a provider-verified address linking to an existing account is published (verified-email) and mailed', async () => {
    const user = await createUser(h);
    const res = await link(account({ email: user.email }));
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      (await events('user.provider_linked', user.id)).map((e) => e.data.via),
      ['verified-email'],
    );
    await mailText(user.email, 'identity.provider-linked');
  });

  test('unlinking is published (user.provider_unlinked) and mailed', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    assert.equal((await link(account(), bearer(pair.accessToken))).statusCode, 200);
    const [identity] = await identitiesOf(user.id);
    assert.ok(identity);
    const res = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/identities/${identity.id}`,
      headers: bearer(pair.accessToken),
    });
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual(
      (await events('user.provider_unlinked', user.id)).map((e) => e.data),
      [{ userId: user.id, provider: 'idp', identityId: identity.id }],
    );
    assert.match(
      await mailText(user.email, 'identity.provider-unlinked'),
      /no longer be signed in to with idp/,
    );
  });
});
