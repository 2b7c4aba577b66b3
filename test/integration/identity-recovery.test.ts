import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { PUBLIC_URL, eventually, type MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  grantRoles,
  login,
  mailedToken,
  mailsTo,
  newOpaqueToken,
  signIn,
  signInAdmin,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { compareTimings, describeComparison, timeInterleaved } from '../helpers/timing.ts';

/*
 * Lost-device recovery: the self-service flow by verified address (start, confirm, waiting
 * period, cancel, completion by the job) and the administrator's MFA reset.
 */
describe('identity: lost-device recovery', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  let ipCounter = 0;
  /** A fresh client address per call: the start route is limited to 3 an hour per IP. */
  const nextIp = () => {
    ipCounter += 1;
    return `198.51.${Math.floor(ipCounter / 250)}.${(ipCounter % 250) + 1}`;
  };
  const q = async <T>(text: string, values: unknown[] = []) =>
    (await h.tdb.database.pool.query<T & Record<string, unknown>>(text, values)).rows;
  const post = (
    url: string,
    payload: unknown,
    headers: Record<string, string> = {},
    remoteAddress = nextIp(),
  ) =>
    h.app.inject({
      method: 'POST',
      url: `/api/v1${url}`,
      payload: payload as object,
      headers,
      remoteAddress,
    });
  const start = (loginName: string, remoteAddress = nextIp()) =>
    post('/auth/recovery/start', { login: loginName }, {}, remoteAddress);
  const drain = async () => {
    await h.app.identity.recovery?.drain();
    await h.app.identity.accounts?.drain();
  };
  /** An account with an enabled authenticator and backup codes (written as MFA would). */
  const withMfa = async (options: { verified?: boolean } = {}): Promise<TestUser> => {
    const user = await createUser(h, options);
    await q(
      `insert into gw_mfa_totp (user_id, secret_sealed, enabled_at) values ($1, 'sealed', now())`,
      [user.id],
    );
    await q(
      `insert into gw_mfa_backup_code (id, user_id, code_hash)
       select gen_random_uuid(), $1, md5(random()::text) from generate_series(1, 3)`,
      [user.id],
    );
    return user;
  };
  const recoveries = (userId: string) =>
    q<{ state: string; kind: string; completes_at: Date | null }>(
      `select state, kind, completes_at from gw_mfa_recovery where user_id = $1 order by created_at`,
      [userId],
    );
  const factors = async (userId: string) =>
    (
      await q<{ n: number }>(
        `select (select count(*) from gw_mfa_totp where user_id = $1)::int
              + (select count(*) from gw_mfa_backup_code where user_id = $1)::int as n`,
        [userId],
      )
    )[0]?.n;
  const events = (type: string, userId: string) =>
    q<{ data: Record<string, unknown> }>(
      `select data from gw_event where type = $1 and data->>'userId' = $2 order by id`,
      [type, userId],
    );
  /** Recovery-link sends to the address (recorded in the sending transaction). */
  const linkMails = (user: TestUser) =>
    q(
      `select 1 from gw_mail_delivery where recipient = $1 and template = 'identity.recovery-link'`,
      [user.email],
    );
  /** Starts a recovery and follows its link; returns the cancel token mailed after. */
  const startAndConfirm = async (user: TestUser) => {
    const before = (await linkMails(user)).length;
    const newest = async () =>
      /token=([A-Za-z0-9_-]{43})/.exec(
        (
          await q<{ text: string }>(
            `select text from gw_mail_dev_message where recipient = $1 and template = 'identity.recovery-link'
              order by created_at desc, id desc limit 1`,
            [user.email],
          )
        )[0]?.text ?? '',
      )?.[1];
    const previous = await newest();
    assert.equal((await start(user.username)).statusCode, 202);
    await drain();
    assert.equal((await linkMails(user)).length, before + 1);
    const token = await eventually('a new recovery link', async () => {
      const t = await newest();
      return t === previous ? undefined : t;
    });
    const res = await post('/auth/recovery/confirm', { token });
    assert.equal(res.statusCode, 200, res.body);
    await drain();
    const cancel = await eventually('the cancel link', async () => {
      const rows = await q<{ text: string }>(
        `select text from gw_mail_dev_message where recipient = $1 and template = 'identity.recovery-started'
          order by created_at desc limit 1`,
        [user.email],
      );
      return /mfa-recovery\/cancel\?token=([A-Za-z0-9_-]{43})/.exec(rows[0]?.text ?? '')?.[1];
    });
    return {
      confirmToken: token,
      cancelToken: cancel,
      completesAt: res.json<{ completesAt: string }>().completesAt,
    };
  };
  const sameness = (res: {
    statusCode: number;
    headers: Record<string, unknown>;
    body: string;
  }) => ({
    status: res.statusCode,
    body: res.body,
    headers: Object.keys(res.headers)
      .filter(
        (k) =>
          ![
            'x-request-id',
            'date',
            'content-length',
            'x-ratelimit-remaining',
            'ratelimit-remaining',
            'ratelimit',
          ].includes(k),
      )
      .sort(),
  });
  const runJob = async () => {
    const recovery = h.app.identity.recovery;
    assert.ok(recovery);
    return recovery.completeDue();
  };

  test('start: the same 202 for an account with MFA, an unknown one, an unverified address and an account without MFA; only the first is mailed', async () => {
    const user = await withMfa();
    const unverified = await withMfa({ verified: false });
    const noMfa = await createUser(h);
    const known = await start(user.email.toUpperCase());
    // Answered before the lookup: no recovery exists yet when the answer arrives.
    assert.equal((await recoveries(user.id)).length, 0, 'the answer did not wait for the work');
    const unknown = await start('nobody-at-all@example.com');
    const byName = await start('no_such_user_here');
    const unv = await start(unverified.email);
    const none = await start(noMfa.email);
    assert.equal(known.statusCode, 202, known.body);
    for (const other of [unknown, byName, unv, none])
      assert.deepEqual(sameness(other), sameness(known));
    await drain();
    const token = await mailedToken(h, user.email, 'identity.recovery-link');
    const text = (
      await q<{ text: string }>(
        `select text from gw_mail_dev_message where recipient = $1 and template = 'identity.recovery-link'`,
        [user.email],
      )
    )[0]?.text;
    assert.ok(text?.includes(`${PUBLIC_URL}/mfa-recovery/confirm?token=${token}`), text);
    assert.deepEqual(await mailsTo(h, unverified.email), [], 'an unverified address gets nothing');
    assert.deepEqual(await mailsTo(h, noMfa.email), [], 'no second factor, nothing to recover');
    assert.deepEqual(await mailsTo(h, 'nobody-at-all@example.com'), []);
    assert.equal((await recoveries(unverified.id)).length, 0);
    const rows = await q<{ confirm_token_hash: string }>(
      `select confirm_token_hash from gw_mfa_recovery where user_id = $1`,
      [user.id],
    );
    assert.match(rows[0]?.confirm_token_hash ?? '', /^[0-9a-f]{64}$/, 'stored as SHA-256');
    assert.notEqual(rows[0]?.confirm_token_hash, token);
  });

  test('confirm starts the waiting period (24 h by default): mailed with a cancel link, event and audit; factors kept meanwhile', async () => {
    const user = await withMfa();
    const { completesAt, cancelToken } = await startAndConfirm(user);
    const delay = (Date.parse(completesAt) - Date.now()) / 1_000;
    assert.ok(Math.abs(delay - 86_400) < 60, `AUTH_MFA_RECOVERY_DELAY default 24h (${delay})`);
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['waiting'],
    );
    assert.equal(cancelToken.length, 43);
    assert.equal((await events('user.recovery_started', user.id)).length, 1);
    assert.equal(
      (
        await listAuditEvents(h.tdb.database.db, {
          action: 'auth.recovery.start',
          subjectId: user.id,
        })
      ).length,
      1,
    );
    assert.equal(await factors(user.id), 4, 'nothing removed before the delay');
    // The job leaves a recovery whose delay has not passed alone.
    await runJob();
    assert.equal(await factors(user.id), 4);
    // Sign-in still asks for the second factor.
    const res = await login(h.app, { login: user.email, password: user.password });
    assert.equal(res.json<{ mfaRequired?: boolean }>().mfaRequired, true);
  });

  test('bad links: a reused, a forged, an expired confirmation link and a garbage token are 400 INVALID_RECOVERY_TOKEN', async () => {
    const user = await withMfa();
    const { confirmToken } = await startAndConfirm(user);
    assertProblem(
      await post('/auth/recovery/confirm', { token: confirmToken }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    assertProblem(
      await post('/auth/recovery/confirm', { token: newOpaqueToken() }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    assertProblem(
      await post('/auth/recovery/confirm', { token: 'x' }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    assertProblem(
      await post('/auth/recovery/cancel', { token: newOpaqueToken() }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    // Expired.
    const other = await withMfa();
    assert.equal((await start(other.email)).statusCode, 202);
    await drain();
    const token = await mailedToken(h, other.email, 'identity.recovery-link');
    await q(
      `update gw_mfa_recovery set confirm_expires_at = now() - interval '1 second' where user_id = $1`,
      [other.id],
    );
    assertProblem(await post('/auth/recovery/confirm', { token }), 400, 'INVALID_RECOVERY_TOKEN');
    // Missing and oversized bodies are 4xx, never 500.
    assert.equal((await post('/auth/recovery/confirm', {})).statusCode, 422);
    assert.equal(
      (await post('/auth/recovery/confirm', { token: 'x'.repeat(200) })).statusCode,
      422,
    );
    assert.equal((await post('/auth/recovery/start', { login: '' })).statusCode, 422);
  });

  test('started twice: one recovery; while its link is out a new link replaces it; once waiting, no second timer and no mail', async () => {
    const user = await withMfa();
    assert.equal((await start(user.email)).statusCode, 202);
    await drain();
    const first = await mailedToken(h, user.email, 'identity.recovery-link');
    assert.equal((await start(user.username)).statusCode, 202);
    await drain();
    const second = await eventually('a second link', async () => {
      const t = await mailedToken(h, user.email, 'identity.recovery-link');
      return t === first ? undefined : t;
    });
    assert.equal((await recoveries(user.id)).length, 1, 'one recovery');
    assertProblem(
      await post('/auth/recovery/confirm', { token: first }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    const confirmed = await post('/auth/recovery/confirm', { token: second });
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    const waiting = await recoveries(user.id);
    const mailsBefore = (await linkMails(user)).length;
    assert.equal((await start(user.email)).statusCode, 202);
    await drain();
    const after = await recoveries(user.id);
    assert.equal(after.length, 1);
    assert.deepEqual(after[0]?.completes_at, waiting[0]?.completes_at, 'the timer did not restart');
    assert.equal((await linkMails(user)).length, mailsBefore, 'no new link while waiting');
    assert.equal((await events('user.recovery_started', user.id)).length, 1);
  });

  test('cancel by the mailed link: the factors stay, mailed and recorded; the link works once; a new recovery can start after', async () => {
    const user = await withMfa();
    const { cancelToken } = await startAndConfirm(user);
    const res = await post('/auth/recovery/cancel', { token: cancelToken });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { cancelled: true });
    assertProblem(
      await post('/auth/recovery/cancel', { token: cancelToken }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['cancelled'],
    );
    await drain();
    await eventually(
      'the cancelled mail',
      async () =>
        (await mailsTo(h, user.email)).includes('identity.recovery-cancelled') || undefined,
    );
    assert.deepEqual(
      (await events('user.recovery_cancelled', user.id)).map((e) => e.data.via),
      ['link'],
    );
    await q(
      `update gw_mfa_recovery set completes_at = now() - interval '1 minute' where user_id = $1`,
      [user.id],
    );
    await runJob();
    assert.equal(await factors(user.id), 4, 'a cancelled recovery never completes');
    // Started again after the cancel: a new recovery.
    await startAndConfirm(user);
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['cancelled', 'waiting'],
    );
  });

  test("cancel while signed in; nothing to cancel is 404; nobody cancels another account's recovery", async () => {
    const user = await withMfa();
    const other = await createUser(h);
    await startAndConfirm(user);
    // Signed in (with a password here: the test writes the session as after the second step).
    const mine = bearer((await signInWithoutFactor(user)).accessToken);
    const theirs = bearer((await signIn(h.app, other)).accessToken);
    const status = await h.app.inject({ url: '/api/v1/auth/recovery', headers: mine });
    assert.equal(status.statusCode, 200, status.body);
    assert.equal(status.json<{ state: string }>().state, 'waiting');
    const foreign = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/auth/recovery',
      headers: theirs,
    });
    assertProblem(foreign, 404, 'RECOVERY_NOT_FOUND');
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['waiting'],
      'untouched',
    );
    const anonymous = await h.app.inject({ method: 'DELETE', url: '/api/v1/auth/recovery' });
    assertProblem(anonymous, 401, 'UNAUTHORIZED');
    const res = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/auth/recovery',
      headers: mine,
    });
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['cancelled'],
    );
    assertProblem(
      await h.app.inject({ method: 'DELETE', url: '/api/v1/auth/recovery', headers: mine }),
      404,
      'RECOVERY_NOT_FOUND',
    );
    assert.deepEqual(
      (await events('user.recovery_cancelled', user.id)).map((e) => e.data.via),
      ['signed-in'],
    );
  });

  /** A session for an account with MFA, as if its second step had passed. */
  async function signInWithoutFactor(user: TestUser) {
    await q(`update gw_mfa_totp set enabled_at = null where user_id = $1`, [user.id]);
    try {
      return await signIn(h.app, user);
    } finally {
      await q(`update gw_mfa_totp set enabled_at = now() where user_id = $1`, [user.id]);
    }
  }

  test('when the waiting period ends the job removes every second factor: mailed, recorded; the next sign-in has no second step and must enrol again', async () => {
    const user = await withMfa();
    await startAndConfirm(user);
    await q(
      `update gw_mfa_recovery set completes_at = now() - interval '1 second' where user_id = $1`,
      [user.id],
    );
    const { completeRecoveriesJob } = await import('../../src/platform/identity/recovery/jobs.ts');
    const job = completeRecoveriesJob(async () => h.app.identity.recovery);
    const ctx = {
      db: h.tdb.database.db,
      log: h.app.log,
      attempt: 1,
      id: 'test',
      queue: job.name,
      userId: null,
      requestId: null,
      signal: new AbortController().signal,
    } as unknown as JobContext;
    assert.deepEqual(await job.handler({}, ctx), { completed: 1 });
    assert.deepEqual(await job.handler({}, ctx), { completed: 0 }, 'once');
    assert.equal(job.options.cron?.expression, '* * * * *', 'every minute');
    assert.equal(await factors(user.id), 0);
    assert.deepEqual(
      (await recoveries(user.id)).map((r) => r.state),
      ['completed'],
    );
    assert.equal((await events('user.recovery_completed', user.id)).length, 1);
    assert.equal(
      (
        await listAuditEvents(h.tdb.database.db, {
          action: 'auth.recovery.complete',
          subjectId: user.id,
        })
      ).length,
      1,
    );
    await drain();
    await eventually(
      'the completed mail',
      async () =>
        (await mailsTo(h, user.email)).includes('identity.recovery-completed') || undefined,
    );
    const tokens = await signIn(h.app, user);
    assert.ok(tokens.accessToken, 'signed in without a second step');
    const status = await h.app.inject({
      url: '/api/v1/auth/recovery',
      headers: bearer(tokens.accessToken),
    });
    assert.deepEqual(status.json(), {
      state: 'none',
      completesAt: null,
      reenrolmentRequired: true,
    });
    // The cancel link of a completed recovery is dead.
    assertProblem(
      await post('/auth/recovery/cancel', { token: newOpaqueToken() }),
      400,
      'INVALID_RECOVERY_TOKEN',
    );
    // Enrolling again clears the flag.
    await q(
      `insert into gw_mfa_totp (user_id, secret_sealed, enabled_at) values ($1, 'sealed', now())`,
      [user.id],
    );
    const later = await h.app.inject({
      url: '/api/v1/auth/recovery',
      headers: bearer(tokens.accessToken),
    });
    assert.equal(later.json<{ reenrolmentRequired: boolean }>().reenrolmentRequired, false);
  });

  describe("the administrator's MFA reset", () => {
    const reset = (id: string, headers: Record<string, string>) =>
      h.app.inject({ method: 'POST', url: `/api/v1/admin/users/${id}/mfa/reset`, headers });

    test('removes the factors, ends every session, cancels a recovery, mails and records; the user signs in and enrols again', async () => {
      const admin = await signInAdmin(h.app, h);
      const user = await withMfa();
      const session = await signInWithoutFactor(user);
      await startAndConfirm(user);
      const res = await reset(user.id, admin.headers);
      assert.equal(res.statusCode, 204, res.body);
      assert.equal(await factors(user.id), 0);
      const me = await h.app.inject({
        url: '/api/v1/users/me',
        headers: bearer(session.accessToken),
      });
      assert.equal(me.statusCode, 401, 'the session ended at once');
      assert.deepEqual(
        (await recoveries(user.id)).map((r) => `${r.kind}:${r.state}`),
        ['email:cancelled', 'admin:completed'],
      );
      const audit = await listAuditEvents(h.tdb.database.db, {
        action: 'admin.user.mfa-reset',
        subjectId: user.id,
      });
      assert.equal(audit.length, 1);
      assert.equal(audit[0]?.actorId, admin.user.id);
      assert.deepEqual(
        (await events('user.mfa_reset', user.id)).map((e) => e.data.adminId),
        [admin.user.id],
      );
      assert.deepEqual(
        (await events('user.recovery_cancelled', user.id)).map((e) => e.data.via),
        ['admin-reset'],
      );
      assert.ok(
        (await events('session.revoked', user.id)).some((e) => e.data.reason === 'mfa-reset'),
      );
      await drain();
      await eventually(
        'the reset mail',
        async () =>
          (await mailsTo(h, user.email)).includes('identity.mfa-reset-by-admin') || undefined,
      );
      const tokens = await signIn(h.app, user);
      const status = await h.app.inject({
        url: '/api/v1/auth/recovery',
        headers: bearer(tokens.accessToken),
      });
      assert.equal(status.json<{ reenrolmentRequired: boolean }>().reenrolmentRequired, true);
    });

    test("a reset account whose role requires MFA signs in but reaches that role's permissions only after enrolling (403 MFA_REQUIRED)", async () => {
      const admin = await signInAdmin(h.app, h);
      const user = await withMfa();
      await grantRoles(h, user.id, 'admin');
      assert.equal((await reset(user.id, admin.headers)).statusCode, 204);
      const tokens = await signIn(h.app, user);
      const list = await h.app.inject({
        url: '/api/v1/admin/users',
        headers: bearer(tokens.accessToken),
      });
      assertProblem(list, 403, 'MFA_REQUIRED');
    });

    test('an administrator resetting their own factors is 409 CANNOT_RESET_OWN_MFA', async () => {
      const admin = await signInAdmin(h.app, h);
      await q(
        `insert into gw_mfa_totp (user_id, secret_sealed, enabled_at) values ($1, 'sealed', now())`,
        [admin.user.id],
      );
      assertProblem(await reset(admin.user.id, admin.headers), 409, 'CANNOT_RESET_OWN_MFA');
      assert.equal(await factors(admin.user.id), 1);
    });

    test('without a recent authentication: 403 REAUTHENTICATION_REQUIRED, nothing removed', async () => {
      const admin = await signInAdmin(h.app, h);
      const user = await withMfa();
      await q(`update gw_session set authenticated_at = now() - interval '1 hour' where id = $1`, [
        admin.tokens.sessionId,
      ]);
      await h.app.identity.sessionCache.invalidateSession(admin.user.id, admin.tokens.sessionId);
      assertProblem(await reset(user.id, admin.headers), 403, 'REAUTHENTICATION_REQUIRED');
      assert.equal(await factors(user.id), 4);
      assert.equal(
        (
          await listAuditEvents(h.tdb.database.db, {
            action: 'admin.user.mfa-reset',
            subjectId: user.id,
          })
        ).length,
        0,
      );
    });

    test('needs users:admin (403), a known account (404 for unknown and malformed ids), a signed-in caller (401)', async () => {
      const admin = await signInAdmin(h.app, h);
      const user = await withMfa();
      const plain = bearer((await signIn(h.app, await createUser(h))).accessToken);
      assertProblem(await reset(user.id, plain), 403, 'FORBIDDEN');
      assertProblem(await reset(user.id, {}), 401, 'UNAUTHORIZED');
      assertProblem(
        await reset('0190a5c4-7b7e-7000-8000-000000000999', admin.headers),
        404,
        'USER_NOT_FOUND',
      );
      assertProblem(await reset('not-a-uuid', admin.headers), 404, 'USER_NOT_FOUND');
      assert.equal(await factors(user.id), 4);
    });
  });
});

describe('identity: lost-device recovery rate limits', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ RATE_LIMIT_ENABLED: 'true' });
  });
  after(() => h.close());

  const start = (loginName: string, remoteAddress: string) =>
    h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/recovery/start',
      payload: { login: loginName },
      remoteAddress,
    });

  test('start: 3 an hour per IP and 3 per account (every spelling), then 429 RATE_LIMITED', async () => {
    const ip = '203.0.113.77';
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1)
      statuses.push((await start(`someone${i}@example.com`, ip)).statusCode);
    assert.deepEqual(statuses, [202, 202, 202, 429], 'per IP');
    const user = await createUser(h);
    const spellings = [user.email, user.email.toUpperCase(), ` ${user.email} `, user.email];
    const perAccount: number[] = [];
    for (const [i, spelling] of spellings.entries())
      perAccount.push((await start(spelling, `198.51.100.${i + 1}`)).statusCode);
    assert.deepEqual(perAccount, [202, 202, 202, 429], 'per account');
    assertProblem(await start(user.email, '198.51.100.50'), 429, 'RATE_LIMITED');
    await h.app.identity.recovery?.drain();
  });
});

describe('identity: recovery start answers alike for every account', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  test('start for an account with a second factor answers like for an unknown one (timing)', async () => {
    const rounds = 250;
    const warmUp = 30;
    const users: TestUser[] = [];
    for (let i = 0; i < rounds + warmUp; i += 1) {
      const user = await createUser(h);
      await h.tdb.database.pool.query(
        `insert into gw_mfa_totp (user_id, secret_sealed, enabled_at) values ($1, 'sealed', now())`,
        [user.id],
      );
      users.push(user);
    }
    let seq = 0;
    const start = (loginName: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/recovery/start',
        payload: { login: loginName },
      });
    const { a, b } = await timeInterleaved(
      async (i) => {
        const res = await start((users[i] as TestUser).email);
        assert.equal(res.statusCode, 202);
      },
      async () => {
        seq += 1;
        const res = await start(`nobody-${String(process.pid)}-${String(seq)}@example.net`);
        assert.equal(res.statusCode, 202);
      },
      { rounds, warmUp, seed: 22 },
    );
    const c = compareTimings(a, b);
    assert.equal(c.differ, false, describeComparison('recovery start: MFA account vs unknown', c));
    await h.app.identity.recovery?.drain();
  });
});
