import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
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
import { FakeTwilio } from '../fakes/twilio.ts';

const NUMBER = '+447911123456';

describe('identity: the SMS factor (Twilio Messages API, faked locally)', () => {
  let h: MailHarness;
  const twilio = new FakeTwilio();
  let n = 0;
  /** A fresh valid UK mobile number per test (the per-number hourly limit is shared). */
  const freshNumber = () => {
    n += 1;
    return `+4479111${String(10_000 + n).slice(-5)}`;
  };

  before(async () => {
    await twilio.start();
    h = await startIdentityHarness({
      AUTH_SMS_PROVIDER: 'twilio',
      AUTH_SMS_TWILIO_ACCOUNT_SID: twilio.accountSid,
      AUTH_SMS_TWILIO_AUTH_TOKEN: twilio.authToken,
      AUTH_SMS_TWILIO_FROM: '+15005550006',
      AUTH_SMS_TWILIO_BASE_URL: twilio.url,
      AUTH_SMS_MAX_PER_NUMBER: '4',
      AUTH_SMS_MAX_PER_ACCOUNT: '6',
    });
  });
  after(async () => {
    await h.close();
    await twilio.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });
  const get = (url: string, headers: Record<string, string>) =>
    h.app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const sql = (text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<Record<string, unknown>>(text, values);

  async function enrolled(
    phone = freshNumber(),
  ): Promise<{ user: TestUser; token: string; phone: string; backupCodes: string[] }> {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const res = await post('/auth/mfa/sms/enrol', { phoneNumber: phone }, bearer(accessToken));
    assert.equal(res.statusCode, 202, res.body);
    const confirm = await post(
      '/auth/mfa/sms/confirm',
      { code: twilio.codeFor(phone) },
      bearer(accessToken),
    );
    assert.equal(confirm.statusCode, 200, confirm.body);
    return {
      user,
      token: accessToken,
      phone,
      backupCodes: confirm.json<{ backupCodes: string[] }>().backupCodes,
    };
  }

  async function challenge(user: TestUser): Promise<string> {
    const res = await login(h.app, { login: user.email, password: user.password });
    const body = res.json<{ mfaRequired?: boolean; mfaToken: string }>();
    assert.equal(body.mfaRequired, true, res.body);
    return body.mfaToken;
  }

  test('enrolment: the number normalised to E.164, a code sent through Twilio (form, Basic auth), confirmed, backup codes, status, audit and event', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const res = await post(
      '/auth/mfa/sms/enrol',
      { phoneNumber: '+44 (0)7911 123-456' },
      bearer(accessToken),
    );
    assert.equal(res.statusCode, 202, res.body);
    assert.deepEqual(res.json(), { phoneNumber: NUMBER, expiresIn: 300 });
    const sent = twilio.lastTo(NUMBER);
    assert.ok(sent);
    assert.equal(sent.from, '+15005550006');
    assert.match(sent.body, /^[0-9]{6} is your Groundwork verification code/);
    // Stored hashed, never in clear.
    const stored = await sql('select code_hash from gw_mfa_sms_code where user_id = $1', [user.id]);
    assert.ok(!String(stored.rows[0]?.code_hash).includes(twilio.codeFor(NUMBER)));
    // A wrong code: 403, counted.
    const wrong = twilio.codeFor(NUMBER) === '000000' ? '000001' : '000000';
    assertProblem(
      await post('/auth/mfa/sms/confirm', { code: wrong }, bearer(accessToken)),
      403,
      'MFA_REJECTED',
    );
    const ok = await post(
      '/auth/mfa/sms/confirm',
      { code: twilio.codeFor(NUMBER) },
      bearer(accessToken),
    );
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json<{ backupCodes: string[] }>().backupCodes.length, 10);
    const status = (await get('/auth/mfa', bearer(accessToken))).json<{
      sms: { phoneNumber: string; enabled: boolean };
    }>();
    assert.equal(status.sms.enabled, true);
    assert.ok(status.sms.phoneNumber.endsWith('3456') && !status.sms.phoneNumber.includes('7911'));
    assertProblem(
      await post('/auth/mfa/sms/enrol', { phoneNumber: freshNumber() }, bearer(accessToken)),
      409,
      'SMS_ALREADY_ENABLED',
    );
    const audit = await listAuditEvents(h.tdb.database.db, { subjectId: user.id });
    assert.ok(audit.some((e) => e.action === 'auth.mfa.enable' && e.data?.method === 'sms'));
    const events = await sql(`select type, data from gw_event where owner_id = $1`, [user.id]);
    assert.ok(
      events.rows.some(
        (r) => r.type === 'user.mfa_enabled' && (r.data as { factor: string }).factor === 'sms',
      ),
    );
    await sql('delete from gw_mfa_sms where user_id = $1', [user.id]);
  });

  test('malformed numbers are 422 INVALID_PHONE_NUMBER and send nothing', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const before = twilio.requests;
    for (const [phoneNumber, why] of [
      ['+44 7911 ABC456', 'letters'],
      ['+1-800-FLOWERS', 'letters'],
      ['+1 2', 'too-short'],
      ['+44 12', 'too-short'],
      ['07911 123456', 'no-country'],
      ['+1 900 555 0100', 'premium-rate'],
      ['+44 909 879 0000', 'premium-rate'],
      ['+34 901 123 456', 'shared-cost'],
      ['+44791112345678901', 'invalid'],
      ['++44 7911', 'invalid'],
    ] as const) {
      const res = await post('/auth/mfa/sms/enrol', { phoneNumber }, bearer(accessToken));
      const problem = assertProblem(res, 422, 'INVALID_PHONE_NUMBER');
      assert.equal(
        (problem.errors as { message: string }[] | undefined)?.[0]?.message,
        why,
        phoneNumber,
      );
    }
    assertProblem(
      await post('/auth/mfa/sms/enrol', { phoneNumber: 'x'.repeat(40) }, bearer(accessToken)),
      422,
      'VALIDATION_FAILED',
    );
    assert.equal(twilio.requests, before);
  });

  test('sign-in with an SMS code: sent for the challenge, accepted once (amr pwd, sms without otp), replay refused', async () => {
    const { user, phone } = await enrolled();
    const mfaToken = await challenge(user);
    const sent = await post('/auth/mfa/sms/send', { mfaToken });
    assert.equal(sent.statusCode, 202, sent.body);
    const code = twilio.codeFor(phone);
    const ok = await post('/auth/mfa/verify', { mfaToken, smsCode: code });
    assert.equal(ok.statusCode, 200, ok.body);
    const { sessionId } = ok.json<{ sessionId: string }>();
    const amr = (await sql('select amr from gw_session where id = $1', [sessionId])).rows[0]?.amr;
    assert.deepEqual(amr, ['pwd', 'sms'], 'SMS alone does not count for MFA-required roles');
    // Replayed on a new challenge: the code was spent (and bound to the first challenge).
    const second = await challenge(user);
    assertProblem(
      await post('/auth/mfa/verify', { mfaToken: second, smsCode: code }),
      401,
      'INVALID_MFA',
    );
    // Both code and smsCode: 422.
    assertProblem(
      await post('/auth/mfa/verify', { mfaToken: second, smsCode: code, code: '123456' }),
      422,
      'VALIDATION_FAILED',
    );
    await sql('update gw_user set failed_login_count = 0 where id = $1', [user.id]);
  });

  test('send for an unknown token answers the same 202 and sends nothing', async () => {
    const before = twilio.messages.length;
    const res = await post('/auth/mfa/sms/send', { mfaToken: 'no-such-token' });
    assert.equal(res.statusCode, 202);
    assert.equal(twilio.messages.length, before);
  });

  test('an expired code is refused', async () => {
    const { user, phone } = await enrolled();
    const mfaToken = await challenge(user);
    await post('/auth/mfa/sms/send', { mfaToken });
    await sql(
      `update gw_mfa_sms_code set expires_at = now() - interval '1 second' where user_id = $1`,
      [user.id],
    );
    assertProblem(
      await post('/auth/mfa/verify', { mfaToken, smsCode: twilio.codeFor(phone) }),
      401,
      'INVALID_MFA',
    );
  });

  test('guessed codes count towards the lockout: after it, even the right code is refused', async () => {
    const { user, phone } = await enrolled();
    const mfaToken = await challenge(user);
    await post('/auth/mfa/sms/send', { mfaToken });
    const right = twilio.codeFor(phone);
    for (let i = 0; i < 10; i++) {
      const guess = String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0');
      assertProblem(
        await post('/auth/mfa/verify', { mfaToken, smsCode: guess }),
        401,
        'INVALID_MFA',
      );
    }
    const row = await sql(
      'select coalesce(locked_until > now(), false) as locked from gw_user where id = $1',
      [user.id],
    );
    assert.equal(row.rows[0]?.locked, true);
    assertProblem(await post('/auth/mfa/verify', { mfaToken, smsCode: right }), 401, 'INVALID_MFA');
    const audit = await listAuditEvents(h.tdb.database.db, { subjectId: user.id });
    assert.ok(audit.some((e) => e.action === 'auth.mfa.failure' && e.data?.method === 'sms'));
  });

  test('hourly limits per number and per account: 429 SMS_LIMIT_REACHED', async () => {
    const { user, phone } = await enrolled();
    // The enrolment sent one; three more reach the per-number limit of 4.
    for (let i = 0; i < 3; i++) {
      const mfaToken = await challenge(user);
      assert.equal((await post('/auth/mfa/sms/send', { mfaToken })).statusCode, 202);
    }
    const mfaToken = await challenge(user);
    const before = twilio.messages.filter((m) => m.to === phone).length;
    assertProblem(await post('/auth/mfa/sms/send', { mfaToken }), 429, 'SMS_LIMIT_REACHED');
    assert.equal(twilio.messages.filter((m) => m.to === phone).length, before);
    // Per account: a new pending number of another account is not limited by this one's.
    const other = await createUser(h);
    const { accessToken } = await signIn(h.app, other);
    assertProblem(
      await post('/auth/mfa/sms/enrol', { phoneNumber: phone }, bearer(accessToken)),
      429,
      'SMS_LIMIT_REACHED',
    );
    // The per-account limit (6) across numbers.
    let last = 0;
    for (let i = 0; i < 7; i++) {
      last = (
        await post('/auth/mfa/sms/enrol', { phoneNumber: freshNumber() }, bearer(accessToken))
      ).statusCode;
    }
    assert.equal(last, 429);
  });

  test('the provider failing or refusing the credentials is a 503 SMS_SEND_FAILED', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    twilio.failNext(1, {
      status: 400,
      code: 21610,
      message: 'Attempt to send to unsubscribed recipient',
    });
    assertProblem(
      await post('/auth/mfa/sms/enrol', { phoneNumber: freshNumber() }, bearer(accessToken)),
      503,
      'SMS_SEND_FAILED',
    );
  });

  test("the fake checks Basic auth and answers in Twilio's error format", async () => {
    const url = `${twilio.url}/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${twilio.accountSid}:wrong`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ To: NUMBER, From: '+15005550006', Body: 'x' }).toString(),
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.code, 20003);
    assert.equal(body.status, 401);
    assert.ok(typeof body.more_info === 'string');
  });

  test('removing the number needs the password and a factor (an SMS step-up code); other sessions end, this one stays', async () => {
    const { user, phone, backupCodes } = await enrolled();
    const first = await challenge(user);
    const signedIn = await post('/auth/mfa/verify', {
      mfaToken: first,
      backupCode: backupCodes[0],
    });
    const token = signedIn.json<{ accessToken: string }>().accessToken;
    const secondToken = await challenge(user);
    const other = (
      await post('/auth/mfa/verify', { mfaToken: secondToken, backupCode: backupCodes[1] })
    ).json<{ accessToken: string }>().accessToken;
    assert.equal((await post('/auth/mfa/sms/step-up', {}, bearer(token))).statusCode, 202);
    assertProblem(
      await post(
        '/auth/mfa/sms/disable',
        { password: 'wrong-password-x', smsCode: twilio.codeFor(phone) },
        bearer(token),
      ),
      403,
      'MFA_REJECTED',
    );
    assert.equal((await post('/auth/mfa/sms/step-up', {}, bearer(token))).statusCode, 202);
    const res = await post(
      '/auth/mfa/sms/disable',
      { password: user.password, smsCode: twilio.codeFor(phone) },
      bearer(token),
    );
    assert.equal(res.statusCode, 204, res.body);
    assert.equal((await get('/auth/mfa', bearer(token))).json<{ sms: unknown }>().sms, null);
    assert.equal((await get('/auth/sessions', bearer(other))).statusCode, 401);
    const events = await sql(`select type, data from gw_event where owner_id = $1`, [user.id]);
    assert.ok(
      events.rows.some(
        (r) => r.type === 'user.mfa_disabled' && (r.data as { factor: string }).factor === 'sms',
      ),
    );
    // No factor left: the password alone signs in.
    assert.ok((await signIn(h.app, user)).accessToken);
  });
});
