import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MailHarness } from '../helpers/mail.ts';
import {
  GOOD_PASSWORD,
  createUser,
  login,
  mailedToken,
  mailsTo,
  startIdentityHarness,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

describe('identity: registration and email verification', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const register = (payload: unknown) =>
    h.app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: payload as object });

  test('a new account: 202, a verification mail; sign-in refused until the link is followed, once', async () => {
    const res = await register({
      email: 'Ada.Lovelace@Example.COM',
      username: 'Ada_Lovelace',
      password: GOOD_PASSWORD,
    });
    assert.equal(res.statusCode, 202, res.body);
    const { rows } = await h.tdb.database.pool.query<{
      email: string;
      username: string;
      password_hash: string;
    }>(`select email, username, password_hash from gw_user where username = 'ada_lovelace'`);
    assert.equal(rows[0]?.email, 'ada.lovelace@example.com', 'stored lowercased');
    assert.match(rows[0]?.password_hash ?? '', /^\$argon2id\$v=19\$m=64,t=1,p=1\$/);
    const creds = { login: 'ada.lovelace@example.com', password: GOOD_PASSWORD };
    assertProblem(await login(h.app, creds), 401, 'INVALID_CREDENTIALS');

    const token = await mailedToken(h, 'ada.lovelace@example.com');
    const { rows: tokens } = await h.tdb.database.pool.query<{ token_hash: string }>(
      'select token_hash from gw_user_token',
    );
    assert.ok(
      tokens.every((t) => t.token_hash !== token && /^[0-9a-f]{64}$/.test(t.token_hash)),
      'stored hashed',
    );
    const verify = () =>
      h.app.inject({ method: 'POST', url: '/api/v1/auth/verify-email', payload: { token } });
    const ok = await verify();
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { verified: true });
    assertProblem(await verify(), 400, 'INVALID_EMAIL_TOKEN');
    // Mixed case and the user name both sign in.
    assert.equal(
      (await login(h.app, { ...creds, login: 'ADA.LOVELACE@example.com' })).statusCode,
      200,
    );
    assert.equal((await login(h.app, { ...creds, login: 'Ada_Lovelace' })).statusCode, 200);
  });

  test('a taken address gets the same 202 and body, and a "someone tried" mail instead of an account', async () => {
    const owner = await createUser(h, { email: 'taken@example.com' });
    const fresh = await register({
      email: 'fresh@example.com',
      username: 'fresh_one',
      password: GOOD_PASSWORD,
    });
    const taken = await register({
      email: 'TAKEN@example.com',
      username: 'someone_else',
      password: GOOD_PASSWORD,
    });
    assert.equal(taken.statusCode, 202);
    assert.equal(taken.body, fresh.body);
    assert.deepEqual(Object.keys(taken.headers).sort(), Object.keys(fresh.headers).sort());
    assert.deepEqual(await mailsTo(h, owner.email), ['identity.register-attempt']);
    assert.deepEqual(await mailsTo(h, 'fresh@example.com'), ['identity.verify-email']);
    const { rowCount } = await h.tdb.database.pool.query(
      `select 1 from gw_user where username = 'someone_else'`,
    );
    assert.equal(rowCount, 0);
  });

  test('a taken user name is 409 (user names are public), whatever its case', async () => {
    await createUser(h, { username: 'grace' });
    const res = await register({
      email: 'g2@example.com',
      username: 'GRACE',
      password: GOOD_PASSWORD,
    });
    assertProblem(res, 409, 'USERNAME_TAKEN');
  });

  test('user names: 3-32 of a-z 0-9 _ . -, reserved ones refused; full-width forms normalised', async () => {
    for (const username of [
      'ab',
      'a'.repeat(33),
      'has space',
      'émile',
      'admin',
      'Root',
      '...',
      'x@y',
    ]) {
      const res = await register({ email: 'u@example.com', username, password: GOOD_PASSWORD });
      const body = assertProblem(res, 422, 'INVALID_USERNAME');
      assert.equal(body.errors?.[0]?.path, '/body/username', username);
    }
    const res = await register({
      email: 'wide@example.com',
      username: 'ｗｉｄｅ_ｏｎｅ',
      password: GOOD_PASSWORD,
    });
    assert.equal(res.statusCode, 202, res.body);
    const { rowCount } = await h.tdb.database.pool.query(
      `select 1 from gw_user where username = 'wide_one'`,
    );
    assert.equal(rowCount, 1);
  });

  test('emails: full-width forms fold onto ASCII; Cyrillic look-alikes and malformed addresses are refused', async () => {
    await createUser(h, { email: 'lookalike@example.com', username: 'lookalike' });
    // Full-width "ＬＯＯＫＡＬＩＫＥ" is the same address once normalised: treated as taken.
    const wide = await register({
      email: 'ＬＯＯＫＡＬＩＫＥ@example.com',
      username: 'lookalike2',
      password: GOOD_PASSWORD,
    });
    assert.equal(wide.statusCode, 202);
    assert.deepEqual(await mailsTo(h, 'lookalike@example.com'), ['identity.register-attempt']);
    for (const email of [
      'lооkalike@example.com' /* Cyrillic о */,
      'no-at-sign',
      'a@b',
      'a b@example.com',
      'a@exa mple.com',
      '"q"@example.com',
    ]) {
      const res = await register({ email, username: 'someone_new', password: GOOD_PASSWORD });
      assertProblem(res, 422, 'INVALID_EMAIL');
    }
  });

  test('passwords: short, common, made of the user name, over the maximum: 422 WEAK_PASSWORD; 10 MB: 413, never hashed', async () => {
    const cases = [
      'short-pw1!',
      'password1234',
      'iloveyou12345',
      'charlie_brown2024',
      `${'Zq9!'.repeat(33)}`,
    ];
    for (const password of cases) {
      const res = await register({
        email: 'charlie@example.com',
        username: 'charlie_brown',
        password,
      });
      const body = assertProblem(res, 422, 'WEAK_PASSWORD');
      assert.equal(body.errors?.[0]?.path, '/body/password');
    }
    const huge = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({
        email: 'big@example.com',
        username: 'big_one',
        password: 'x'.repeat(10 * 1024 * 1024),
      }),
    });
    assertProblem(huge, 413, 'PAYLOAD_TOO_LARGE');
    const long = await register({
      email: 'big@example.com',
      username: 'big_one',
      password: 'x'.repeat(5_000),
    });
    assertProblem(long, 422, 'VALIDATION_FAILED');
    const { rowCount } = await h.tdb.database.pool.query(
      `select 1 from gw_user where username in ('charlie_brown', 'big_one')`,
    );
    assert.equal(rowCount, 0);
  });

  test('passwords are compared in NFKC: one typed in full-width signs in as its ASCII form', async () => {
    const user = await createUser(h, { password: 'Ｖｉｏｌｅｔ-harbor-83-quantum' });
    assert.equal(
      (await login(h.app, { login: user.email, password: 'Violet-harbor-83-quantum' })).statusCode,
      200,
    );
    // And "e" + combining acute equals "é".
    const accented = await createUser(h, { password: 'caf\u00e9-harbor-83-quantum-mosaic' });
    assert.equal(
      (
        await login(h.app, {
          login: accented.email,
          password: 'cafe\u0301-harbor-83-quantum-mosaic',
        })
      ).statusCode,
      200,
    );
  });

  test('resend: 202 for unknown, verified and unverified addresses alike; only the unverified one gets mail', async () => {
    const verified = await createUser(h);
    const pending = await createUser(h, { verified: false });
    const bodies: string[] = [];
    for (const email of [
      'nobody@example.com',
      verified.email,
      pending.email.toUpperCase(),
      'not an address',
    ]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/verify-email/resend',
        payload: { email },
      });
      assert.equal(res.statusCode, 202, email);
      bodies.push(res.body);
    }
    assert.equal(new Set(bodies).size, 1);
    // The look-up and the mail run after the answer: wait for them before looking.
    await h.app.identity.service?.drain();
    assert.deepEqual(await mailsTo(h, verified.email), []);
    assert.deepEqual(await mailsTo(h, pending.email), ['identity.verify-email']);
    const token = await mailedToken(h, pending.email);
    assert.equal(
      (await h.app.inject({ method: 'POST', url: '/api/v1/auth/verify-email', payload: { token } }))
        .statusCode,
      200,
    );
  });

  test('verification tokens: unknown and expired ones are refused', async () => {
    const pending = await createUser(h, { verified: false });
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/verify-email/resend',
      payload: { email: pending.email },
    });
    const token = await mailedToken(h, pending.email);
    await h.tdb.database.pool.query(
      `update gw_user_token set expires_at = now() - interval '1 second' where user_id = $1`,
      [pending.id],
    );
    assertProblem(
      await h.app.inject({ method: 'POST', url: '/api/v1/auth/verify-email', payload: { token } }),
      400,
      'INVALID_EMAIL_TOKEN',
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/verify-email',
        payload: { token: 'x'.repeat(43) },
      }),
      400,
      'INVALID_EMAIL_TOKEN',
    );
  });
});

describe('identity: registration rate limits', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ RATE_LIMIT_ENABLED: 'true' });
  });
  after(() => h.close());

  test('register: 3 per hour per IP, then 429 RATE_LIMITED naming register-ip', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: `r${i}@example.com`, username: `reg_${i}`, password: GOOD_PASSWORD },
      });
      statuses.push(res.statusCode);
      if (res.statusCode === 429)
        assert.match(String(res.headers['ratelimit-policy']), /"register-ip";q=3;w=3600/);
    }
    assert.deepEqual(statuses, [202, 202, 202, 429]);
  });
});
