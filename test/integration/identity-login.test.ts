import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT, decodeJwt, decodeProtectedHeader, importPKCS8 } from 'jose';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { bearer, createUser, login, signIn, startIdentityHarness } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

const ISSUER = 'https://app.example.test';
const AUDIENCE = 'groundwork-api';

/** The parts of a 401 that must not differ between the reasons sign-in failed. */
function sameness(res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  const body = JSON.parse(res.body) as Record<string, unknown>;
  delete body.requestId;
  const headers = Object.keys(res.headers)
    .filter((k) => !['x-request-id', 'date', 'content-length'].includes(k))
    .sort()
    .map((k) => `${k}: ${k.startsWith('ratelimit') ? '' : String(res.headers[k])}`);
  return { status: res.statusCode, body, headers };
}

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('identity: sign-in, lockout, tokens, sessions', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY });
  });
  after(() => h.close());

  const get = (url: string, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'GET', url, headers });

  test('sign-in returns the pair; the JWT is EdDSA with the kid of the JWKS, iss, aud, sub, sid and a 15 minute life', async () => {
    const user = await createUser(h);
    const res = await login(
      h.app,
      { login: user.username, password: user.password },
      { 'user-agent': 'test-agent/1.0' },
    );
    assert.equal(res.statusCode, 200, res.body);
    const pair = res.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(pair).sort(), [
      'accessToken',
      'expiresIn',
      'refreshExpiresIn',
      'refreshToken',
      'sessionId',
      'tokenType',
    ]);
    assert.equal(pair.tokenType, 'Bearer');
    assert.equal(pair.expiresIn, 900);
    assert.ok(
      Math.abs((pair.refreshExpiresIn as number) - 86_400) <= 2,
      String(pair.refreshExpiresIn),
    );
    const header = decodeProtectedHeader(pair.accessToken as string);
    const jwks = (await get('/.well-known/jwks.json')).json<{
      keys: { kid: string; alg: string; d?: string }[];
    }>();
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.kid, jwks.keys[0]?.kid);
    assert.equal(jwks.keys[0]?.d, undefined, 'no private part published');
    const claims = decodeJwt(pair.accessToken as string);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.sid, pair.sessionId);
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, AUDIENCE);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900);
    const remembered = await login(h.app, {
      login: user.email,
      password: user.password,
      rememberMe: true,
    });
    assert.ok(
      Math.abs(remembered.json<{ refreshExpiresIn: number }>().refreshExpiresIn - 30 * 86_400) <= 2,
    );
  });

  test('wrong password, unknown account, unverified address and locked account: the same 401 INVALID_CREDENTIALS', async () => {
    const user = await createUser(h);
    const unverified = await createUser(h, { verified: false });
    const locked = await createUser(h);
    await h.tdb.database.pool.query(
      `update gw_user set locked_until = now() + interval '1 hour' where id = $1`,
      [locked.id],
    );
    const answers = [
      await login(h.app, { login: user.email, password: 'not-the-password-at-all' }),
      await login(h.app, { login: 'nobody@example.com', password: 'not-the-password-at-all' }),
      await login(h.app, { login: 'nobody_at_all', password: user.password }),
      await login(h.app, { login: unverified.email, password: unverified.password }),
      await login(h.app, { login: locked.email, password: locked.password }),
    ];
    for (const res of answers) assertProblem(res, 401, 'INVALID_CREDENTIALS');
    const first = sameness(answers[0] as never);
    for (const res of answers) assert.deepEqual(sameness(res as never), first);
  });

  test('five failures lock the account (progressively); success afterwards resets the counters', async () => {
    const user = await createUser(h);
    for (let i = 0; i < 5; i++)
      await login(h.app, { login: user.email, password: `wrong-${i}-password` });
    const q = () =>
      h.tdb.database.pool.query<{
        failed_login_count: number;
        lockout_count: number;
        lock_s: number | null;
      }>(
        `select failed_login_count, lockout_count, extract(epoch from locked_until - now())::int as lock_s from gw_user where id = $1`,
        [user.id],
      );
    let row = (await q()).rows[0];
    assert.equal(row?.lockout_count, 1);
    assert.ok(
      row?.lock_s !== null && row !== undefined && row.lock_s > 890 && row.lock_s <= 900,
      String(row?.lock_s),
    );
    assertProblem(
      await login(h.app, { login: user.email, password: user.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    // The lock ends; five more failures lock for twice as long.
    await h.tdb.database.pool.query(
      `update gw_user set locked_until = now() - interval '1 second' where id = $1`,
      [user.id],
    );
    for (let i = 0; i < 5; i++)
      await login(h.app, { login: user.email, password: `wrong-${i}-password` });
    row = (await q()).rows[0];
    assert.equal(row?.lockout_count, 2);
    assert.ok(
      row?.lock_s !== null && row !== undefined && row.lock_s > 1790 && row.lock_s <= 1800,
      String(row?.lock_s),
    );
    await h.tdb.database.pool.query(
      `update gw_user set locked_until = now() - interval '1 second' where id = $1`,
      [user.id],
    );
    assert.equal(
      (await login(h.app, { login: user.email, password: user.password })).statusCode,
      200,
    );
    row = (await q()).rows[0];
    assert.deepEqual([row?.failed_login_count, row?.lockout_count, row?.lock_s], [0, 0, null]);
  });

  test('1,000 failed sign-ins from 50 IPs against one account: locked, the same answer every time', async () => {
    const user = await createUser(h);
    const reference = sameness(
      await login(h.app, { login: 'nobody@example.com', password: 'guess-0000' }),
    );
    for (let i = 0; i < 1_000; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { login: user.email, password: `guess-${i}` },
        remoteAddress: `198.51.100.${(i % 50) + 1}`,
      });
      assert.deepEqual(sameness(res), reference, `attempt ${i}`);
    }
    const { rows } = await h.tdb.database.pool.query<{ locked: boolean }>(
      `select locked_until > now() as locked from gw_user where id = $1`,
      [user.id],
    );
    assert.equal(rows[0]?.locked, true);
    assert.deepEqual(
      sameness(await login(h.app, { login: user.email, password: user.password })),
      reference,
    );
    const history = await h.tdb.database.pool.query<{ n: number }>(
      `select count(distinct ip)::int as n from gw_login_event where user_id = $1`,
      [user.id],
    );
    assert.equal(history.rows[0]?.n, 51);
  });

  test('a hash made with other argon2 parameters is replaced at the next sign-in', async () => {
    const user = await createUser(h);
    const { hash } = await import('@node-rs/argon2');
    const old = await hash(user.password, { memoryCost: 128, timeCost: 2, parallelism: 1 });
    await h.tdb.database.pool.query('update gw_user set password_hash = $1 where id = $2', [
      old,
      user.id,
    ]);
    assert.equal(
      (await login(h.app, { login: user.email, password: user.password })).statusCode,
      200,
    );
    const { rows } = await h.tdb.database.pool.query<{ password_hash: string }>(
      'select password_hash from gw_user where id = $1',
      [user.id],
    );
    assert.match(rows[0]?.password_hash ?? '', /^\$argon2id\$v=19\$m=64,t=1,p=1\$/);
  });

  test('authenticated routes: the current session is flagged; no header is 401 with WWW-Authenticate', async () => {
    const user = await createUser(h);
    const one = await signIn(h.app, user);
    const two = await signIn(h.app, user);
    const res = await get('/api/v1/auth/sessions', bearer(two.accessToken));
    assert.equal(res.statusCode, 200, res.body);
    const items = res.json<{ items: { id: string; current: boolean; ip: string }[] }>().items;
    assert.deepEqual(
      items.map((s) => [s.id, s.current]).sort(),
      [
        [one.sessionId, false],
        [two.sessionId, true],
      ].sort(),
    );
    assert.equal(items[0]?.ip, '127.0.0.1');
    assert.equal(res.headers['cache-control'], 'private, no-store');
    const none = await get('/api/v1/auth/sessions');
    assertProblem(none, 401, 'UNAUTHORIZED');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="groundwork"');
    // The jobs API now sees a real user: an unknown job is 404, not 401.
    assertProblem(
      await get('/api/v1/jobs/00000000-0000-7000-8000-000000000000', bearer(one.accessToken)),
      404,
      'JOB_NOT_FOUND',
    );
  });

  test('malformed Authorization headers: no scheme, two spaces, another scheme, 10 KB: 401 invalid_token', async () => {
    const user = await createUser(h);
    const { accessToken } = await signIn(h.app, user);
    for (const authorization of [
      accessToken,
      `Bearer  ${accessToken}`,
      `Bearer ${accessToken} `,
      `Basic ${accessToken}`,
      `Bearer ${accessToken}${'a'.repeat(10_240)}`,
      `Bearer ${'a'.repeat(10_240)}`,
      'Bearer',
      'Bearer a.b',
    ]) {
      const res = await get('/api/v1/auth/sessions', { authorization });
      assertProblem(res, 401, 'INVALID_ACCESS_TOKEN');
      assert.match(
        String(res.headers['www-authenticate']),
        /^Bearer realm="groundwork", error="invalid_token"/,
      );
    }
    assert.equal(
      (await get('/api/v1/auth/sessions', { authorization: `bearer ${accessToken}` })).statusCode,
      200,
      'the scheme is case-insensitive',
    );
  });

  test('forged JWTs: alg none, HS256 keyed with the public key, unknown kid, expired, tampered, other audience: all 401', async () => {
    const user = await createUser(h);
    const { accessToken, sessionId } = await signIn(h.app, user);
    const header = decodeProtectedHeader(accessToken);
    const claims = decodeJwt(accessToken);
    const [h64, p64, s64] = accessToken.split('.') as [string, string, string];
    const now = Math.floor(Date.now() / 1000);
    const publicPem = createPublicKey(createPrivateKey(TEST_JWT_PRIVATE_KEY))
      .export({ format: 'pem', type: 'spki' })
      .toString();
    const hs256 = (() => {
      const head = b64({ alg: 'HS256', kid: header.kid, typ: 'at+jwt' });
      const sig = createHmac('sha256', publicPem).update(`${head}.${p64}`).digest('base64url');
      return `${head}.${p64}.${sig}`;
    })();
    const signed = async (pem: string, extra: Record<string, unknown>, kid = header.kid) =>
      new SignJWT({ sid: sessionId, ...extra })
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
        .setSubject(user.id)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(now - 3_600)
        .setExpirationTime((extra.exp as number | undefined) ?? now + 600)
        .sign(await importPKCS8(pem, 'EdDSA'));
    const otherPem = generateKeyPairSync('ed25519')
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();
    const forged = {
      'alg none': `${b64({ alg: 'none', kid: header.kid, typ: 'at+jwt' })}.${p64}.`,
      'alg none, empty signature segment replaced': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p64}.x`,
      'HS256 keyed with the public key': hs256,
      'unknown kid': await signed(otherPem, {}, 'some-other-kid'),
      'another key under the known kid': await signed(otherPem, {}),
      expired: await signed(TEST_JWT_PRIVATE_KEY, { exp: now - 60 }),
      tampered: `${h64}.${b64({ ...claims, sub: '00000000-0000-7000-8000-000000000000' })}.${s64}`,
      'other audience': await new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: 'EdDSA', kid: header.kid, typ: 'at+jwt' })
        .setSubject(user.id)
        .setIssuer(ISSUER)
        .setAudience('someone-else')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(await importPKCS8(TEST_JWT_PRIVATE_KEY, 'EdDSA')),
    };
    // The real key with valid claims passes: the refusals above are about what was forged.
    assert.equal(
      (await get('/api/v1/auth/sessions', bearer(await signed(TEST_JWT_PRIVATE_KEY, {}))))
        .statusCode,
      200,
    );
    for (const [what, token] of Object.entries(forged)) {
      const res = await get('/api/v1/auth/sessions', bearer(token));
      assert.equal(res.statusCode, 401, what);
      assertProblem(res, 401, 'INVALID_ACCESS_TOKEN');
    }
  });

  test('logout revokes at once: the access token of a signed-out session is refused on its next request', async () => {
    const user = await createUser(h);
    const a = await signIn(h.app, user);
    const b = await signIn(h.app, user);
    const c = await signIn(h.app, user);
    const out = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(a.accessToken),
    });
    assert.equal(out.statusCode, 204);
    assertProblem(
      await get('/api/v1/auth/sessions', bearer(a.accessToken)),
      401,
      'INVALID_ACCESS_TOKEN',
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: a.refreshToken },
      }),
      401,
      'INVALID_REFRESH_TOKEN',
    );
    // Another user's session id is not found; one's own is revoked.
    const other = await signIn(h.app, await createUser(h));
    assertProblem(
      await h.app.inject({
        method: 'DELETE',
        url: `/api/v1/auth/sessions/${other.sessionId}`,
        headers: bearer(b.accessToken),
      }),
      404,
      'SESSION_NOT_FOUND',
    );
    assert.equal((await get('/api/v1/auth/sessions', bearer(other.accessToken))).statusCode, 200);
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/sessions/${c.sessionId}`,
      headers: bearer(b.accessToken),
    });
    assert.equal(del.statusCode, 204);
    assertProblem(
      await get('/api/v1/auth/sessions', bearer(c.accessToken)),
      401,
      'INVALID_ACCESS_TOKEN',
    );
    const d = await signIn(h.app, user);
    const all = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout-all',
      headers: bearer(b.accessToken),
    });
    assert.equal(all.statusCode, 204);
    for (const pair of [b, d])
      assertProblem(
        await get('/api/v1/auth/sessions', bearer(pair.accessToken)),
        401,
        'INVALID_ACCESS_TOKEN',
      );
  });

  test('refresh rotates; a spent token within the grace window gets the current pair; after it, the session is revoked', async () => {
    const user = await createUser(h);
    const first = await signIn(h.app, user);
    const refresh = (refreshToken: string) =>
      h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
    const r1 = await refresh(first.refreshToken);
    assert.equal(r1.statusCode, 200, r1.body);
    const second = r1.json<{ refreshToken: string; accessToken: string; sessionId: string }>();
    assert.notEqual(second.refreshToken, first.refreshToken);
    assert.equal(second.sessionId, first.sessionId);
    // Two tabs: the spent token again, at once, gets the same current refresh token.
    const again = await refresh(first.refreshToken);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json<{ refreshToken: string }>().refreshToken, second.refreshToken);
    const { rows } = await h.tdb.database.pool.query<{ token_hash: string }>(
      'select token_hash from gw_refresh_token',
    );
    assert.ok(
      rows.every(
        (r) => r.token_hash !== first.refreshToken && r.token_hash !== second.refreshToken,
      ),
      'stored hashed',
    );
    // After the grace window, the spent token revokes the session: the current pair dies with it.
    await h.tdb.database.pool.query(
      `update gw_refresh_token set spent_at = now() - interval '11 seconds' where spent_at is not null`,
    );
    assertProblem(await refresh(first.refreshToken), 401, 'INVALID_REFRESH_TOKEN');
    assertProblem(await refresh(second.refreshToken), 401, 'INVALID_REFRESH_TOKEN');
    assertProblem(
      await get('/api/v1/auth/sessions', bearer(second.accessToken)),
      401,
      'INVALID_ACCESS_TOKEN',
    );
    const fresh = await signIn(h.app, user);
    const history = await get('/api/v1/auth/login-history?limit=10', bearer(fresh.accessToken));
    assert.equal(history.statusCode, 200);
    const outcomes = history.json<{ items: { outcome: string }[] }>().items.map((e) => e.outcome);
    assert.deepEqual(outcomes, ['success', 'refresh-reuse', 'success']);
    assertProblem(await refresh('unknown-token'), 401, 'INVALID_REFRESH_TOKEN');
  });

  test('an expired refresh token is refused', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    await h.tdb.database.pool.query(
      `update gw_refresh_token set expires_at = now() - interval '1 second'`,
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: pair.refreshToken },
      }),
      401,
      'INVALID_REFRESH_TOKEN',
    );
  });
});

describe('identity: sign-in rate limits', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ RATE_LIMIT_ENABLED: 'true' });
  });
  after(() => h.close());

  test('login: 5 a minute per IP, the same whether the account exists; a signed-in user is limited per user', async () => {
    const user = await createUser(h);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await login(h.app, {
        login: i % 2 ? user.email : 'nobody@example.com',
        password: 'wrong-password',
      });
      statuses.push(res.statusCode);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
    const ok = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { login: user.email, password: user.password },
      remoteAddress: '203.0.113.9',
    });
    assert.equal(ok.statusCode, 200);
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/sessions',
      headers: bearer(ok.json<{ accessToken: string }>().accessToken),
    });
    assert.match(String(res.headers['ratelimit-policy']), /"api-free";q=100;w=60/);
  });

  test('regression: login-account keys on the account, so every spelling (spaces, tab, case, full-width, the user name) shares one bucket of 10', async () => {
    const user = await createUser(h);
    const upper = user.email.toUpperCase();
    const spellings = [
      ` ${user.email}`,
      `${user.email} `,
      `\t${user.email}`,
      `${user.email}\t`,
      `\n${upper}`,
      ` ${upper} `,
      user.username,
      ` ${user.username}`,
      `${user.username.toUpperCase()}\t`,
      `\t${user.username} `,
      `${user.username}\u3000`, // an ideographic space, trimmed like any other
    ];
    // From a new IP each time, so the per-IP limit (5 a minute) never answers first.
    const statuses: number[] = [];
    for (const [i, login] of spellings.entries()) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { login, password: 'wrong-password' },
        remoteAddress: `198.51.100.${i + 1}`,
      });
      statuses.push(res.statusCode);
      if (i === spellings.length - 1) {
        assert.deepEqual(statuses, [...Array<number>(10).fill(401), 429]);
        assert.match(res.body, /login-account/);
      }
    }
    // An unknown login shares its bucket across spellings too (keyed on its normalised form).
    const unknown: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: {
          login: i % 2 ? ` Nobody.Here@Example.COM${'\t'.repeat(i)}` : `nobody.here@example.com `,
          password: 'wrong-password',
        },
        remoteAddress: `198.51.100.${i + 101}`,
      });
      unknown.push(res.statusCode);
    }
    assert.deepEqual(unknown, [...Array<number>(10).fill(401), 429]);
  });
});
