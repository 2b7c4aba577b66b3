import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import type { SecurityNotice } from '../../src/platform/identity/security-notices.ts';
import { eventually, PUBLIC_URL, type MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  login,
  mailedToken,
  newOpaqueToken,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

const pw = (n: number) => `orbit-Lantern-${n}7-cobalt-Meadow`;

/*
 * SecurityMail: one mail per security notice, sent after the answer, never failing the change and
 * never carrying a secret; the old address of an email change can report it.
 */
describe('identity: security notices by mail', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const q = async <T>(text: string, values: unknown[] = []) =>
    (await h.tdb.database.pool.query<T & Record<string, unknown>>(text, values)).rows;
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });
  const drain = async () => {
    await (h.app.identity.notices as { drain?: () => Promise<void> }).drain?.();
    await h.app.identity.accounts?.drain();
  };
  /** The text of the newest mail of a template to an address (waits for the mail job). */
  const mail = async (to: string, template: string) => {
    await drain();
    return eventually(`${template} to ${to}`, async () => {
      const rows = await q<{ text: string; html: string }>(
        `select text, html from gw_mail_dev_message where recipient = $1 and template = $2
          order by created_at desc, id desc limit 1`,
        [to, template],
      );
      return rows[0];
    });
  };
  const events = (type: string, userId: string) =>
    q<{ data: Record<string, unknown> }>(
      `select data from gw_event where type = $1 and data->>'userId' = $2 order by id`,
      [type, userId],
    );

  test('password changed: the owner is mailed (no password in it) and user.password_changed (change) is published', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const res = await post(
      '/auth/password/change',
      { currentPassword: user.password, newPassword: pw(1) },
      bearer(pair.accessToken),
    );
    assert.equal(res.statusCode, 204, res.body);
    const sent = await mail(user.email, 'identity.password-changed');
    assert.match(sent.text, /password of your account was just changed/);
    assert.ok(!sent.text.includes(pw(1)) && !sent.html.includes(pw(1)), 'no secret');
    assert.deepEqual(
      (await events('user.password_changed', user.id)).map((e) => e.data),
      [{ userId: user.id, via: 'change' }],
    );
  });

  test('password reset: mailed and published (reset)', async () => {
    const user = await createUser(h);
    assert.equal((await post('/auth/password/forgot', { email: user.email })).statusCode, 202);
    await drain();
    const token = await mailedToken(h, user.email, 'identity.reset-password');
    assert.equal((await post('/auth/password/reset', { token, password: pw(2) })).statusCode, 204);
    const sent = await mail(user.email, 'identity.password-reset');
    assert.ok(!sent.text.includes(token) && !sent.text.includes(pw(2)), 'no secret');
    assert.deepEqual(
      (await events('user.password_changed', user.id)).map((e) => e.data.via),
      ['reset'],
    );
  });

  test('every notice kind has its mail; unknown accounts get nothing and notify never throws', async () => {
    const user = await createUser(h);
    const notices = h.app.identity.notices;
    const cases: [SecurityNotice, string, RegExp][] = [
      [{ kind: 'mfa-enabled', factor: 'totp' }, 'identity.mfa-enabled', /authenticator app/],
      [{ kind: 'mfa-disabled', factor: 'all' }, 'identity.mfa-disabled', /every second factor/],
      [{ kind: 'mfa-disabled', factor: 'sms' }, 'identity.mfa-disabled', /text message/],
      [{ kind: 'passkey-added', name: 'Work laptop' }, 'identity.passkey-added', /"Work laptop"/],
      [{ kind: 'passkey-removed', name: 'Old phone' }, 'identity.passkey-removed', /"Old phone"/],
      [{ kind: 'provider-linked', provider: 'github' }, 'identity.provider-linked', /github/],
      [{ kind: 'provider-unlinked', provider: 'github' }, 'identity.provider-unlinked', /github/],
      [{ kind: 'recovery-cancelled' }, 'identity.recovery-cancelled', /cancelled/],
      [{ kind: 'recovery-completed' }, 'identity.recovery-completed', /removed/],
      [{ kind: 'mfa-reset-by-admin' }, 'identity.mfa-reset-by-admin', /administrator/],
      [
        {
          kind: 'recovery-started',
          completesAt: new Date('2030-01-02T03:04:00Z'),
          cancelUrl: `${PUBLIC_URL}/mfa-recovery/cancel?token=abc`,
        },
        'identity.recovery-started',
        /2030-01-02 03:04 UTC[\s\S]*mfa-recovery\/cancel\?token=abc/,
      ],
    ];
    for (const [notice, template, pattern] of cases) {
      notices.notify(user.id, notice);
      await drain();
      // The newest mail of the template (two notices share one): wait for this one.
      const text = await eventually(`${template} matching ${String(pattern)}`, async () => {
        const rows = await q<{ text: string }>(
          `select text from gw_mail_dev_message where recipient = $1 and template = $2`,
          [user.email, template],
        );
        return rows.find((r) => pattern.test(r.text))?.text;
      });
      assert.match(text, pattern, template);
    }
    assert.doesNotThrow(() =>
      notices.notify('0190a5c4-7b7e-7000-8000-00000000dead', { kind: 'password-changed' }),
    );
    assert.doesNotThrow(() => notices.notify('not-a-uuid', { kind: 'password-changed' }));
    await drain();
  });

  describe('email changed: the old address is told, and can report it', () => {
    /** Changes the account's address through the API; returns the old one. */
    async function changeEmail(user: TestUser, to: string): Promise<string> {
      const pair = await signIn(h.app, user);
      const res = await h.app.inject({
        method: 'PATCH',
        url: '/api/v1/users/me',
        headers: bearer(pair.accessToken),
        payload: { email: to },
      });
      assert.equal(res.statusCode, 202, res.body);
      await drain();
      const token = await mailedToken(h, to, 'identity.confirm-email-change');
      assert.equal((await post('/auth/email-change/confirm', { token })).statusCode, 200);
      return user.email;
    }
    const reportToken = async (oldEmail: string) => {
      const sent = await mail(oldEmail, 'identity.email-changed');
      const token = /report-email-change\?token=([A-Za-z0-9_-]{43})/.exec(sent.text)?.[1];
      assert.ok(token, sent.text);
      return { token, text: sent.text };
    };

    test('the old address gets the masked new one and a report link; user.email_changed is published', async () => {
      const user = await createUser(h);
      const to = `moved${process.pid}a@example.net`;
      await changeEmail(user, to);
      const { text } = await reportToken(user.email);
      assert.match(text, /m\*\*\*@example\.net/);
      assert.ok(!text.includes(to), 'the new address is masked');
      assert.deepEqual(
        (await events('user.email_changed', user.id)).map((e) => e.data),
        [{ userId: user.id }],
      );
    });

    test('reporting locks the account, ends its sessions, gives the old address back; forgot password there unlocks it', async () => {
      const user = await createUser(h);
      const to = `moved${process.pid}b@example.net`;
      await changeEmail(user, to);
      // The new owner of the address signs in (with the old password).
      const intruder = await login(h.app, { login: to, password: user.password });
      assert.equal(intruder.statusCode, 200, intruder.body);
      const { token } = await reportToken(user.email);
      const res = await post('/auth/email-change/report', { token });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { reported: true, restored: true });
      const row = (
        await q<{ email: string; locked: boolean }>(
          `select email, locked_until = 'infinity' as locked from gw_user where id = $1`,
          [user.id],
        )
      )[0];
      assert.deepEqual(row, { email: user.email, locked: true });
      const me = await h.app.inject({
        url: '/api/v1/users/me',
        headers: bearer(intruder.json<{ accessToken: string }>().accessToken),
      });
      assert.equal(me.statusCode, 401, 'every session ended');
      assertProblem(
        await login(h.app, { login: to, password: user.password }),
        401,
        'INVALID_CREDENTIALS',
      );
      const audit = await listAuditEvents(h.tdb.database.db, {
        action: 'user.email.change.report',
        subjectId: user.id,
      });
      assert.equal(audit.length, 1);
      assert.equal(audit[0]?.data.restored, true);
      // Used once.
      assertProblem(
        await post('/auth/email-change/report', { token }),
        400,
        'INVALID_REPORT_TOKEN',
      );
      // The owner takes the account back at the old address.
      assert.equal((await post('/auth/password/forgot', { email: user.email })).statusCode, 202);
      await drain();
      const reset = await mailedToken(h, user.email, 'identity.reset-password');
      assert.equal(
        (await post('/auth/password/reset', { token: reset, password: pw(3) })).statusCode,
        204,
      );
      const back = await login(h.app, { login: user.email, password: pw(3) });
      assert.equal(back.statusCode, 200, back.body);
    });

    test('forged, expired and malformed report links are 400 INVALID_REPORT_TOKEN or 422; nothing is locked', async () => {
      const user = await createUser(h);
      await changeEmail(user, `moved${process.pid}c@example.net`);
      const { token } = await reportToken(user.email);
      assertProblem(
        await post('/auth/email-change/report', { token: newOpaqueToken() }),
        400,
        'INVALID_REPORT_TOKEN',
      );
      await q(
        `update gw_email_change_report set expires_at = now() - interval '1 second' where user_id = $1`,
        [user.id],
      );
      assertProblem(
        await post('/auth/email-change/report', { token }),
        400,
        'INVALID_REPORT_TOKEN',
      );
      assert.equal((await post('/auth/email-change/report', {})).statusCode, 422);
      const locked = await q(`select 1 from gw_user where id = $1 and locked_until is not null`, [
        user.id,
      ]);
      assert.equal(locked.length, 0);
    });

    test('when another account took the old address meanwhile, the report still locks but does not restore it', async () => {
      const user = await createUser(h);
      const old = await changeEmail(user, `moved${process.pid}d@example.net`);
      const { token } = await reportToken(old);
      await createUser(h, { email: old });
      const res = await post('/auth/email-change/report', { token });
      assert.deepEqual(res.json(), { reported: true, restored: false });
      const row = (
        await q<{ email: string }>(`select email from gw_user where id = $1`, [user.id])
      )[0];
      assert.equal(row?.email, `moved${process.pid}d@example.net`);
    });
  });
});
