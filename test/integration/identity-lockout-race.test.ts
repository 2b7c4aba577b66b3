import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  login,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';

// Guesses sent at once, the right one last; the lockout threshold is the default (5).
const GUESSES = 20;
const THRESHOLD = 5;

const codeAt = (secret: string, offset = 0) =>
  new TOTP({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  }).generate({ timestamp: Date.now() + offset * 30_000 });

/** A 6-digit code valid at none of the steps the server accepts now. */
function wrongCode(secret: string, salt: number): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((o) => codeAt(secret, o)));
  for (let n = 100_000 + salt * 7_919; ; n = (n + 104_729) % 1_000_000) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

describe('identity: concurrent guesses cannot outrun the lockout', () => {
  let h: MailHarness;
  before(async () => {
    // argon2 at the OWASP cost (about 10 ms a hash) so that the guesses really overlap, and a pool
    // large enough that every one of them is in flight at once.
    h = await startIdentityHarness({
      ARGON2_MEMORY_KIB: '19456',
      ARGON2_TIME_COST: '2',
      DATABASE_POOL_MAX: String(GUESSES + 5),
      AUTH_LOCKOUT_THRESHOLD: String(THRESHOLD),
    });
    // Open the pool's connections now, so that the guesses below are not ordered by connecting.
    await Promise.all(
      Array.from({ length: GUESSES }, () => h.tdb.database.pool.query('select pg_sleep(0.05)')),
    );
  });
  after(() => h.close());

  const outcomes = async (userId: string) => {
    const { rows } = await h.tdb.database.pool.query<{ outcome: string; n: number }>(
      `select outcome, count(*)::int as n from gw_login_event where user_id = $1 group by outcome`,
      [userId],
    );
    return Object.fromEntries(rows.map((r) => [r.outcome, r.n]));
  };
  const locked = async (userId: string) =>
    (
      await h.tdb.database.pool.query<{ locked: boolean }>(
        `select coalesce(locked_until > now(), false) as locked from gw_user where id = $1`,
        [userId],
      )
    ).rows[0]?.locked;

  /**
   * Waits until the account is locked (committed). The right guess is sent only then, while the
   * wrong ones after the fifth are still being decided: PostgreSQL does not keep its waiters on a
   * row in arrival order once the row is updated (each new version of the row is raced for by the
   * waiters of the old one), so queuing the right guess last on the held row did not make it
   * decided last; a CI run saw it among the first five (and rightly signed in).
   */
  const untilLocked = async (userId: string) => {
    for (let i = 0; i < 500 && !(await locked(userId)); i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(await locked(userId), true, 'the wrong guesses locked the account');
  };

  /** Requests waiting on a row lock in the test database. */
  const waiting = async () =>
    (
      await h.tdb.database.pool.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
      )
    ).rows[0]?.n ?? 0;
  /** Waits until exactly `n` guesses queue on the account row held by the test. */
  const until = async (n: number) => {
    for (let i = 0; i < 500 && (await waiting()) < n; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await waiting(), n, 'guesses queued on the account row');
  };

  test('regression: 20 parallel sign-in guesses (19 wrong, the right one last): only 5 evaluated, the account locks, the right password is refused', async () => {
    const user = await createUser(h);
    const guesses = Array.from({ length: GUESSES }, (_, i) =>
      i === GUESSES - 1 ? user.password : `wrong-guess-${i}-password`,
    );
    // As in the tests below: the test holds the account row, so the 19 wrong guesses queue on it
    // and are all in flight at once when it is released; the right one is sent once they have
    // locked the account, while the rest of them are still being decided (see `untilLocked`).
    const pool = h.tdb.database.pool;
    const holder = await pool.connect();
    await holder.query('begin');
    await holder.query('select 1 from gw_user where id = $1 for update', [user.id]);
    const send = (password: string) => login(h.app, { login: user.email, password });
    const wrong = guesses.slice(0, -1).map(send);
    await until(GUESSES - 1);
    await holder.query('commit');
    holder.release();
    await untilLocked(user.id);
    const right = send(user.password);
    const answers = await Promise.all([...wrong, right]);
    assert.deepEqual(
      answers.map((a) => a.statusCode),
      guesses.map(() => 401),
      'the right password, decided after the lock, is refused like the others',
    );
    // Decided one at a time: the first five wrong ones counted (the fifth locked), the rest
    // refused as locked without being counted.
    assert.deepEqual(await outcomes(user.id), { failure: THRESHOLD, locked: GUESSES - THRESHOLD });
    const audit = await h.tdb.database.pool.query<{ action: string; n: number }>(
      `select action, count(*)::int as n from gw_audit_event where subject_id = $1::text
        group by action order by action`,
      [user.id],
    );
    assert.deepEqual(
      audit.rows.map((r) => [r.action, r.n]),
      [
        ['auth.lockout', 1],
        ['auth.login.failure', GUESSES],
      ],
    );
    assert.equal(await locked(user.id), true);
    assert.equal(
      (await login(h.app, { login: user.email, password: user.password })).statusCode,
      401,
    );
  });

  test('regression: 20 parallel password changes and step-ups (wrong current passwords, the right one last): only 5 evaluated, the right one refused once locked', async () => {
    const pool = h.tdb.database.pool;
    for (const [url, body] of [
      [
        '/auth/password/change',
        (current: string) => ({ currentPassword: current, newPassword: 'Another-long-pass-9' }),
      ],
      ['/auth/reauthenticate', (current: string) => ({ password: current })],
    ] as const) {
      const user = await createUser(h);
      const { accessToken } = await signIn(h.app, user);
      const before = await outcomes(user.id);
      const send = (current: string) =>
        h.app.inject({
          method: 'POST',
          url: `/api/v1${url}`,
          payload: body(current),
          headers: bearer(accessToken),
        });
      // The test holds the account row, so the 19 wrong guesses queue on it; the right one is
      // sent once they have locked the account (see `untilLocked`).
      const holder = await pool.connect();
      await holder.query('begin');
      await holder.query('select 1 from gw_user where id = $1 for update', [user.id]);
      const wrong = Array.from({ length: GUESSES - 1 }, (_, i) =>
        send(`wrong-guess-${i}-password`),
      );
      await until(GUESSES - 1);
      await holder.query('commit');
      holder.release();
      await untilLocked(user.id);
      const right = send(user.password);
      const answers = await Promise.all([...wrong, right]);
      assert.deepEqual(
        answers.map((a) => a.statusCode),
        answers.map(() => 401),
        `${url}: the right password, decided after the lock, is refused like the others`,
      );
      const after = await outcomes(user.id);
      assert.equal((after.failure ?? 0) - (before.failure ?? 0), THRESHOLD, url);
      assert.equal((after.locked ?? 0) - (before.locked ?? 0), GUESSES - THRESHOLD, url);
      assert.equal(await locked(user.id), true, url);
    }
  });

  test('regression: 20 parallel second steps (19 wrong codes, the right one last): only 5 evaluated, the right code is refused once locked', async () => {
    const user: TestUser = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
      h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload, headers });
    const setup = await post('/auth/mfa/totp/setup', {}, bearer(accessToken));
    const { secret } = setup.json<{ secret: string }>();
    const enable = await post(
      '/auth/mfa/totp/enable',
      { code: codeAt(secret, -1) },
      bearer(accessToken),
    );
    assert.equal(enable.statusCode, 200, enable.body);
    // One challenge per guess (the password is known): each second step locks only its own.
    const tokens: string[] = [];
    for (let i = 0; i < GUESSES; i++) {
      const res = await login(h.app, { login: user.email, password: user.password });
      assert.equal(res.statusCode, 200, res.body);
      tokens.push(res.json<{ mfaToken: string }>().mfaToken);
    }
    const codes = tokens.map((_, i) => (i === GUESSES - 1 ? codeAt(secret) : wrongCode(secret, i)));
    const before = await outcomes(user.id);
    // As above, the test holds the account row so the 19 wrong codes queue on it; the right code
    // is sent once they have locked the account (see `untilLocked`).
    const holder = await h.tdb.database.pool.connect();
    await holder.query('begin');
    await holder.query('select 1 from gw_user where id = $1 for update', [user.id]);
    const verify = (i: number) => post('/auth/mfa/verify', { mfaToken: tokens[i], code: codes[i] });
    const wrong = tokens.slice(0, -1).map((_, i) => verify(i));
    await until(GUESSES - 1);
    await holder.query('commit');
    holder.release();
    await untilLocked(user.id);
    const right = verify(GUESSES - 1);
    const answers = await Promise.all([...wrong, right]);
    assert.deepEqual(
      answers.map((a) => a.statusCode),
      tokens.map(() => 401),
      'the right code, decided after the lock, is refused like the others',
    );
    const after = await outcomes(user.id);
    assert.equal((after.failure ?? 0) - (before.failure ?? 0), THRESHOLD);
    assert.equal((after.locked ?? 0) - (before.locked ?? 0), GUESSES - THRESHOLD);
    assert.equal(after.success, before.success, 'no sign-in succeeded');
    assert.equal(await locked(user.id), true);
  });
});
