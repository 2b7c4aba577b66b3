import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { testConfig, TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  login,
  mailsTo,
  signIn,
  startIdentityHarness,
  GOOD_PASSWORD,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';
import { KeyRing, type TokenPair, identitySettings } from '../../src/platform/identity/index.ts';
import { closeRedis, connectRedis } from '../../src/platform/redis/index.ts';
import { createLogger } from '../../src/platform/observability/index.ts';
import { Writable } from 'node:stream';

const ISSUER = 'https://app.example.test';
const AUDIENCE = 'groundwork-api';
const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const CHROME_MAC_NEWER = CHROME_MAC.replace('Chrome/120.0.0.0', 'Chrome/131.0.0.0');
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

const pem = (type: 'ed25519') => {
  const pair = generateKeyPairSync(type);
  return {
    private: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    public: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
};

const sessionsOf = (h: MailHarness, token: string) =>
  h.app.inject({ method: 'GET', url: '/api/v1/auth/sessions', headers: bearer(token) });
const post = (h: MailHarness, url: string, token: string) =>
  h.app.inject({ method: 'POST', url, headers: bearer(token) });

/** Revocation checks shared by the in-process and the Redis backends: every path, cache warm. */
function revocationSuite(h: () => MailHarness, skip: { skip?: string } = {}) {
  const warm = async (token: string) => {
    for (let i = 0; i < 3; i++) assert.equal((await sessionsOf(h(), token)).statusCode, 200);
  };

  test(
    'regression (revocation stays immediate with the cache): logout, then the very next request with the warm token is 401',
    skip,
    async () => {
      const user = await createUser(h());
      const pair = await signIn(h().app, user);
      await warm(pair.accessToken);
      assert.equal((await post(h(), '/api/v1/auth/logout', pair.accessToken)).statusCode, 204);
      assertProblem(await sessionsOf(h(), pair.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    },
  );

  test(
    'logout-all and DELETE /auth/sessions/:id: the warm tokens of the revoked sessions fail at once',
    skip,
    async () => {
      const user = await createUser(h());
      const a = await signIn(h().app, user);
      const b = await signIn(h().app, user);
      const c = await signIn(h().app, user);
      await warm(a.accessToken);
      await warm(b.accessToken);
      await warm(c.accessToken);
      const del = await h().app.inject({
        method: 'DELETE',
        url: `/api/v1/auth/sessions/${b.sessionId}`,
        headers: bearer(a.accessToken),
      });
      assert.equal(del.statusCode, 204);
      assertProblem(await sessionsOf(h(), b.accessToken), 401, 'INVALID_ACCESS_TOKEN');
      assert.equal((await sessionsOf(h(), a.accessToken)).statusCode, 200, 'the others stay live');
      assert.equal((await post(h(), '/api/v1/auth/logout-all', a.accessToken)).statusCode, 204);
      assertProblem(await sessionsOf(h(), a.accessToken), 401, 'INVALID_ACCESS_TOKEN');
      assertProblem(await sessionsOf(h(), c.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    },
  );

  test(
    'refresh reuse after the grace window: the warm access token of the session fails on the next request',
    skip,
    async () => {
      const user = await createUser(h());
      const first = await signIn(h().app, user);
      const refresh = (refreshToken: string) =>
        h().app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
      const next = (await refresh(first.refreshToken)).json<TokenPair>();
      await warm(next.accessToken);
      await h().tdb.database.pool.query(
        `update gw_refresh_token set spent_at = now() - interval '11 seconds'
        where session_id = $1 and spent_at is not null`,
        [first.sessionId],
      );
      assertProblem(await refresh(first.refreshToken), 401, 'INVALID_REFRESH_TOKEN');
      assertProblem(await sessionsOf(h(), next.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    },
  );

  test(
    'the check is cached (a revocation behind its back is not seen) until invalidateSessions, which other flows call',
    skip,
    async () => {
      const user = await createUser(h());
      const pair = await signIn(h().app, user);
      await warm(pair.accessToken);
      // Revoked in the database without the invalidation: proves the answer comes from the cache.
      await h().tdb.database.pool.query(`update gw_session set revoked_at = now() where id = $1`, [
        pair.sessionId,
      ]);
      assert.equal((await sessionsOf(h(), pair.accessToken)).statusCode, 200);
      const service = identityService(h());
      assert.ok(service);
      await service.invalidateSessions(user.id);
      assertProblem(await sessionsOf(h(), pair.accessToken), 401, 'INVALID_ACCESS_TOKEN');
    },
  );
}

const identityService = (h: MailHarness) => h.app.identity.service;

describe('identity sessions: cached session check (in-process backend)', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({ AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY });
  });
  after(() => h.close());

  test('the cache is on (in process: APP_ENV=test) with the 30 s default', () => {
    const service = identityService(h);
    assert.ok(service);
    assert.equal(service.sessionCache.backend, 'memory');
    assert.equal(identitySettings(h.config).sessionCacheTtlS, 30);
  });

  revocationSuite(() => h);

  test('routes with auth none carry no authentication hook; API routes do (attached at registration)', () => {
    const tree = h.app.printRoutes({ includeHooks: true, commonPrefix: false });
    const lines = tree.split('\n');
    // The hooks of a route are the `•` lines under its `path (METHOD)` line.
    const block = (path: string, method: string) => {
      const at = lines.findIndex((l) => l.includes(`${path} (${method})`));
      assert.ok(at >= 0, `${method} ${path} in the route tree`);
      const hooks: string[] = [];
      for (const line of lines.slice(at + 1)) {
        if (!line.includes('•')) break;
        hooks.push(line);
      }
      return hooks.join('\n');
    };
    assert.doesNotMatch(block('/health', 'GET'), /authenticate/);
    assert.doesNotMatch(block('/metrics', 'GET'), /authenticate/);
    assert.doesNotMatch(block('/api/v1/auth/login', 'POST'), /authenticate/);
    assert.match(block('/api/v1/auth/sessions', 'GET'), /authenticate/);
  });
});

describe('identity sessions: cached session check (Redis backend)', async () => {
  const skip = await needsRedis();
  let h: MailHarness;
  let close: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    if (skip.skip) return;
    const overrides = {
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `gwtest:sessions:${randomUUID()}:`,
    };
    const logger = createLogger({
      level: 'silent',
      destination: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    const redis = await connectRedis(testConfig(overrides), logger);
    h = await startIdentityHarness(overrides, { redis });
    close = async () => {
      await h.close();
      if (redis) await closeRedis(redis);
    };
  });
  after(() => close());

  test('the cache is in Redis', skip, () => {
    assert.equal(identityService(h)?.sessionCache.backend, 'redis');
  });

  revocationSuite(() => h, skip);
});

describe('identity sessions: signing-key rotation', () => {
  const old = pem('ed25519');
  const current = pem('ed25519');
  let h: MailHarness;
  let oldRing: KeyRing;
  before(async () => {
    // The old key listed by its public half only: all verification needs.
    h = await startIdentityHarness({
      AUTH_JWT_PRIVATE_KEY: current.private,
      AUTH_JWT_PREVIOUS_KEYS: old.public.replace(/\n/g, '\\n'),
    });
    oldRing = await KeyRing.create({
      privateKeyPem: old.private,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTokenTtlS: 900,
    });
  });
  after(() => h.close());

  test('the current key signs; the previous key stays in the JWKS and its tokens still verify', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const jwks = (await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{
      keys: { kid: string; d?: string }[];
    }>();
    assert.deepEqual(
      jwks.keys.map((k) => k.kid),
      [h.app.identity.keys.kid, oldRing.kid],
    );
    assert.ok(
      jwks.keys.every((k) => k.d === undefined),
      'no private part published',
    );
    assert.equal(decodeProtectedHeader(pair.accessToken).kid, h.app.identity.keys.kid);
    const byOld = await oldRing.sign({ sub: user.id, sid: pair.sessionId });
    assert.equal((await sessionsOf(h, byOld)).statusCode, 200);
  });

  test('bad input: a token signed by a removed previous key, or by an unknown kid, is refused', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const byOld = await oldRing.sign({ sub: user.id, sid: pair.sessionId });
    // After the removal (the ring of a restart without AUTH_JWT_PREVIOUS_KEYS):
    const removed = await KeyRing.create({
      privateKeyPem: current.private,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTokenTtlS: 900,
    });
    await assert.rejects(removed.verify(byOld));
    assert.ok(await removed.verify(pair.accessToken));
    const stranger = await KeyRing.create({
      privateKeyPem: pem('ed25519').private,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTokenTtlS: 900,
    });
    const unknown = await stranger.sign({ sub: user.id, sid: pair.sessionId });
    assertProblem(await sessionsOf(h, unknown), 401, 'INVALID_ACCESS_TOKEN');
  });
});

describe('identity sessions: devices, new-sign-in mail, cookie mode, audit', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      CORS_ORIGINS: 'https://spa.example.test',
    });
  });
  after(() => h.close());

  const signInAs = async (user: { email: string; password: string }, agent: string) => {
    const res = await login(
      h.app,
      { login: user.email, password: user.password },
      { 'user-agent': agent },
    );
    assert.equal(res.statusCode, 200, res.body);
    return res.json<TokenPair>();
  };

  test('sessions and login history carry the parsed device beside the raw agent', async () => {
    const user = await createUser(h);
    const pair = await signInAs(user, CHROME_MAC);
    const sessions = (await sessionsOf(h, pair.accessToken)).json<{
      items: { userAgent: string; device: unknown }[];
    }>().items;
    assert.equal(sessions[0]?.userAgent, CHROME_MAC);
    assert.deepEqual(sessions[0]?.device, { browser: 'Chrome', os: 'macOS', platform: 'desktop' });
    const history = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/login-history',
      headers: bearer(pair.accessToken),
    });
    const items = history.json<{ items: { userAgent: string; device: unknown }[] }>().items;
    assert.deepEqual(items[0]?.device, { browser: 'Chrome', os: 'macOS', platform: 'desktop' });
    assert.equal(items[0]?.userAgent, CHROME_MAC);
  });

  test('a sign-in from a new device mails "new sign-in"; the first sign-in and a known device (newer version) do not', async () => {
    const user = await createUser(h);
    await signInAs(user, CHROME_MAC);
    await signInAs(user, CHROME_MAC_NEWER);
    assert.deepEqual(await mailsTo(h, user.email), [], 'first sign-in, then the same device');
    // A failure from a new device is no sign-in: it neither mails nor makes the device known.
    const failed = await login(
      h.app,
      { login: user.email, password: 'wrong-password-123' },
      { 'user-agent': FIREFOX_LINUX },
    );
    assert.equal(failed.statusCode, 401);
    assert.deepEqual(await mailsTo(h, user.email), []);
    await signInAs(user, FIREFOX_LINUX);
    assert.deepEqual(await mailsTo(h, user.email), ['identity.new-sign-in']);
    const { rows } = await h.tdb.database.pool.query<{ vars: { device: string; ip: string } }>(
      `select vars from gw_mail_delivery where recipient = $1`,
      [user.email],
    );
    assert.equal(rows[0]?.vars.device, 'Firefox on Linux (desktop)');
    assert.equal(rows[0]?.vars.ip, '127.0.0.1');
    await signInAs(user, FIREFOX_LINUX);
    assert.equal((await mailsTo(h, user.email)).length, 1, 'now a known device');
  });

  const cookieLogin = async (user: { email: string; password: string }) => {
    const res = await login(
      h.app,
      { login: user.email, password: user.password },
      { 'x-token-transport': 'cookie' },
    );
    assert.equal(res.statusCode, 200, res.body);
    return res;
  };
  const cookiesOf = (res: { cookies: { name: string; value: string }[] }) =>
    Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));
  const refreshWith = (
    jar: Record<string, string>,
    headers: Record<string, string>,
    method: 'POST' | 'DELETE' = 'POST',
  ) =>
    h.app.inject({
      method,
      url: '/api/v1/auth/refresh',
      headers: {
        cookie: Object.entries(jar)
          .map(([k, v]) => `${k}=${v}`)
          .join('; '),
        ...headers,
      },
      ...(method === 'POST' ? { payload: {} } : {}),
    });

  test('cookie mode: the refresh token is only in an HttpOnly, Secure, SameSite=Strict cookie on the refresh path', async () => {
    const user = await createUser(h);
    const res = await cookieLogin(user);
    const body = res.json<Record<string, unknown>>();
    assert.equal(body.refreshToken, undefined, 'not in the body');
    assert.equal(typeof body.accessToken, 'string');
    const setCookie = [res.headers['set-cookie'] ?? []].flat();
    const refresh = setCookie.find((c) => c.startsWith('__Secure-gw_refresh='));
    const csrf = setCookie.find((c) => c.startsWith('__Host-gw_csrf='));
    assert.ok(refresh && csrf, setCookie.join(' | '));
    const attrs = (c: string) =>
      c
        .split(';')
        .slice(1)
        .map((a) => a.trim())
        .filter((a) => !a.startsWith('Max-Age='))
        .sort();
    assert.deepEqual(attrs(refresh), [
      'HttpOnly',
      'Path=/api/v1/auth/refresh',
      'SameSite=Strict',
      'Secure',
    ]);
    assert.deepEqual(attrs(csrf), ['Path=/', 'SameSite=Strict', 'Secure'], 'readable by script');
    assert.match(refresh, /Max-Age=(86399|86400)(;|$)/);
    assert.equal(res.headers['cache-control'], 'no-store');
    // Without the header, the classic body answer.
    const plain = await signIn(h.app, user);
    assert.equal(typeof plain.refreshToken, 'string');
  });

  test('cookie mode: refresh reads the cookie with Origin and the CSRF header, and answers in cookie mode; DELETE signs out', async () => {
    const user = await createUser(h);
    const jar = cookiesOf(await cookieLogin(user));
    const csrf = jar['__Host-gw_csrf'] as string;
    for (const origin of [ISSUER, 'https://spa.example.test']) {
      const res = await refreshWith(jar, {
        origin,
        'x-csrf-token': jar['__Host-gw_csrf'] as string,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json<Record<string, unknown>>().refreshToken, undefined);
      const next = cookiesOf(res);
      assert.notEqual(next['__Secure-gw_refresh'], jar['__Secure-gw_refresh'], 'rotated');
      assert.notEqual(next['__Host-gw_csrf'], csrf, 'the CSRF token follows the refresh token');
      Object.assign(jar, next);
    }
    const out = await refreshWith(
      jar,
      { origin: ISSUER, 'x-csrf-token': jar['__Host-gw_csrf'] as string },
      'DELETE',
    );
    assert.equal(out.statusCode, 204, out.body);
    const cleared = [out.headers['set-cookie'] ?? []].flat();
    assert.ok(
      cleared.some((c) => /^__Secure-gw_refresh=;.*Max-Age=0/.test(c)),
      cleared.join(' | '),
    );
    assert.ok(cleared.some((c) => /^__Host-gw_csrf=;.*Max-Age=0/.test(c)));
    assertProblem(
      await refreshWith(jar, { origin: ISSUER, 'x-csrf-token': jar['__Host-gw_csrf'] as string }),
      401,
      'INVALID_REFRESH_TOKEN',
    );
    const [event] = await listAuditEvents(h.tdb.database.db, {
      actorId: user.id,
      action: 'auth.logout',
    });
    assert.ok(event, 'the cookie sign-out is audited');
  });

  test('bad input, cookie mode: no CSRF header, a wrong one, a foreign Origin, no Origin: 403 and the token is not spent', async () => {
    const user = await createUser(h);
    const jar = cookiesOf(await cookieLogin(user));
    const csrf = jar['__Host-gw_csrf'] as string;
    assertProblem(await refreshWith(jar, { origin: ISSUER }), 403, 'CSRF_TOKEN_INVALID');
    assertProblem(
      await refreshWith(jar, { origin: ISSUER, 'x-csrf-token': `${csrf.slice(0, -2)}xx` }),
      403,
      'CSRF_TOKEN_INVALID',
    );
    // A CSRF cookie planted beside the refresh cookie, matched by the header: not this token's.
    assertProblem(
      await refreshWith(
        { ...jar, '__Host-gw_csrf': 'planted-by-a-sibling' },
        { origin: ISSUER, 'x-csrf-token': 'planted-by-a-sibling' },
      ),
      403,
      'CSRF_TOKEN_INVALID',
    );
    assertProblem(
      await refreshWith(jar, { origin: 'https://evil.example', 'x-csrf-token': csrf }),
      403,
      'ORIGIN_NOT_ALLOWED',
    );
    assertProblem(await refreshWith(jar, { 'x-csrf-token': csrf }), 403, 'ORIGIN_NOT_ALLOWED');
    assertProblem(
      await refreshWith(jar, { origin: 'null', 'x-csrf-token': csrf }),
      403,
      'ORIGIN_NOT_ALLOWED',
    );
    assertProblem(
      await refreshWith(jar, { origin: 'https://evil.example', 'x-csrf-token': csrf }, 'DELETE'),
      403,
      'ORIGIN_NOT_ALLOWED',
    );
    assertProblem(await refreshWith(jar, { origin: ISSUER }, 'DELETE'), 403, 'CSRF_TOKEN_INVALID');
    // None of the refused requests spent the token or ended the session.
    const ok = await refreshWith(jar, { origin: ISSUER, 'x-csrf-token': csrf });
    assert.equal(ok.statusCode, 200, ok.body);
    // No cookie and no body token: 401, not a 500.
    assertProblem(
      await h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {} }),
      401,
      'INVALID_REFRESH_TOKEN',
    );
  });

  const audits = async (actorId: string) =>
    (await listAuditEvents(h.tdb.database.db, { actorId })).reverse();

  test('audit: register, sign-in success and failure, lockout, logout, logout-all, session revoke, refresh reuse, with actor, ip and request id', async () => {
    const email = `audit${String(process.pid)}@example.com`;
    const reg = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email, username: `audit_${String(process.pid)}`, password: GOOD_PASSWORD },
      headers: { 'x-request-id': 'req-register-1' },
    });
    assert.equal(reg.statusCode, 202, reg.body);
    const { rows } = await h.tdb.database.pool.query<{ id: string }>(
      'select id from gw_user where email = $1',
      [email],
    );
    const registered = (await audits(rows[0]?.id as string))[0];
    assert.equal(registered?.action, 'user.register');
    assert.equal(registered.requestId, 'req-register-1');
    assert.equal(registered.ip, '127.0.0.1');

    const user = await createUser(h);
    const ok = await login(
      h.app,
      { login: user.email, password: user.password },
      { 'x-request-id': 'req-login-1' },
    );
    const pair = ok.json<TokenPair>();
    const second = await signIn(h.app, user);
    const third = await signIn(h.app, user);
    await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/sessions/${second.sessionId}`,
      headers: { ...bearer(pair.accessToken), 'x-request-id': 'req-revoke-1' },
    });
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { ...bearer(pair.accessToken), 'x-request-id': 'req-logout-1' },
    });
    // Refresh reuse on the third session, after the grace window.
    const next = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken: third.refreshToken },
    });
    assert.equal(next.statusCode, 200);
    await h.tdb.database.pool.query(
      `update gw_refresh_token set spent_at = now() - interval '11 seconds'
        where session_id = $1 and spent_at is not null`,
      [third.sessionId],
    );
    const reuse = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken: third.refreshToken },
      headers: { 'x-request-id': 'req-reuse-1' },
    });
    assert.equal(reuse.statusCode, 401);
    const fourth = await signIn(h.app, user);
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout-all',
      headers: { ...bearer(fourth.accessToken), 'x-request-id': 'req-all-1' },
    });
    for (let i = 0; i < 5; i++)
      await login(
        h.app,
        { login: user.email, password: 'wrong-password-123' },
        { 'x-request-id': `req-fail-${String(i)}` },
      );
    const events = await audits(user.id);
    assert.deepEqual(
      events.map((e) => e.action),
      [
        'auth.login.success',
        'auth.login.success',
        'auth.login.success',
        'auth.session.revoke',
        'auth.logout',
        'auth.refresh.reuse',
        'auth.login.success',
        'auth.logout-all',
        'auth.login.failure',
        'auth.login.failure',
        'auth.login.failure',
        'auth.login.failure',
        'auth.login.failure',
        'auth.lockout',
      ],
    );
    const by = (id: string) => events.filter((e) => e.requestId === id).map((e) => e.action);
    assert.deepEqual(by('req-login-1'), ['auth.login.success']);
    assert.deepEqual(by('req-revoke-1'), ['auth.session.revoke']);
    assert.deepEqual(by('req-logout-1'), ['auth.logout']);
    assert.deepEqual(by('req-reuse-1'), ['auth.refresh.reuse']);
    assert.deepEqual(by('req-all-1'), ['auth.logout-all']);
    assert.deepEqual(by('req-fail-4'), ['auth.login.failure', 'auth.lockout']);
    assert.ok(events.every((e) => e.actorId === user.id && e.ip === '127.0.0.1'));
    assert.deepEqual(
      events.find((e) => e.action === 'auth.session.revoke')?.subjectId,
      second.sessionId,
    );
    // Locked now: the refused attempt is a failure with its reason, and nothing else.
    await login(h.app, { login: user.email, password: user.password });
    const last = (await audits(user.id)).at(-1);
    assert.equal(last?.action, 'auth.login.failure');
    assert.deepEqual(last.data, { reason: 'locked' });
  });

  test('audit rollback: a sign-in or a logout whose change fails writes no audit event', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const pool = h.tdb.database.pool;
    await pool.query(`create function gw_test_refuse() returns trigger language plpgsql as $$
      begin raise exception 'refused by the test'; end $$`);
    await pool.query(`create trigger gw_test_refuse_session before insert or update on gw_session
      for each row when (new.user_id = '${user.id}') execute function gw_test_refuse()`);
    try {
      const before = (await audits(user.id)).length;
      const failed = await login(h.app, { login: user.email, password: user.password });
      assert.equal(failed.statusCode, 500, failed.body);
      const out = await post(h, '/api/v1/auth/logout', pair.accessToken);
      assert.equal(out.statusCode, 500, out.body);
      assert.equal((await audits(user.id)).length, before, 'no event for the rolled-back changes');
      const { rows } = await pool.query(
        `select 1 from gw_login_event where user_id = $1 and outcome = 'success'`,
        [user.id],
      );
      assert.equal(rows.length, 1, 'only the first sign-in is recorded');
    } finally {
      await pool.query('drop trigger gw_test_refuse_session on gw_session');
      await pool.query('drop function gw_test_refuse()');
    }
    assert.equal((await sessionsOf(h, pair.accessToken)).statusCode, 200, 'still signed in');
  });
});
