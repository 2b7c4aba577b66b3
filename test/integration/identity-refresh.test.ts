import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashToken, type TokenPair } from '../../src/platform/identity/index.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { bearer, createUser, login, signIn, startIdentityHarness } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

/**
 * The one-statement rotation of `POST /auth/refresh` (spend, successor, session touch): what it
 * writes, and that two refreshes of one token at once still rotate it once.
 */
describe('identity: refresh rotation in one statement', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness();
  });
  after(() => h.close());

  const refresh = (refreshToken: string, headers: Record<string, string> = {}) =>
    h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken },
      headers,
    });
  const query = <R extends object>(text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<R>(text, values).then((r) => r.rows);

  /** The refresh tokens of a session: how many, and how many are spent. */
  const chain = (sessionId: string) =>
    query<{ total: number; spent: number }>(
      `select count(*)::int as total, count(spent_at)::int as spent
         from gw_refresh_token where session_id = $1`,
      [sessionId],
    ).then((rows) => rows[0]);

  test('a rotation spends the token, stores the successor hashed, keeps the remember-me lifetime and touches the session', async () => {
    const user = await createUser(h);
    const res = await login(h.app, {
      login: user.email,
      password: user.password,
      rememberMe: true,
    });
    assert.equal(res.statusCode, 200, res.body);
    const first = res.json<TokenPair>();
    const r = await refresh(first.refreshToken, { 'user-agent': 'second-agent/2' });
    assert.equal(r.statusCode, 200, r.body);
    const next = r.json<TokenPair>();
    assert.notEqual(next.refreshToken, first.refreshToken);
    assert.equal(next.sessionId, first.sessionId);
    assert.ok(Math.abs(next.refreshExpiresIn - 30 * 86_400) <= 2, String(next.refreshExpiresIn));
    const rows = await query<{ token_hash: string; spent: boolean; successor: string | null }>(
      `select token_hash, spent_at is not null as spent, successor
         from gw_refresh_token where session_id = $1 order by created_at`,
      [first.sessionId],
    );
    assert.deepEqual(
      rows.map((t) => [t.token_hash, t.spent]),
      [
        [hashToken(first.refreshToken), true],
        [hashToken(next.refreshToken), false],
      ],
    );
    assert.ok(rows[0]?.successor, 'the successor is sealed on the spent token');
    assert.ok(!rows[0].successor.includes(next.refreshToken), 'sealed, not in clear');
    const [session] = await query<{ user_agent: string; touched: boolean }>(
      `select user_agent, last_used_at > created_at as touched from gw_session where id = $1`,
      [first.sessionId],
    );
    assert.deepEqual(session, { user_agent: 'second-agent/2', touched: true });
    const me = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/sessions',
      headers: bearer(next.accessToken),
    });
    assert.equal(me.statusCode, 200, me.body);
  });

  test('the token of a signed-out session or of a deleted account rotates nothing', async () => {
    const user = await createUser(h);
    const a = await signIn(h.app, user);
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(a.accessToken),
    });
    assertProblem(await refresh(a.refreshToken), 401, 'INVALID_REFRESH_TOKEN');
    assert.deepEqual(await chain(a.sessionId), { total: 1, spent: 0 });

    const b = await signIn(h.app, user);
    await query(`update gw_user set deleted_at = now() where id = $1`, [user.id]);
    assertProblem(await refresh(b.refreshToken), 401, 'INVALID_REFRESH_TOKEN');
    assert.deepEqual(await chain(b.sessionId), { total: 1, spent: 0 });
  });

  // Regression guard for the concurrency of the one-statement rotation: the conditional UPDATE
  // must serialise two refreshes of one token (one rotates; the other, once the first commits,
  // finds it spent and gets the same successor through the grace path), never two successors.
  test('two refreshes of one token held at the same row lock: exactly one rotation, both get the same successor', async () => {
    const user = await createUser(h);
    const first = await signIn(h.app, user);
    const holder = await h.tdb.database.pool.connect();
    let results: Awaited<ReturnType<typeof refresh>>[];
    try {
      await holder.query('begin');
      await holder.query('select 1 from gw_refresh_token where token_hash = $1 for update', [
        hashToken(first.refreshToken),
      ]);
      const racing = Promise.all([refresh(first.refreshToken), refresh(first.refreshToken)]);
      // Both rotations are queued on the row before it is let go.
      for (let i = 0; ; i++) {
        const [waiting] = await query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'
              and query like 'with spent as%'`,
        );
        if (waiting?.n === 2) break;
        assert.ok(i < 200, 'both refreshes wait on the locked token');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await holder.query('rollback');
      results = await racing;
    } finally {
      holder.release();
    }
    for (const r of results) assert.equal(r.statusCode, 200, r.body);
    const [one, two] = results.map((r) => r.json<TokenPair>());
    assert.ok(one && two);
    assert.notEqual(one.refreshToken, first.refreshToken);
    assert.equal(one.refreshToken, two.refreshToken, 'the same successor');
    assert.deepEqual(await chain(first.sessionId), { total: 2, spent: 1 });
    const [session] = await query<{ revoked: boolean }>(
      `select revoked_at is not null as revoked from gw_session where id = $1`,
      [first.sessionId],
    );
    assert.deepEqual(session, { revoked: false });
    // The chain goes on from the one successor.
    const after = await refresh(one.refreshToken);
    assert.equal(after.statusCode, 200, after.body);
    assert.deepEqual(await chain(first.sessionId), { total: 3, spent: 2 });
  });

  test('refreshes of one token fired together, many times: one successor each time', async () => {
    const user = await createUser(h);
    for (let i = 0; i < 8; i++) {
      const pair = await signIn(h.app, user);
      const results = await Promise.all([1, 2, 3].map(() => refresh(pair.refreshToken)));
      for (const r of results) assert.equal(r.statusCode, 200, r.body);
      const tokens = new Set(results.map((r) => r.json<TokenPair>().refreshToken));
      assert.equal(tokens.size, 1, 'one successor');
      assert.deepEqual(await chain(pair.sessionId), { total: 2, spent: 1 });
    }
  });
});
