import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { purgeDeletedAccountsJob, identitySettings } from '../../src/platform/identity/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { PUBLIC_URL, eventually, type MailHarness } from '../helpers/mail.ts';
import {
  GOOD_PASSWORD,
  bearer,
  createUser,
  login,
  mailedToken,
  mailsTo,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

/** Distinct passwords zxcvbn scores at least 3. */
const pw = (n: number) => `orbit-Lantern-${n}7-cobalt-Meadow`;

describe('identity: password reset and change, history, step-up, profile, deletion', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const q = async <T>(text: string, values: unknown[] = []) =>
    (await h.tdb.database.pool.query<T & Record<string, unknown>>(text, values)).rows;
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });
  const me = (token: string) =>
    h.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(token) });
  const patchMe = (token: string, payload: unknown) =>
    h.app.inject({
      method: 'PATCH',
      url: '/api/v1/users/me',
      payload: payload as object,
      headers: bearer(token),
    });
  const deleteMe = (token: string) =>
    h.app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: bearer(token) });
  const forgot = (email: string) => post('/auth/password/forgot', { email });
  const reset = (token: string, password: string) =>
    post('/auth/password/reset', { token, password });
  const change = (token: string, currentPassword: string, newPassword: string) =>
    post('/auth/password/change', { currentPassword, newPassword }, bearer(token));
  const resetTokenFor = async (user: TestUser, after = 0) => {
    const res = await forgot(user.email);
    assert.equal(res.statusCode, 202, res.body);
    return mailedToken(h, user.email, 'identity.reset-password', after);
  };
  const failures = async (user: TestUser) =>
    (
      await q<{ n: number; locked: boolean }>(
        `select failed_login_count as n, coalesce(locked_until > now(), false) as locked
           from gw_user where id = $1`,
        [user.id],
      )
    )[0];
  const audits = (action: string, subjectId: string) =>
    listAuditEvents(h.tdb.database.db, { action, subjectId });
  const ageSession = (sessionId: string, seconds: number) =>
    q(`update gw_session set authenticated_at = now() - make_interval(secs => $2) where id = $1`, [
      sessionId,
      seconds,
    ]);

  /** What must not differ between the answers for a known and an unknown address. */
  const sameness = (res: {
    statusCode: number;
    headers: Record<string, unknown>;
    body: string;
  }) => ({
    status: res.statusCode,
    body: res.body,
    headers: Object.keys(res.headers)
      .filter((k) => !['x-request-id', 'date', 'content-length'].includes(k))
      .sort()
      .map((k) => `${k}: ${String(res.headers[k])}`),
  });

  // Forgot ---------------------------------------------------------------------------------------

  test('forgot: the same 202 for a known, an unknown and a malformed address, answered before any account work; only the account gets a link', async () => {
    const user = await createUser(h);
    const known = await forgot(user.email.toUpperCase());
    // Answered before the lookup: no reset token exists yet when the answer arrives (regression
    // guard: a route that awaited the mail would have committed its token by now).
    const early = await q(`select 1 from gw_user_token where user_id = $1`, [user.id]);
    assert.equal(early.length, 0, 'the answer did not wait for the account work');
    const unknown = await forgot('nobody-here@example.com');
    const malformed = await forgot('not an address');
    assert.equal(known.statusCode, 202, known.body);
    assert.deepEqual(sameness(unknown), sameness(known));
    assert.deepEqual(sameness(malformed), sameness(known));

    const token = await mailedToken(h, user.email, 'identity.reset-password');
    const text = (
      await q<{ text: string }>(
        `select text from gw_mail_dev_message where recipient = $1 and template = 'identity.reset-password'`,
        [user.email],
      )
    )[0]?.text;
    assert.ok(text?.includes(`${PUBLIC_URL}/reset-password?token=${token}`), text);
    const rows = await q<{ token_hash: string; purpose: string; ttl: number }>(
      `select token_hash, purpose, extract(epoch from expires_at - created_at)::int as ttl
         from gw_user_token where user_id = $1`,
      [user.id],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.purpose, 'reset-password');
    assert.match(rows[0]?.token_hash ?? '', /^[0-9a-f]{64}$/, 'stored as SHA-256');
    assert.notEqual(rows[0]?.token_hash, token);
    assert.ok(Math.abs((rows[0]?.ttl ?? 0) - 3_600) <= 2, 'AUTH_RESET_TOKEN_TTL: 1 hour');
    assert.deepEqual(await mailsTo(h, 'nobody-here@example.com'), []);
  });

  test('forgot: past the template send limit the answer is still the same 202 (the limit is swallowed)', async () => {
    const user = await createUser(h);
    for (let i = 0; i < 5; i++) assert.equal((await forgot(user.email)).statusCode, 202);
    await eventually('five reset mails', async () => (await mailsTo(h, user.email)).length === 5);
    const sixth = await forgot(user.email);
    assert.equal(sixth.statusCode, 202, sixth.body);
    await eventually('the sixth request to be handled', async () =>
      h.logs.text.includes('identity mail not sent: send limit reached'),
    );
    assert.equal((await mailsTo(h, user.email)).length, 5);
  });

  // Reset ----------------------------------------------------------------------------------------

  test('reset: weak, short, too long and 10 MB passwords are refused and leave the token usable; a good one ends every session, once', async () => {
    const user = await createUser(h);
    const a = await signIn(h.app, user);
    const b = await signIn(h.app, user);
    const token = await resetTokenFor(user);

    const common = await reset(token, 'password1234');
    assert.match(
      JSON.stringify(assertProblem(common, 422, 'WEAK_PASSWORD').errors),
      /\/body\/password/,
    );
    assertProblem(await reset(token, 'Zq9!x'), 422, 'WEAK_PASSWORD');
    assertProblem(await reset(token, 'Zq9!'.repeat(33)), 422, 'WEAK_PASSWORD');
    assertProblem(await reset(token, 'x'.repeat(5_000)), 422, 'VALIDATION_FAILED');
    assertProblem(await reset(token, 'x'.repeat(10 * 1024 * 1024)), 413, 'PAYLOAD_TOO_LARGE');
    assertProblem(await reset(token, user.password), 422, 'PASSWORD_REUSED');

    const ok = await reset(token, pw(1));
    assert.equal(ok.statusCode, 204, ok.body);
    for (const pair of [a, b]) {
      assertProblem(await me(pair.accessToken), 401, 'INVALID_ACCESS_TOKEN');
      assertProblem(
        await post('/auth/refresh', { refreshToken: pair.refreshToken }),
        401,
        'INVALID_REFRESH_TOKEN',
      );
    }
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    assert.equal((await login(h.app, { login: user.email, password: pw(1) })).statusCode, 200);
    assertProblem(await reset(token, pw(2)), 400, 'INVALID_RESET_TOKEN');
    const [event] = await audits('auth.password.reset', user.id);
    assert.equal(event?.actorId, user.id);
    assert.deepEqual(event?.data, { sessionsRevoked: 2 });
    assert.ok(event?.ip && event.requestId);
  });

  test('reset: garbage, empty and 10 KB tokens; unknown ones do not touch any account', async () => {
    const user = await createUser(h);
    await resetTokenFor(user);
    for (const garbage of ['garbage', 'x'.repeat(43), '../../etc/passwd', 'ä€😀', ' '])
      assertProblem(await reset(garbage, pw(3)), 400, 'INVALID_RESET_TOKEN');
    assertProblem(await reset('', pw(3)), 422, 'VALIDATION_FAILED');
    assertProblem(await reset('x'.repeat(10 * 1024), pw(3)), 422, 'VALIDATION_FAILED');
    assertProblem(
      await post('/auth/password/reset', { token: 'x'.repeat(43) }),
      422,
      'VALIDATION_FAILED',
    );
    assert.deepEqual(await failures(user), { n: 0, locked: false });
  });

  test('reset: expired and already-used tokens are one 400 and count towards the lockout; a valid one clears it', async () => {
    const user = await createUser(h);
    const used = await resetTokenFor(user);
    assert.equal((await reset(used, pw(4))).statusCode, 204);
    user.password = pw(4);
    const expired = await resetTokenFor(user, 0);
    await q(
      `update gw_user_token set expires_at = now() - interval '1 second' where user_id = $1`,
      [user.id],
    );
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await reset(i % 2 === 0 ? used : expired, pw(5));
      const body = assertProblem(res, 400, 'INVALID_RESET_TOKEN') as Record<string, unknown>;
      delete body.requestId;
      bodies.add(JSON.stringify(body));
    }
    assert.equal(bodies.size, 1, 'expired and used answer alike');
    assert.deepEqual(await failures(user), { n: 4, locked: false });
    assertProblem(await reset(expired, pw(5)), 400, 'INVALID_RESET_TOKEN');
    assert.equal((await failures(user))?.locked, true, 'the fifth failure locks the account');
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    assert.equal((await audits('auth.lockout', user.id)).length, 1);
    // A fresh link still works during the lock, and ends it.
    const fresh = await resetTokenFor(user);
    assert.equal((await reset(fresh, pw(6))).statusCode, 204);
    assert.deepEqual(await failures(user), { n: 0, locked: false });
    assert.equal((await login(h.app, { login: user.email, password: pw(6) })).statusCode, 200);
  });

  test('reset: two concurrent resets with one token: exactly one wins (the token is spent by a conditional update)', async () => {
    const user = await createUser(h);
    const token = await resetTokenFor(user);
    const results = await Promise.all([reset(token, pw(30)), reset(token, pw(31))]);
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [204, 400]);
    const winner = results[0]?.statusCode === 204 ? pw(30) : pw(31);
    assert.equal((await login(h.app, { login: user.email, password: winner })).statusCode, 200);
  });

  // Change ---------------------------------------------------------------------------------------

  test('change: a wrong current password is 401 and counts towards the lockout; locked, even the right one is refused', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    for (let i = 1; i <= 4; i++) {
      assertProblem(
        await change(pair.accessToken, 'not-my-password', pw(7)),
        401,
        'INVALID_CREDENTIALS',
      );
      assert.equal((await failures(user))?.n, i);
    }
    assertProblem(
      await change(pair.accessToken, 'not-my-password', pw(7)),
      401,
      'INVALID_CREDENTIALS',
    );
    assert.equal((await failures(user))?.locked, true);
    assertProblem(await change(pair.accessToken, user.password, pw(7)), 401, 'INVALID_CREDENTIALS');
    const outcomes = await q<{ outcome: string }>(
      `select outcome from gw_login_event where user_id = $1 order by created_at, id`,
      [user.id],
    );
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['success', 'failure', 'failure', 'failure', 'failure', 'failure', 'locked'],
    );
  });

  test('change: weak, short and 10 MB new passwords are refused; a good one ends the other sessions and keeps this one', async () => {
    const user = await createUser(h);
    const mine = await signIn(h.app, user);
    const other = await signIn(h.app, user);
    const weak = await change(mine.accessToken, user.password, 'password1234');
    assert.match(
      JSON.stringify(assertProblem(weak, 422, 'WEAK_PASSWORD').errors),
      /\/body\/newPassword/,
    );
    assertProblem(await change(mine.accessToken, user.password, 'short'), 422, 'WEAK_PASSWORD');
    assertProblem(
      await change(mine.accessToken, user.password, user.username + '2024!'),
      422,
      'WEAK_PASSWORD',
    );
    assertProblem(
      await change(mine.accessToken, user.password, 'x'.repeat(10 * 1024 * 1024)),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    assertProblem(
      await post('/auth/password/change', { newPassword: pw(8) }, bearer(mine.accessToken)),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await post('/auth/password/change', { currentPassword: user.password, newPassword: pw(8) }),
      401,
      'UNAUTHORIZED',
    );
    const ok = await change(mine.accessToken, user.password, pw(8));
    assert.equal(ok.statusCode, 204, ok.body);
    assert.equal((await me(mine.accessToken)).statusCode, 200, 'this session stays');
    assertProblem(await me(other.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    assert.equal((await login(h.app, { login: user.email, password: pw(8) })).statusCode, 200);
    const [event] = await audits('auth.password.change', user.id);
    assert.deepEqual(event?.data, { sessionsRevoked: 1 });
  });

  test('history: each of the last 5 passwords is refused (change and reset); the 6th-oldest is allowed again', async () => {
    const user = await createUser(h, { password: pw(10) });
    const pair = await signIn(h.app, user);
    let current = pw(10);
    for (const n of [11, 12, 13, 14, 15]) {
      assert.equal((await change(pair.accessToken, current, pw(n))).statusCode, 204);
      current = pw(n);
    }
    const stored = await q<{ password_hash: string }>(
      `select password_hash from gw_password_history where user_id = $1`,
      [user.id],
    );
    assert.equal(stored.length, 4, 'only what the check needs is kept');
    assert.ok(
      stored.every((r) => r.password_hash.startsWith('$argon2id$')),
      'hashes only',
    );
    // The last five: 11 (oldest of them) to 15 (current).
    for (const n of [11, 12, 13, 14, 15]) {
      const body = assertProblem(
        await change(pair.accessToken, current, pw(n)),
        422,
        'PASSWORD_REUSED',
      );
      assert.match(JSON.stringify(body.errors), /\/body\/newPassword/);
    }
    const token = await resetTokenFor(user);
    for (const n of [11, 15]) assertProblem(await reset(token, pw(n)), 422, 'PASSWORD_REUSED');
    assert.equal((await failures(user))?.n, 0, 'a reused password is no failed proof');
    // Unicode forms of a recent password are the same password.
    assertProblem(
      await change(pair.accessToken, current, pw(14).replace('L', '\uFF2C')),
      422,
      'PASSWORD_REUSED',
    );
    assert.equal((await change(pair.accessToken, current, pw(10))).statusCode, 204, '6th-oldest');
  });

  // Step-up --------------------------------------------------------------------------------------

  test('step-up: an authentication older than 10 minutes is 403 for deletion and email change; reauthenticate (wrong password counted) renews it', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    await ageSession(pair.sessionId, 601);
    const stale = assertProblem(await deleteMe(pair.accessToken), 403, 'REAUTHENTICATION_REQUIRED');
    assert.equal((stale as Record<string, unknown>).maxAge, 600);
    assertProblem(
      await patchMe(pair.accessToken, { email: 'new-address@example.com' }),
      403,
      'REAUTHENTICATION_REQUIRED',
    );
    assert.equal(
      (await patchMe(pair.accessToken, { username: `${user.username}x` })).statusCode,
      200,
      'a user name change needs no step-up',
    );
    assertProblem(
      await post('/auth/reauthenticate', { password: 'wrong-password' }, bearer(pair.accessToken)),
      401,
      'INVALID_CREDENTIALS',
    );
    assert.equal((await failures(user))?.n, 1);
    assertProblem(
      await post(
        '/auth/reauthenticate',
        { password: 'x'.repeat(10 * 1024 * 1024) },
        bearer(pair.accessToken),
      ),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    const sent = Date.now();
    const ok = await post(
      '/auth/reauthenticate',
      { password: user.password },
      bearer(pair.accessToken),
    );
    const answered = Date.now();
    assert.equal(ok.statusCode, 200, ok.body);
    const { authenticatedAt, maxAge } = ok.json<{ authenticatedAt: string; maxAge: number }>();
    // Between the request and its answer however long that took on a busy machine (the
    // database's clock is this machine's; a second either side for its rounding).
    const at = Date.parse(authenticatedAt);
    assert.ok(
      at >= sent - 1_000 && at <= answered + 1_000,
      `${authenticatedAt} ${sent} ${answered}`,
    );
    assert.equal(maxAge, 600);
    assert.equal((await failures(user))?.n, 0, 'a proven password clears the count');
    assert.equal((await audits('auth.reauthenticate', pair.sessionId)).length, 1);
    // Just inside the window passes.
    await ageSession(pair.sessionId, 590);
    assert.equal((await deleteMe(pair.accessToken)).statusCode, 204);
  });

  test('step-up: reauthenticate needs a signed-in session and refuses a locked account', async () => {
    assertProblem(await post('/auth/reauthenticate', { password: 'x' }), 401, 'UNAUTHORIZED');
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    await q(`update gw_user set locked_until = now() + interval '1 hour' where id = $1`, [user.id]);
    assertProblem(
      await post('/auth/reauthenticate', { password: user.password }, bearer(pair.accessToken)),
      401,
      'INVALID_CREDENTIALS',
    );
  });

  // Profile --------------------------------------------------------------------------------------

  test('profile: GET /users/me; user names are validated like registration, 409 when taken, audited', async () => {
    const user = await createUser(h);
    const other = await createUser(h);
    const pair = await signIn(h.app, user);
    const res = await me(pair.accessToken);
    assert.equal(res.statusCode, 200, res.body);
    const profile = res.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(profile).sort(), [
      'createdAt',
      'email',
      'emailVerified',
      'id',
      'tier',
      'username',
    ]);
    assert.deepEqual(
      { id: profile.id, email: profile.email, username: profile.username, tier: profile.tier },
      { id: user.id, email: user.email, username: user.username, tier: 'free' },
    );
    assert.equal(profile.emailVerified, true);
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/api/v1/users/me' }),
      401,
      'UNAUTHORIZED',
    );

    for (const bad of ['ab', 'admin', '...', 'has space', 'x'.repeat(33)])
      assertProblem(await patchMe(pair.accessToken, { username: bad }), 422, 'INVALID_USERNAME');
    assertProblem(await patchMe(pair.accessToken, {}), 422, 'VALIDATION_FAILED');
    assertProblem(
      await patchMe(pair.accessToken, { username: other.username.toUpperCase() }),
      409,
      'USERNAME_TAKEN',
    );
    const renamed = await patchMe(pair.accessToken, { username: 'Grace_Hopper_1906' });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json<{ username: string }>().username, 'grace_hopper_1906');
    const [renamedEvent] = await audits('user.username.change', user.id);
    // The field that changed, with its values redacted (the trail keeps no personal data).
    assert.deepEqual(renamedEvent?.data, {
      changes: { username: { from: '[redacted]', to: '[redacted]' } },
    });
    // The same name again changes nothing and records nothing.
    assert.equal(
      (await patchMe(pair.accessToken, { username: 'grace_hopper_1906' })).statusCode,
      200,
    );
    assert.equal((await audits('user.username.change', user.id)).length, 1);
  });

  test('email change: a link to the new address, the address switches only when it is followed, the old one is told', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    assertProblem(
      await patchMe(pair.accessToken, { email: 'not-an-address' }),
      422,
      'INVALID_EMAIL',
    );
    assertProblem(
      await patchMe(pair.accessToken, { email: 'аda@example.com' }),
      422,
      'INVALID_EMAIL',
    );
    // A first request (a typo, say) whose link the second one voids.
    assert.equal((await patchMe(pair.accessToken, { email: 'typo@example.com' })).statusCode, 202);
    const typo = await mailedToken(h, 'typo@example.com', 'identity.confirm-email-change');
    const res = await patchMe(pair.accessToken, { email: 'New.Home@Example.com' });
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json<{ status: string; user: { email: string } }>();
    assert.equal(body.status, 'accepted');
    assert.equal(body.user.email, user.email, 'not switched yet');
    const token = await mailedToken(h, 'new.home@example.com', 'identity.confirm-email-change');
    assert.equal((await me(pair.accessToken)).json<{ email: string }>().email, user.email);
    assertProblem(
      await post('/auth/email-change/confirm', { token: typo }),
      400,
      'INVALID_EMAIL_TOKEN',
    );
    assertProblem(
      await post('/auth/email-change/confirm', { token: 'garbage' }),
      400,
      'INVALID_EMAIL_TOKEN',
    );

    const ok = await post('/auth/email-change/confirm', { token });
    assert.equal(ok.statusCode, 200, ok.body);
    const after = (await me(pair.accessToken)).json<{ email: string; emailVerified: boolean }>();
    assert.deepEqual(after, { ...after, email: 'new.home@example.com', emailVerified: true });
    assertProblem(await post('/auth/email-change/confirm', { token }), 400, 'INVALID_EMAIL_TOKEN');
    // The notice to the old address is sent after the answer (SecurityMail): let it go out.
    await (h.app.identity.notices as { drain?: () => Promise<void> }).drain?.();
    assert.deepEqual(await mailsTo(h, user.email), ['identity.email-changed']);
    const notice = await eventually(
      'the notice to the old address',
      async () =>
        (
          await q<{ text: string }>(
            `select text from gw_mail_dev_message where recipient = $1 and template = 'identity.email-changed'`,
            [user.email],
          )
        )[0]?.text,
    );
    assert.match(notice, /n\*\*\*@example\.com/, 'the new address is masked');
    assert.ok(!notice.includes('new.home@'), notice);
    assert.equal((await audits('user.email.change', user.id)).length, 1);
    assert.equal(
      (await login(h.app, { login: 'new.home@example.com', password: user.password })).statusCode,
      200,
    );
  });

  test('email change to a taken address: the same 202, a notice to that address, nothing to confirm', async () => {
    const taken = await createUser(h);
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const free = await patchMe(pair.accessToken, { email: `free-${user.username}@example.com` });
    const res = await patchMe(pair.accessToken, { email: taken.email.toUpperCase() });
    assert.equal(res.statusCode, 202, res.body);
    assert.deepEqual(res.json(), free.json(), 'no enumeration');
    await eventually('the notice to the taken address', async () =>
      (await mailsTo(h, taken.email)).includes('identity.email-change-attempt'),
    );
    await mailedToken(h, `free-${user.username}@example.com`, 'identity.confirm-email-change');
    const tokens = await q<{ email: string; used: boolean }>(
      `select email, used_at is not null as used from gw_user_token where user_id = $1 and purpose = 'change-email'`,
      [user.id],
    );
    assert.deepEqual(
      tokens,
      [{ email: `free-${user.username}@example.com`, used: false }],
      'no link for the taken address',
    );
  });

  // Deletion and purge ---------------------------------------------------------------------------

  test('delete: sessions, refresh tokens and mailed tokens of a deleted account stop working; the address is free', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const resetToken = await resetTokenFor(user);
    await patchMe(pair.accessToken, { email: `moving-${user.username}@example.com` });
    const changeToken = await mailedToken(
      h,
      `moving-${user.username}@example.com`,
      'identity.confirm-email-change',
    );
    assertProblem(
      await h.app.inject({ method: 'DELETE', url: '/api/v1/users/me' }),
      401,
      'UNAUTHORIZED',
    );
    const res = await deleteMe(pair.accessToken);
    assert.equal(res.statusCode, 204, res.body);
    assertProblem(await me(pair.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    assertProblem(
      await post('/auth/refresh', { refreshToken: pair.refreshToken }),
      401,
      'INVALID_REFRESH_TOKEN',
    );
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    assertProblem(await reset(resetToken, pw(20)), 400, 'INVALID_RESET_TOKEN');
    assertProblem(
      await post('/auth/email-change/confirm', { token: changeToken }),
      400,
      'INVALID_EMAIL_TOKEN',
    );
    const [event] = await audits('user.delete', user.id);
    assert.equal(event?.actorId, user.id);
    // The address can be registered again at once; the user name stays taken until the purge.
    const again = await post('/auth/register', {
      email: user.email,
      username: `${user.username}b`,
      password: GOOD_PASSWORD,
    });
    assert.equal(again.statusCode, 202, again.body);
    assertProblem(
      await post('/auth/register', {
        email: 'x-' + user.email,
        username: user.username,
        password: GOOD_PASSWORD,
      }),
      409,
      'USERNAME_TAKEN',
    );
  });

  test('purge: removes accounts deleted longer ago than AUTH_ACCOUNT_RETENTION, and only those, with what hangs off them', async () => {
    const retention = identitySettings(h.config).accountRetentionS;
    assert.equal(retention, 30 * 86_400);
    const old = await createUser(h);
    const recent = await createUser(h);
    const live = await createUser(h);
    await signIn(h.app, old);
    await q(`update gw_user set deleted_at = now() - make_interval(secs => $2) where id = $1`, [
      old.id,
      retention + 60,
    ]);
    await q(`update gw_user set deleted_at = now() - make_interval(secs => $2) where id = $1`, [
      recent.id,
      retention - 60,
    ]);
    const job = purgeDeletedAccountsJob(retention);
    const ctx = {
      db: h.tdb.database.db,
      log: pino({ level: 'silent' }),
      requestId: null,
      signal: new AbortController().signal,
    } as unknown as JobContext;
    const result = await job.handler({}, ctx);
    assert.deepEqual(result, { purged: 1 });
    const left = (
      await q<{ id: string }>(`select id from gw_user where id = any($1)`, [
        [old.id, recent.id, live.id],
      ])
    ).map((r) => r.id);
    assert.deepEqual(left.sort(), [recent.id, live.id].sort());
    assert.equal((await q(`select 1 from gw_session where user_id = $1`, [old.id])).length, 0);
    assert.equal((await q(`select 1 from gw_login_event where user_id = $1`, [old.id])).length, 0);
    assert.equal((await audits('user.purge', old.id)).length, 1);
    assert.deepEqual(await job.handler({}, ctx), { purged: 0 }, 'nothing left to purge');
    assert.equal(job.options.cron?.expression, '29 4 * * *', 'daily');
  });
});
