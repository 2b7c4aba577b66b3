import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import pino from 'pino';
import { purgeMfaChallengesJob } from '../../src/platform/identity/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
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
import { SoftAuthenticator } from '../helpers/webauthn.ts';

const code = (secret: string, offsetSteps = 0) =>
  new TOTP({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  }).generate({ timestamp: Date.now() + offsetSteps * 30_000 });

describe('identity: MFA across factors (sessions on disable, the purge job, removing every factor)', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object, headers });
  const get = (url: string, headers: Record<string, string>) =>
    h.app.inject({ method: 'GET', url: `/api/v1${url}`, headers });
  const sql = (text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<Record<string, unknown>>(text, values);

  async function withTotp(): Promise<{
    user: TestUser;
    secret: string;
    token: string;
    backupCodes: string[];
  }> {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const { secret } = (await post('/auth/mfa/totp/setup', {}, bearer(accessToken))).json<{
      secret: string;
    }>();
    const enable = await post(
      '/auth/mfa/totp/enable',
      { code: code(secret, -1) },
      bearer(accessToken),
    );
    assert.equal(enable.statusCode, 200, enable.body);
    return {
      user,
      secret,
      token: accessToken,
      backupCodes: enable.json<{ backupCodes: string[] }>().backupCodes,
    };
  }

  async function secondSession(user: TestUser, backupCode: string): Promise<string> {
    const first = await login(h.app, { login: user.email, password: user.password });
    const { mfaToken } = first.json<{ mfaToken: string }>();
    const res = await post('/auth/mfa/verify', { mfaToken, backupCode });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ accessToken: string }>().accessToken;
  }

  test('disabling TOTP ends the other sessions (published as session.revoked) and keeps this one', async () => {
    const { user, secret, token, backupCodes } = await withTotp();
    const other = await secondSession(user, backupCodes[0] ?? '');
    assert.equal((await get('/auth/sessions', bearer(other))).statusCode, 200);
    const res = await post(
      '/auth/mfa/totp/disable',
      { password: user.password, code: code(secret) },
      bearer(token),
    );
    assert.equal(res.statusCode, 204, res.body);
    assert.equal(
      (await get('/auth/sessions', bearer(token))).statusCode,
      200,
      'this session stays',
    );
    assert.equal((await get('/auth/sessions', bearer(other))).statusCode, 401, 'the other ended');
    const revoked = await sql(
      `select data from gw_event where type = 'session.revoked' and owner_id = $1`,
      [user.id],
    );
    assert.ok(revoked.rows.some((r) => (r.data as { reason: string }).reason === 'mfa-disabled'));
    const disabled = await sql(
      `select data from gw_event where type = 'user.mfa_disabled' and owner_id = $1`,
      [user.id],
    );
    assert.deepEqual(
      disabled.rows.map((r) => r.data),
      [{ userId: user.id, factor: 'totp' }],
    );
  });

  test('with a passkey left, disabling TOTP keeps the backup codes and the second step', async () => {
    const { user, secret, token } = await withTotp();
    const key = new SoftAuthenticator(new URL(PUBLIC_URL).hostname, new URL(PUBLIC_URL).origin);
    const c = (await post('/auth/passkeys/register/options', {}, bearer(token))).json<{
      ceremonyId: string;
      options: { challenge: string };
    }>();
    const reg = await post(
      '/auth/passkeys/register/verify',
      { ceremonyId: c.ceremonyId, response: key.register(c.options) },
      bearer(token),
    );
    assert.equal(reg.statusCode, 201, reg.body);
    assert.deepEqual(reg.json<{ backupCodes: string[] }>().backupCodes, [], 'not the first factor');
    await post(
      '/auth/mfa/totp/disable',
      { password: user.password, code: code(secret) },
      bearer(token),
    );
    const status = (await get('/auth/mfa', bearer(token))).json<{
      totpEnabled: boolean;
      backupCodesLeft: number;
      passkeys: unknown[];
    }>();
    assert.equal(status.totpEnabled, false);
    assert.equal(status.backupCodesLeft, 10);
    assert.equal(status.passkeys.length, 1);
    const again = await login(h.app, { login: user.email, password: user.password });
    assert.equal(again.json<{ mfaRequired?: boolean }>().mfaRequired, true);
  });

  test('removeAllFactors deletes TOTP, backup codes, SMS number and codes, passkeys and challenges in one go', async () => {
    const { user, token } = await withTotp();
    const key = new SoftAuthenticator(new URL(PUBLIC_URL).hostname, new URL(PUBLIC_URL).origin);
    const c = (await post('/auth/passkeys/register/options', {}, bearer(token))).json<{
      ceremonyId: string;
      options: { challenge: string };
    }>();
    await post(
      '/auth/passkeys/register/verify',
      { ceremonyId: c.ceremonyId, response: key.register(c.options) },
      bearer(token),
    );
    await sql(
      `insert into gw_mfa_sms (user_id, phone, enabled_at) values ($1, '+447911123456', now())`,
      [user.id],
    );
    await login(h.app, { login: user.email, password: user.password });
    const mfa = h.app.identity.mfa;
    assert.ok(mfa);
    await mfa.removeAllFactors(user.id);
    for (const table of [
      'gw_mfa_totp',
      'gw_mfa_backup_code',
      'gw_mfa_sms',
      'gw_mfa_sms_code',
      'gw_passkey',
      'gw_mfa_challenge',
      'gw_webauthn_challenge',
    ]) {
      const { rows } = await sql(`select count(*)::int as n from ${table} where user_id = $1`, [
        user.id,
      ]);
      assert.equal(rows[0]?.n, 0, table);
    }
    assert.equal(await mfa.mfaEnabled(user.id), false);
    assert.ok((await signIn(h.app, user)).accessToken, 'the password alone signs in');
  });

  test('the purge job deletes challenges and ceremonies that ended over an hour ago, and only those', async () => {
    const { user } = await withTotp();
    await login(h.app, { login: user.email, password: user.password });
    await login(h.app, { login: user.email, password: user.password });
    const tokens = (
      await sql('select token_hash from gw_mfa_challenge where user_id = $1 order by created_at', [
        user.id,
      ])
    ).rows as { token_hash: string }[];
    assert.equal(tokens.length, 2);
    const [old, recent] = tokens;
    await sql(
      `update gw_mfa_challenge set expires_at = now() - interval '2 hours' where token_hash = $1`,
      [old?.token_hash],
    );
    const ceremony = (await post('/auth/passkeys/login/options', {})).json<{
      ceremonyId: string;
    }>();
    await sql(
      `update gw_webauthn_challenge set used_at = now() - interval '2 hours' where id = $1`,
      [ceremony.ceremonyId],
    );
    const live = (await post('/auth/passkeys/login/options', {})).json<{ ceremonyId: string }>();
    const result = await purgeMfaChallengesJob.handler({}, {
      db: h.tdb.database.db,
      log: pino({ level: 'silent' }),
    } as unknown as JobContext);
    assert.ok(result.deleted >= 2);
    const left = (
      await sql('select token_hash from gw_mfa_challenge where user_id = $1', [user.id])
    ).rows as { token_hash: string }[];
    assert.deepEqual(
      left.map((r) => r.token_hash),
      [recent?.token_hash],
    );
    const ceremonies = (
      await sql('select id from gw_webauthn_challenge where id in ($1, $2)', [
        ceremony.ceremonyId,
        live.ceremonyId,
      ])
    ).rows as { id: string }[];
    assert.deepEqual(
      ceremonies.map((r) => r.id),
      [live.ceremonyId],
    );
  });
});
