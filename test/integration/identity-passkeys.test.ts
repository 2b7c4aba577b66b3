import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { PUBLIC_URL } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  login,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { FLAGS, SoftAuthenticator } from '../helpers/webauthn.ts';

const RP_ID = new URL(PUBLIC_URL).hostname;
const ORIGIN = new URL(PUBLIC_URL).origin;

interface Ceremony {
  ceremonyId: string;
  options: { challenge: string; user?: { id: string }; allowCredentials?: { id: string }[] };
}

describe('identity: passkeys (WebAuthn) as a passwordless sign-in and a second factor', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({
      method: 'POST',
      url: `/api/v1${url}`,
      ...(payload === undefined ? {} : { payload: payload as object }),
      headers,
    });
  const get = (url: string, headers: Record<string, string>) =>
    h.app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const sql = (text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<Record<string, unknown>>(text, values);

  async function registered(user: TestUser): Promise<{ key: SoftAuthenticator; token: string }> {
    const { accessToken } = await signIn(h.app, user);
    const key = new SoftAuthenticator(RP_ID, ORIGIN);
    const options = (
      await post('/auth/passkeys/register/options', undefined, bearer(accessToken))
    ).json<Ceremony>();
    const res = await post(
      '/auth/passkeys/register/verify',
      { ceremonyId: options.ceremonyId, name: 'Laptop', response: key.register(options.options) },
      bearer(accessToken),
    );
    assert.equal(res.statusCode, 201, res.body);
    return { key, token: accessToken };
  }

  async function loginCeremony(): Promise<Ceremony> {
    const res = await post('/auth/passkeys/login/options');
    assert.equal(res.statusCode, 200, res.body);
    return res.json<Ceremony>();
  }

  const amrOf = async (sessionId: string) =>
    (await sql('select amr from gw_session where id = $1', [sessionId])).rows[0]?.amr as string[];

  test('registration: options with attestation none and user verification required, stored, listed, audited, published', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const res = await post('/auth/passkeys/register/options', undefined, bearer(accessToken));
    assert.equal(res.statusCode, 200);
    const ceremony = res.json<Ceremony & { options: Record<string, unknown> }>();
    assert.equal(ceremony.options.attestation, 'none');
    assert.deepEqual(
      (ceremony.options.authenticatorSelection as Record<string, unknown>).userVerification,
      'required',
    );
    assert.equal((ceremony.options.rp as { id: string }).id, RP_ID);
    const key = new SoftAuthenticator(RP_ID, ORIGIN);
    const done = await post(
      '/auth/passkeys/register/verify',
      { ceremonyId: ceremony.ceremonyId, name: 'Phone', response: key.register(ceremony.options) },
      bearer(accessToken),
    );
    assert.equal(done.statusCode, 201, done.body);
    const body = done.json<{ passkey: { id: string; name: string }; backupCodes: string[] }>();
    assert.equal(body.passkey.name, 'Phone');
    assert.equal(body.backupCodes.length, 10, 'first factor: backup codes');
    const list = await get('/auth/passkeys', bearer(accessToken));
    assert.deepEqual(
      list.json<{ items: { id: string }[] }>().items.map((p) => p.id),
      [body.passkey.id],
    );
    const status = await get('/auth/mfa', bearer(accessToken));
    assert.equal(status.json<{ passkeys: unknown[] }>().passkeys.length, 1);
    const audit = await listAuditEvents(h.tdb.database.db, { subjectId: user.id });
    assert.ok(audit.some((e) => e.action === 'auth.passkey.add'));
    const events = await sql(`select type from gw_event where owner_id = $1`, [user.id]);
    assert.ok(events.rows.some((r) => r.type === 'user.passkey_added'));
    // The ceremony is single use.
    const again = await post(
      '/auth/passkeys/register/verify',
      {
        ceremonyId: ceremony.ceremonyId,
        response: new SoftAuthenticator(RP_ID, ORIGIN).register(ceremony.options),
      },
      bearer(accessToken),
    );
    assertProblem(again, 400, 'PASSKEY_REJECTED');
  });

  test('registration refuses a wrong challenge, another origin, another RP id, no user verification', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const cases: [string, (o: Ceremony['options'], k: SoftAuthenticator) => unknown][] = [
      ['wrong challenge', (o, k) => k.register(o, { challenge: 'AAAAAAAAAAAAAAAAAAAAAA' })],
      ['another origin', (o, k) => k.register(o, { origin: 'https://evil.example.test' })],
      ['another RP id', (o, k) => k.register(o, { rpId: 'evil.example.test' })],
      ['no user verification', (o, k) => k.register(o, { flags: FLAGS.UP | FLAGS.AT })],
    ];
    for (const [name, response] of cases) {
      const c = (
        await post('/auth/passkeys/register/options', undefined, bearer(accessToken))
      ).json<Ceremony>();
      const res = await post(
        '/auth/passkeys/register/verify',
        {
          ceremonyId: c.ceremonyId,
          response: response(c.options, new SoftAuthenticator(RP_ID, ORIGIN)),
        },
        bearer(accessToken),
      );
      assertProblem(res, 400, 'PASSKEY_REJECTED');
      assert.ok(res.statusCode === 400, name);
    }
    assert.equal(
      (await sql('select count(*)::int n from gw_passkey where user_id = $1', [user.id])).rows[0]
        ?.n,
      0,
    );
  });

  test('passwordless sign-in opens a normal session (amr hwk, otp); the session works', async () => {
    const user = await createUser(h);
    const { key } = await registered(user);
    const c = await loginCeremony();
    assert.equal(c.options.allowCredentials, undefined, 'discoverable: no credential list');
    const res = await post('/auth/passkeys/login/verify', {
      ceremonyId: c.ceremonyId,
      response: key.assert(c.options),
    });
    assert.equal(res.statusCode, 200, res.body);
    const pair = res.json<{ accessToken: string; refreshToken: string; sessionId: string }>();
    assert.deepEqual(await amrOf(pair.sessionId), ['hwk', 'otp']);
    const sessions = await get('/auth/sessions', bearer(pair.accessToken));
    assert.equal(sessions.statusCode, 200);
    const events = await sql(
      `select outcome from gw_login_event where user_id = $1 and session_id = $2`,
      [user.id, pair.sessionId],
    );
    assert.equal(events.rows[0]?.outcome, 'success');
    const refreshed = await post('/auth/refresh', { refreshToken: pair.refreshToken });
    assert.equal(refreshed.statusCode, 200);
  });

  test('passwordless refusals are one 401: wrong challenge, replay, another origin, unknown credential, lowered counter', async () => {
    const user = await createUser(h);
    const { key } = await registered(user);
    const bodies: string[] = [];
    const refuse = async (payload: unknown, why: string) => {
      const res = await post('/auth/passkeys/login/verify', payload);
      assertProblem(res, 401, 'PASSKEY_SIGN_IN_FAILED');
      const body = res.json<Record<string, unknown>>();
      delete body.requestId;
      bodies.push(JSON.stringify(body));
      assert.ok(true, why);
    };
    // Wrong challenge.
    let c = await loginCeremony();
    await refuse(
      {
        ceremonyId: c.ceremonyId,
        response: key.assert(c.options, { challenge: 'AAAAAAAAAAAAAAAAAAAAAA' }),
      },
      'challenge',
    );
    // Replay: a valid assertion used twice.
    c = await loginCeremony();
    const valid = key.assert(c.options);
    assert.equal(
      (await post('/auth/passkeys/login/verify', { ceremonyId: c.ceremonyId, response: valid }))
        .statusCode,
      200,
    );
    await refuse({ ceremonyId: c.ceremonyId, response: valid }, 'replay, same ceremony');
    const fresh = await loginCeremony();
    await refuse({ ceremonyId: fresh.ceremonyId, response: valid }, 'replay, new ceremony');
    // Another origin.
    c = await loginCeremony();
    await refuse(
      {
        ceremonyId: c.ceremonyId,
        response: key.assert(c.options, { origin: 'https://evil.example.test' }),
      },
      'origin',
    );
    // Unknown credential (enumeration-safe: the same answer).
    c = await loginCeremony();
    await refuse(
      {
        ceremonyId: c.ceremonyId,
        response: new SoftAuthenticator(RP_ID, ORIGIN).assert(c.options),
      },
      'unknown',
    );
    // Malformed client data (base64url of something that is not JSON).
    c = await loginCeremony();
    const broken = key.assert(c.options);
    broken.response.clientDataJSON = Buffer.from('not json').toString('base64url');
    await refuse({ ceremonyId: c.ceremonyId, response: broken }, 'malformed JSON');
    // An unknown ceremony id.
    await refuse(
      { ceremonyId: '0190a5c4-7b7e-7000-8000-0000000000ff', response: key.assert(c.options) },
      'ceremony',
    );
    assert.equal(new Set(bodies).size, 1, 'every refusal has the same body');
    // Lowered counter: refused, and the passkey is flagged (refused from then on).
    c = await loginCeremony();
    await refuse(
      { ceremonyId: c.ceremonyId, response: key.assert(c.options, { counter: 1 }) },
      'counter',
    );
    const flagged = await sql('select flagged_at from gw_passkey where user_id = $1', [user.id]);
    assert.ok(flagged.rows[0]?.flagged_at instanceof Date);
    c = await loginCeremony();
    await refuse({ ceremonyId: c.ceremonyId, response: key.assert(c.options) }, 'flagged');
    await sql('update gw_user set locked_until = null, failed_login_count = 0 where id = $1', [
      user.id,
    ]);
  });

  test('malformed base64url and missing fields are 422, never 500', async () => {
    const c = await loginCeremony();
    const key = new SoftAuthenticator(RP_ID, ORIGIN);
    const good = key.assert(c.options);
    for (const response of [
      { ...good, id: 'not base64url!' },
      { ...good, response: { ...good.response, signature: '***' } },
      { ...good, response: { clientDataJSON: good.response.clientDataJSON } },
      { ...good, type: 'password' },
    ]) {
      const res = await post('/auth/passkeys/login/verify', { ceremonyId: c.ceremonyId, response });
      assertProblem(res, 422, 'VALIDATION_FAILED');
    }
    assertProblem(
      await post('/auth/passkeys/login/verify', { ceremonyId: 'nope', response: good }),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('a locked account does not sign in with its passkey', async () => {
    const user = await createUser(h);
    const { key } = await registered(user);
    await sql(`update gw_user set locked_until = now() + interval '1 hour' where id = $1`, [
      user.id,
    ]);
    const c = await loginCeremony();
    assertProblem(
      await post('/auth/passkeys/login/verify', {
        ceremonyId: c.ceremonyId,
        response: key.assert(c.options),
      }),
      401,
      'PASSKEY_SIGN_IN_FAILED',
    );
  });

  test('second factor: a password sign-in asks for it, a passkey answers (amr pwd, hwk, otp)', async () => {
    const user = await createUser(h);
    const { key } = await registered(user);
    const first = await login(h.app, { login: user.email, password: user.password });
    const { mfaToken } = first.json<{ mfaToken: string }>();
    assert.ok(mfaToken, first.body);
    const opt = await post('/auth/passkeys/mfa/options', { mfaToken });
    const c = opt.json<Ceremony>();
    assert.deepEqual(
      c.options.allowCredentials?.map((a) => a.id),
      [key.id],
    );
    // Another origin: the uniform INVALID_MFA.
    assertProblem(
      await post('/auth/passkeys/mfa/verify', {
        mfaToken,
        ceremonyId: c.ceremonyId,
        response: key.assert(c.options, { origin: 'https://evil.example.test' }),
      }),
      401,
      'INVALID_MFA',
    );
    const c2 = (await post('/auth/passkeys/mfa/options', { mfaToken })).json<Ceremony>();
    // A passwordless ceremony does not answer an MFA challenge.
    const pw = await loginCeremony();
    assertProblem(
      await post('/auth/passkeys/mfa/verify', {
        mfaToken,
        ceremonyId: pw.ceremonyId,
        response: key.assert(pw.options),
      }),
      401,
      'INVALID_MFA',
    );
    const c3 = (await post('/auth/passkeys/mfa/options', { mfaToken })).json<Ceremony>();
    const ok = await post('/auth/passkeys/mfa/verify', {
      mfaToken,
      ceremonyId: c3.ceremonyId,
      response: key.assert(c3.options),
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(await amrOf(ok.json<{ sessionId: string }>().sessionId), [
      'pwd',
      'hwk',
      'otp',
    ]);
    // The challenge is spent: the second ceremony cannot be used now.
    assertProblem(
      await post('/auth/passkeys/mfa/verify', {
        mfaToken,
        ceremonyId: c2.ceremonyId,
        response: key.assert(c2.options),
      }),
      401,
      'INVALID_MFA',
    );
    // An unknown mfaToken still gets options (no enumeration), never a passing ceremony.
    const unknown = await post('/auth/passkeys/mfa/options', { mfaToken: 'unknown-token' });
    assert.equal(unknown.statusCode, 200);
    assert.deepEqual(unknown.json<Ceremony>().options.allowCredentials, []);
  });

  test('rename, and removal with step-up: other sessions end, this one stays, audited and published', async () => {
    const user = await createUser(h);
    const { key, token } = await registered(user);
    // With a passkey, a password sign-in needs the second factor: the other session comes from the passkey.
    const other = await login(h.app, { login: user.email, password: user.password });
    assert.equal(other.json<{ mfaRequired?: boolean }>().mfaRequired, true);
    const c = await loginCeremony();
    const otherPair = (
      await post('/auth/passkeys/login/verify', {
        ceremonyId: c.ceremonyId,
        response: key.assert(c.options),
      })
    ).json<{ accessToken: string }>();
    const list = (await get('/auth/passkeys', bearer(token))).json<{ items: { id: string }[] }>();
    const id = list.items[0]?.id ?? '';
    const renamed = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/auth/passkeys/${id}`,
      payload: { name: 'Work laptop' },
      headers: bearer(token),
    });
    assert.equal(renamed.json<{ name: string }>().name, 'Work laptop');
    assertProblem(
      await h.app.inject({
        method: 'PATCH',
        url: '/api/v1/auth/passkeys/0190a5c4-7b7e-7000-8000-0000000000ff',
        payload: { name: 'x' },
        headers: bearer(token),
      }),
      404,
      'PASSKEY_NOT_FOUND',
    );
    // An old authentication: step-up first.
    await sql(
      `update gw_session set authenticated_at = now() - interval '1 day' where user_id = $1`,
      [user.id],
    );
    await h.app.identity.sessionCache.invalidateUser(user.id);
    const refused = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/passkeys/${id}`,
      headers: bearer(token),
    });
    assertProblem(refused, 403, 'REAUTHENTICATION_REQUIRED');
    await sql(`update gw_session set authenticated_at = now() where user_id = $1`, [user.id]);
    await h.app.identity.sessionCache.invalidateUser(user.id);
    const removed = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/passkeys/${id}`,
      headers: bearer(token),
    });
    assert.equal(removed.statusCode, 204, removed.body);
    assert.equal(
      (await get('/auth/sessions', bearer(token))).statusCode,
      200,
      'this session stays',
    );
    assert.equal(
      (await get('/auth/sessions', bearer(otherPair.accessToken))).statusCode,
      401,
      'the other ended',
    );
    const events = await sql(`select type from gw_event where owner_id = $1`, [user.id]);
    assert.ok(events.rows.some((r) => r.type === 'user.passkey_removed'));
    // No factor left: the backup codes went too, and the password signs in alone.
    assert.equal(
      (await sql('select count(*)::int n from gw_mfa_backup_code where user_id = $1', [user.id]))
        .rows[0]?.n,
      0,
    );
    assert.ok((await signIn(h.app, user)).accessToken);
  });
});
