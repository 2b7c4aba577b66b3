import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import {
  hashToken,
  MfaService,
  PasswordHasher,
  identitySettings,
} from '../../src/platform/identity/index.ts';
import { createLogger } from '../../src/platform/observability/index.ts';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  login,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

const STEP_MS = 30_000;

/** The code of the step `offset` steps from now: time moved in the generator, never slept. */
function codeAt(secret: string, offset = 0): string {
  const totp = new TOTP({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  });
  return totp.generate({ timestamp: Date.now() + offset * STEP_MS });
}

/** A 6-digit code valid at none of the steps the server accepts now. */
function wrongCode(secret: string, salt = 0): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((o) => codeAt(secret, o)));
  for (let n = 100_000 + salt * 7_919; ; n = (n + 104_729) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

/**
 * Tests that spend the steps around now (previous, current, next) must not straddle a step
 * change: this waits (at most 4 s) when the current step is about to end.
 */
async function awayFromStepEdge(): Promise<void> {
  const left = STEP_MS - (Date.now() % STEP_MS);
  if (left < 4_000) await sleep(left + 50);
}

/** The parts of a 401 that must not differ between the reasons a second factor was refused. */
function sameness(res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  const body = JSON.parse(res.body) as Record<string, unknown>;
  delete body.requestId;
  const headers = Object.keys(res.headers)
    .filter((k) => !['x-request-id', 'date', 'content-length'].includes(k))
    .sort()
    .map((k) => `${k}: ${k.startsWith('ratelimit') ? '' : String(res.headers[k])}`);
  return { status: res.statusCode, body, headers };
}

describe('identity: multi-factor authentication (TOTP, backup codes, sign-in challenge)', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });
  const get = (url: string, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const verify = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    post('/auth/mfa/verify', body, headers);

  async function mfaToken(user: TestUser, headers: Record<string, string> = {}): Promise<string> {
    const res = await login(h.app, { login: user.email, password: user.password }, headers);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ mfaRequired: boolean; mfaToken: string }>();
    assert.deepEqual(Object.keys(body).sort(), ['mfaRequired', 'mfaToken']);
    assert.equal(body.mfaRequired, true);
    return body.mfaToken;
  }

  /** A user with TOTP enabled, the code of the previous step spent on enabling it. */
  async function enrolled(): Promise<{
    user: TestUser;
    secret: string;
    backupCodes: string[];
    access: string;
  }> {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const setup = await post('/auth/mfa/totp/setup', {}, bearer(accessToken));
    assert.equal(setup.statusCode, 200, setup.body);
    const { secret } = setup.json<{ secret: string }>();
    const enable = await post(
      '/auth/mfa/totp/enable',
      { code: codeAt(secret, -1) },
      bearer(accessToken),
    );
    assert.equal(enable.statusCode, 200, enable.body);
    return {
      user,
      secret,
      backupCodes: enable.json<{ backupCodes: string[] }>().backupCodes,
      access: accessToken,
    };
  }

  const userRow = async (id: string) =>
    (
      await h.tdb.database.pool.query<{ failed_login_count: number; locked: boolean }>(
        `select failed_login_count, coalesce(locked_until > now(), false) as locked from gw_user where id = $1`,
        [id],
      )
    ).rows[0];

  test('setup returns a base32 secret, its otpauth URI and a QR SVG; the secret is stored sealed and stays pending', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const res = await post('/auth/mfa/totp/setup', {}, bearer(accessToken));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json<{ secret: string; otpauthUri: string; qrSvg: string }>();
    assert.match(body.secret, /^[A-Z2-7]{32}$/);
    const uri = new URL(body.otpauthUri);
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(decodeURIComponent(uri.pathname), `/Groundwork:${user.email}`);
    assert.equal(uri.searchParams.get('secret'), body.secret);
    assert.equal(uri.searchParams.get('issuer'), 'Groundwork');
    assert.equal(uri.searchParams.get('digits'), '6');
    assert.equal(uri.searchParams.get('period'), '30');
    assert.match(body.qrSvg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\s*$/);
    const { rows } = await h.tdb.database.pool.query<{ secret_sealed: string; enabled_at: null }>(
      `select secret_sealed, enabled_at from gw_mfa_totp where user_id = $1`,
      [user.id],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.enabled_at, null);
    assert.ok(!rows[0]?.secret_sealed.includes(body.secret), 'the secret is not stored in clear');
    const status = await get('/auth/mfa', bearer(accessToken));
    assert.deepEqual(status.json(), {
      totpEnabled: false,
      backupCodesLeft: 0,
      sms: null,
      passkeys: [],
    });
    // Pending is not enabled: sign-in still returns tokens.
    assert.ok('accessToken' in (await signIn(h.app, user)));
    const [event] = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.setup',
    });
    assert.equal(event?.actorId, user.id);
    assert.equal(event?.requestId, res.headers['x-request-id']);
    assert.equal(event?.ip, '127.0.0.1');
    assert.ok(!JSON.stringify(event?.data).includes(body.secret));
    // The MFA routes need a signed-in user.
    assertProblem(await post('/auth/mfa/totp/setup', {}), 401, 'UNAUTHORIZED');
    assertProblem(await get('/auth/mfa'), 401, 'UNAUTHORIZED');
  });

  test('enable: without setup 409, malformed codes 422, a wrong code 403 whose detail says what enabling needs; a valid code returns 10 single-use backup codes once', async () => {
    await awayFromStepEdge();
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const auth = bearer(accessToken);
    assertProblem(
      await post('/auth/mfa/totp/enable', { code: '123456' }, auth),
      409,
      'MFA_NOT_SET_UP',
    );
    const { secret } = (await post('/auth/mfa/totp/setup', {}, auth)).json<{ secret: string }>();
    for (const code of ['12345', 'abcdef', '12345a', '1234567', '', ' 123456', '１２３４５６']) {
      const res = await post('/auth/mfa/totp/enable', { code }, auth);
      assertProblem(res, 422, 'VALIDATION_FAILED');
    }
    assertProblem(await post('/auth/mfa/totp/enable', {}, auth), 422, 'VALIDATION_FAILED');
    const rejected = assertProblem(
      await post('/auth/mfa/totp/enable', { code: wrongCode(secret) }, auth),
      403,
      'MFA_REJECTED',
    );
    // Regression: the 403 described another route's needs (password and code) instead of this one's.
    assert.match(rejected.detail, /POST \/auth\/mfa\/totp\/setup/);
    assert.match(rejected.detail, /No password or backup code is needed/);
    const res = await post('/auth/mfa/totp/enable', { code: codeAt(secret) }, auth);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['cache-control'], 'no-store');
    const { backupCodes } = res.json<{ backupCodes: string[] }>();
    assert.equal(backupCodes.length, 10);
    assert.equal(new Set(backupCodes).size, 10);
    for (const c of backupCodes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
    const { rows } = await h.tdb.database.pool.query<{ code_hash: string }>(
      `select code_hash from gw_mfa_backup_code where user_id = $1`,
      [user.id],
    );
    assert.equal(rows.length, 10);
    for (const r of rows)
      for (const c of backupCodes)
        assert.ok(!r.code_hash.includes(c.replace('-', '')), 'codes are stored hashed');
    assert.deepEqual((await get('/auth/mfa', auth)).json(), {
      totpEnabled: true,
      backupCodesLeft: 10,
      sms: null,
      passkeys: [],
    });
    // The code that enabled it is spent, and a second enable or setup is a conflict.
    assertProblem(
      await post('/auth/mfa/totp/enable', { code: codeAt(secret) }, auth),
      409,
      'MFA_ALREADY_ENABLED',
    );
    assertProblem(await post('/auth/mfa/totp/setup', {}, auth), 409, 'MFA_ALREADY_ENABLED');
    const [event] = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.enable',
    });
    assert.deepEqual(event?.data, { method: 'totp', backupCodes: 10 });
  });

  test('sign-in with MFA: login answers {mfaRequired, mfaToken}; verify with a code gives the pair and a session with amr pwd+otp', async () => {
    await awayFromStepEdge();
    const { user, secret } = await enrolled();
    const token = await mfaToken(user, { 'user-agent': 'mfa-test/1.0' });
    const { rows: stored } = await h.tdb.database.pool.query<{ token_hash: string }>(
      `select token_hash from gw_mfa_challenge where user_id = $1`,
      [user.id],
    );
    assert.ok(stored.length > 0 && stored.every((r) => r.token_hash !== token), 'stored hashed');
    const res = await verify(
      { mfaToken: token, code: codeAt(secret) },
      { 'user-agent': 'mfa-test/1.0' },
    );
    assert.equal(res.statusCode, 200, res.body);
    const pair = res.json<{ accessToken: string; sessionId: string; tokenType: string }>();
    assert.equal(pair.tokenType, 'Bearer');
    const { rows } = await h.tdb.database.pool.query<{ amr: string[]; age_s: number }>(
      `select amr, extract(epoch from now() - authenticated_at)::float8 as age_s from gw_session where id = $1`,
      [pair.sessionId],
    );
    assert.deepEqual(rows[0]?.amr, ['pwd', 'otp']);
    assert.ok((rows[0]?.age_s ?? 99) < 5);
    assert.equal((await get('/auth/sessions', bearer(pair.accessToken))).statusCode, 200);
    // A spent mfaToken does not work again, even with a fresh valid code.
    const again = await verify(
      { mfaToken: token, code: codeAt(secret, 1) },
      { 'user-agent': 'mfa-test/1.0' },
    );
    assertProblem(again, 401, 'INVALID_MFA');
  });

  test('step-up with MFA on: re-authentication needs a code or backup code besides the password, and records otp', async () => {
    await awayFromStepEdge();
    const { user, secret, backupCodes, access } = await enrolled();
    const reauth = (body: Record<string, unknown>) =>
      post('/auth/reauthenticate', body, bearer(access));
    const before = (await userRow(user.id))?.failed_login_count ?? 0;
    // Password alone, a wrong code, both factors: refused; the first two like a wrong password.
    assertProblem(await reauth({ password: user.password }), 401, 'INVALID_CREDENTIALS');
    assertProblem(
      await reauth({ password: user.password, code: wrongCode(secret) }),
      401,
      'INVALID_CREDENTIALS',
    );
    assert.ok(((await userRow(user.id))?.failed_login_count ?? 0) > before, 'counted');
    assertProblem(
      await reauth({ password: user.password, code: codeAt(secret), backupCode: backupCodes[0] }),
      422,
      'VALIDATION_FAILED',
    );
    // A wrong password with a valid code is refused too, and does not spend the code.
    assertProblem(
      await reauth({ password: `${user.password}x`, code: codeAt(secret) }),
      401,
      'INVALID_CREDENTIALS',
    );
    const ok = await reauth({ password: user.password, code: codeAt(secret) });
    assert.equal(ok.statusCode, 200, ok.body);
    const session = await h.tdb.database.pool.query<{ amr: string[] }>(
      `select s.amr from gw_session s where s.user_id = $1 and s.revoked_at is null order by s.created_at limit 1`,
      [user.id],
    );
    assert.deepEqual([...(session.rows[0]?.amr ?? [])].sort(), ['otp', 'pwd']);
    const withBackup = await reauth({ password: user.password, backupCode: backupCodes[1] });
    assert.equal(withBackup.statusCode, 200, withBackup.body);
  });

  test('regression: a TOTP code replayed in its window is refused, and so is a code of an earlier step', async () => {
    await awayFromStepEdge();
    const { user, secret } = await enrolled(); // step -1 spent by enabling
    const now = codeAt(secret);
    assert.equal((await verify({ mfaToken: await mfaToken(user), code: now })).statusCode, 200);
    assertProblem(await verify({ mfaToken: await mfaToken(user), code: now }), 401, 'INVALID_MFA');
    assertProblem(
      await verify({ mfaToken: await mfaToken(user), code: codeAt(secret, -1) }),
      401,
      'INVALID_MFA',
    );
    // The next step is still in the window and not used yet.
    assert.equal(
      (await verify({ mfaToken: await mfaToken(user), code: codeAt(secret, 1) })).statusCode,
      200,
    );
    // Two steps ahead is outside the window.
    assertProblem(
      await verify({ mfaToken: await mfaToken(user), code: codeAt(secret, 3) }),
      401,
      'INVALID_MFA',
    );
  });

  test('regression: a backup code works once (any case, with or without the dash); the second use is refused', async () => {
    const { user, backupCodes } = await enrolled();
    const [first, second] = backupCodes as [string, string];
    const res = await verify({ mfaToken: await mfaToken(user), backupCode: first });
    assert.equal(res.statusCode, 200, res.body);
    const { rows } = await h.tdb.database.pool.query<{ amr: string[] }>(
      `select amr from gw_session where id = $1`,
      [res.json<{ sessionId: string }>().sessionId],
    );
    assert.deepEqual(rows[0]?.amr, ['pwd', 'otp']);
    assertProblem(
      await verify({ mfaToken: await mfaToken(user), backupCode: first }),
      401,
      'INVALID_MFA',
    );
    const typed = second.replace('-', '').toUpperCase();
    assert.equal(
      (await verify({ mfaToken: await mfaToken(user), backupCode: typed })).statusCode,
      200,
    );
    const { accessToken } = await signInWithBackup(user, backupCodes[2] as string);
    assert.deepEqual((await get('/auth/mfa', bearer(accessToken))).json(), {
      totpEnabled: true,
      backupCodesLeft: 7,
      sms: null,
      passkeys: [],
    });
    const used = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.backup-code-used',
    });
    assert.equal(used.length, 3);
    assert.deepEqual(used[0]?.data, { flow: 'sign-in', left: 7 });
  });

  async function signInWithBackup(user: TestUser, backupCode: string) {
    const res = await verify({ mfaToken: await mfaToken(user), backupCode });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ accessToken: string }>();
  }

  test('regression: the same code or backup code sent twice at once is accepted once', async () => {
    await awayFromStepEdge();
    const { user, secret, backupCodes } = await enrolled();
    const code = codeAt(secret);
    const [t1, t2, t3, t4] = [
      await mfaToken(user),
      await mfaToken(user),
      await mfaToken(user),
      await mfaToken(user),
    ];
    const byCode = await Promise.all([
      verify({ mfaToken: t1, code }),
      verify({ mfaToken: t2, code }),
    ]);
    assert.deepEqual(byCode.map((r) => r.statusCode).sort(), [200, 401]);
    const byBackup = await Promise.all([
      verify({ mfaToken: t3, backupCode: backupCodes[0] }),
      verify({ mfaToken: t4, backupCode: backupCodes[0] }),
    ]);
    assert.deepEqual(byBackup.map((r) => r.statusCode).sort(), [200, 401]);
    // One mfaToken raced with two valid factors still makes one session.
    const t5 = await mfaToken(user);
    const byToken = await Promise.all([
      verify({ mfaToken: t5, code: codeAt(secret, 1) }),
      verify({ mfaToken: t5, backupCode: backupCodes[1] }),
    ]);
    assert.deepEqual(byToken.map((r) => r.statusCode).sort(), [200, 401]);
  });

  test('verify refuses malformed input with 422 and every bad token or code with one identical 401 INVALID_MFA', async () => {
    await awayFromStepEdge();
    const { user, secret, backupCodes } = await enrolled();
    const other = await enrolled();
    const token = await mfaToken(user);
    for (const code of ['12345', 'abcdef', '1234567', '', '12 345', 123456.5]) {
      assertProblem(await verify({ mfaToken: token, code }), 422, 'VALIDATION_FAILED');
    }
    for (const backupCode of ['', 'abcd', 'abcde-fghijk', 'abcde_fghij', 'abcde--fghij']) {
      assertProblem(await verify({ mfaToken: token, backupCode }), 422, 'VALIDATION_FAILED');
    }
    assertProblem(
      await verify({ mfaToken: token, code: codeAt(secret), backupCode: backupCodes[0] }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(await verify({ mfaToken: token }), 422, 'VALIDATION_FAILED');
    assertProblem(await verify({ code: codeAt(secret) }), 422, 'VALIDATION_FAILED');
    assertProblem(await verify({ mfaToken: '', code: codeAt(secret) }), 422, 'VALIDATION_FAILED');
    assert.equal((await userRow(user.id))?.failed_login_count, 0, 'malformed input is not counted');

    const expired = await mfaToken(user);
    await h.tdb.database.pool.query(
      `update gw_mfa_challenge set expires_at = now() - interval '1 second' where token_hash = $1`,
      [hashToken(expired)],
    );
    const otherUa = await mfaToken(user, { 'user-agent': 'device-a' });
    const answers = [
      // A code of the right user at a wrong moment, and plain wrong ones.
      await verify({ mfaToken: token, code: wrongCode(secret) }),
      await verify({ mfaToken: token, backupCode: 'zzzzz-zzzzz' }),
      // Garbage, expired, and another client's token.
      await verify({ mfaToken: 'garbage', code: codeAt(secret) }),
      await verify({ mfaToken: 'A'.repeat(43), code: codeAt(secret) }),
      await verify({ mfaToken: expired, code: codeAt(secret) }),
      await verify({ mfaToken: otherUa, code: codeAt(secret) }, { 'user-agent': 'device-b' }),
      // Another user's valid code (and backup code) against this user's token.
      await verify({ mfaToken: token, code: codeAt(other.secret) }),
      await verify({ mfaToken: token, backupCode: other.backupCodes[0] }),
    ];
    const first = sameness(answers[0] as never);
    for (const res of answers) {
      assertProblem(res, 401, 'INVALID_MFA');
      assert.deepEqual(sameness(res as never), first);
    }
    // The token survived the wrong codes (spent only by success), and the failures were counted.
    assert.equal((await userRow(user.id))?.failed_login_count, 4);
    assert.equal((await verify({ mfaToken: token, code: codeAt(secret) })).statusCode, 200);
    assert.equal((await userRow(user.id))?.failed_login_count, 0, 'a success clears the counter');
    // The other user's backup code was not spent by being tried on this account.
    assert.equal(
      (await verify({ mfaToken: await mfaToken(other.user), backupCode: other.backupCodes[0] }))
        .statusCode,
      200,
    );
    const failures = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.failure',
    });
    assert.equal(failures.length, 4);
    assert.equal(failures[0]?.actorId, null);
  });

  test('wrong codes lock the account like wrong passwords; from the 6th on every answer is identical, a valid code included', async () => {
    await awayFromStepEdge();
    const { user, secret } = await enrolled();
    const token = await mfaToken(user);
    const answers = [];
    for (let i = 0; i < 5; i++)
      answers.push(await verify({ mfaToken: token, code: wrongCode(secret, i) }));
    assert.equal((await userRow(user.id))?.locked, true);
    answers.push(await verify({ mfaToken: token, code: wrongCode(secret, 9) }));
    answers.push(await verify({ mfaToken: token, code: codeAt(secret) }));
    answers.push(await verify({ mfaToken: 'garbage', code: codeAt(secret) }));
    const first = sameness(answers[0] as never);
    for (const res of answers) {
      assertProblem(res, 401, 'INVALID_MFA');
      assert.deepEqual(sameness(res as never), first);
    }
    // Locked: the password alone is refused too, as for any locked account.
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    const { rows } = await h.tdb.database.pool.query<{ outcome: string }>(
      `select outcome from gw_login_event where user_id = $1 order by created_at, id`,
      [user.id],
    );
    assert.deepEqual(
      rows.map((r) => r.outcome).filter((o) => o !== 'success'),
      ['failure', 'failure', 'failure', 'failure', 'failure', 'locked', 'locked', 'locked'],
    );
    const locked = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.failure',
    });
    assert.equal(locked.length, 5, 'attempts during the lock are not counted');
    assert.equal(locked[0]?.data.locked, true);
  });

  test('regression: the right password does not reset the failure count while the second factor is pending', async () => {
    const { user, secret } = await enrolled();
    for (let i = 0; i < 4; i++)
      await verify({ mfaToken: await mfaToken(user), code: wrongCode(secret, i) });
    assert.equal((await userRow(user.id))?.failed_login_count, 4);
    // Signing in with the password again hands out a new token but keeps the count.
    await verify({ mfaToken: await mfaToken(user), code: wrongCode(secret, 5) });
    assert.equal((await userRow(user.id))?.locked, true);
  });

  test('disable needs the password and a code: wrong password or code 403 (counted), both factors 422; then sign-in is by password again', async () => {
    await awayFromStepEdge();
    const { user, secret, access } = await enrolled();
    const auth = bearer(access);
    assertProblem(
      await post(
        '/auth/mfa/totp/disable',
        { password: 'not-the-password-at-all', code: codeAt(secret) },
        auth,
      ),
      403,
      'MFA_REJECTED',
    );
    assertProblem(
      await post(
        '/auth/mfa/totp/disable',
        { password: user.password, code: wrongCode(secret) },
        auth,
      ),
      403,
      'MFA_REJECTED',
    );
    assert.equal((await userRow(user.id))?.failed_login_count, 2);
    assertProblem(
      await post(
        '/auth/mfa/totp/disable',
        { password: user.password, code: codeAt(secret), backupCode: 'abcde-fghij' },
        auth,
      ),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await post('/auth/mfa/totp/disable', { password: user.password }, auth),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await post('/auth/mfa/totp/disable', { password: user.password, code: '1234567' }, auth),
      422,
      'VALIDATION_FAILED',
    );
    const res = await post(
      '/auth/mfa/totp/disable',
      { password: user.password, code: codeAt(secret) },
      auth,
    );
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual((await get('/auth/mfa', auth)).json(), {
      totpEnabled: false,
      backupCodesLeft: 0,
      sms: null,
      passkeys: [],
    });
    assert.ok('accessToken' in (await signIn(h.app, user)));
    assertProblem(
      await post(
        '/auth/mfa/totp/disable',
        { password: user.password, code: codeAt(secret, 1) },
        auth,
      ),
      409,
      'MFA_NOT_SET_UP',
    );
    // The MFA events, newest first (the sign-ins in between are audited as auth.login.*).
    const actions = (await listAuditEvents(h.tdb.database.db, { subjectId: user.id }))
      .map((e) => e.action)
      .filter((a) => a.startsWith('auth.mfa.'));
    assert.deepEqual(actions.slice(0, 3), [
      'auth.mfa.disable',
      'auth.mfa.failure',
      'auth.mfa.failure',
    ]);
  });

  test('a locked account cannot disable MFA or get new codes, even with the right password and code (same 403, not counted)', async () => {
    await awayFromStepEdge();
    const { user, secret, access } = await enrolled();
    await h.tdb.database.pool.query(
      `update gw_user set locked_until = now() + interval '1 hour' where id = $1`,
      [user.id],
    );
    const body = { password: user.password, code: codeAt(secret) };
    const disable = await post('/auth/mfa/totp/disable', body, bearer(access));
    const regenerate = await post('/auth/mfa/backup-codes', body, bearer(access));
    const wrong = await post(
      '/auth/mfa/totp/disable',
      { password: 'not-the-password-at-all', code: codeAt(secret) },
      bearer(access),
    );
    for (const res of [disable, regenerate, wrong]) assertProblem(res, 403, 'MFA_REJECTED');
    assert.deepEqual(sameness(disable as never).body, sameness(wrong as never).body);
    assert.equal((await userRow(user.id))?.failed_login_count, 0);
    assert.deepEqual((await get('/auth/mfa', bearer(access))).json(), {
      totpEnabled: true,
      backupCodesLeft: 10,
      sms: null,
      passkeys: [],
    });
  });

  test('new backup codes need the password and a code; the old ones stop working, the new ones work', async () => {
    await awayFromStepEdge();
    const { user, secret, backupCodes, access } = await enrolled();
    const auth = bearer(access);
    assertProblem(
      await post(
        '/auth/mfa/backup-codes',
        { password: 'not-the-password-at-all', code: codeAt(secret) },
        auth,
      ),
      403,
      'MFA_REJECTED',
    );
    assertProblem(
      await post(
        '/auth/mfa/backup-codes',
        { password: user.password, code: wrongCode(secret) },
        auth,
      ),
      403,
      'MFA_REJECTED',
    );
    const res = await post(
      '/auth/mfa/backup-codes',
      { password: user.password, code: codeAt(secret) },
      auth,
    );
    assert.equal(res.statusCode, 200, res.body);
    const fresh = res.json<{ backupCodes: string[] }>().backupCodes;
    assert.equal(fresh.length, 10);
    assert.equal(fresh.filter((c) => backupCodes.includes(c)).length, 0);
    assertProblem(
      await verify({ mfaToken: await mfaToken(user), backupCode: backupCodes[1] }),
      401,
      'INVALID_MFA',
    );
    assert.equal(
      (await verify({ mfaToken: await mfaToken(user), backupCode: fresh[0] })).statusCode,
      200,
    );
    // A backup code also stands in for the TOTP code here (a lost phone).
    const again = await post(
      '/auth/mfa/backup-codes',
      { password: user.password, backupCode: fresh[1] },
      auth,
    );
    assert.equal(again.statusCode, 200, again.body);
    const [event] = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.backup-codes',
    });
    assert.deepEqual(event?.data, { count: 10 });
    assertProblem(
      await post(
        '/auth/mfa/backup-codes',
        { password: user.password, code: codeAt(secret) },
        bearer((await signIn(h.app, await createUser(h))).accessToken),
      ),
      409,
      'MFA_NOT_SET_UP',
    );
  });

  test('verifySecondFactor and mfaEnabled (for step-up) follow the same replay and lockout rules', async () => {
    await awayFromStepEdge();
    const mfa = new MfaService({
      db: h.tdb.database.db,
      config: identitySettings(h.config),
      hasher: new PasswordHasher(identitySettings(h.config).argon2),
      appSecret: h.config.secrets.appSecret,
      logger: createLogger({ level: 'silent' }),
    });
    const { user, secret, backupCodes } = await enrolled();
    const plain = await createUser(h);
    assert.equal(await mfa.mfaEnabled(user.id), true);
    assert.equal(await mfa.mfaEnabled(plain.id), false);
    assert.equal(await mfa.verifySecondFactor(plain.id, { code: '123456' }), false);
    const code = codeAt(secret);
    assert.equal(await mfa.verifySecondFactor(user.id, { code }), true);
    assert.equal(await mfa.verifySecondFactor(user.id, { code }), false, 'replayed');
    assert.equal(await mfa.verifySecondFactor(user.id, { code: codeAt(secret, -1) }), false);
    assert.equal(
      await mfa.verifySecondFactor(user.id, { backupCode: backupCodes[0] as string }),
      true,
    );
    assert.equal(
      await mfa.verifySecondFactor(user.id, { backupCode: backupCodes[0] as string }),
      false,
    );
    assert.equal((await userRow(user.id))?.failed_login_count, 3);
    for (let i = 0; i < 2; i++)
      assert.equal(await mfa.verifySecondFactor(user.id, { code: wrongCode(secret, i) }), false);
    assert.equal((await userRow(user.id))?.locked, true);
    assert.equal(
      await mfa.verifySecondFactor(user.id, { code: codeAt(secret, 1) }),
      false,
      'locked: even a valid code is refused',
    );
    const [failure] = await listAuditEvents(h.tdb.database.db, {
      subjectId: user.id,
      action: 'auth.mfa.failure',
    });
    assert.equal(failure?.data.flow, 'step-up');
  });
});

describe('identity: MFA rate limits', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ RATE_LIMIT_ENABLED: 'true' });
  });
  after(() => h.close());

  test('verify: 10 a minute per IP, whatever the token; then 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/mfa/verify',
        payload: { mfaToken: `garbage-${i}`, code: '123456' },
      });
      statuses.push(res.statusCode);
    }
    assert.deepEqual(statuses, [...Array<number>(10).fill(401), 429]);
    const elsewhere = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/verify',
      payload: { mfaToken: 'garbage', code: '123456' },
      remoteAddress: '203.0.113.9',
    });
    assertProblem(elsewhere, 401, 'INVALID_MFA');
  });
});
