import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import pino from 'pino';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { purgeOidcStatesJob } from '../../src/platform/identity/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import type { TokenPair } from '../../src/platform/identity/index.ts';
import { bearer, createUser, login, signIn, startIdentityHarness } from '../helpers/identity.ts';
import { PUBLIC_URL, type MailHarness } from '../helpers/mail.ts';
import {
  FakeGitHub,
  followToCallback,
  followToFormPost,
  TestOpenIdProvider,
  type ProviderAccount,
} from '../helpers/oidc.ts';
import { assertProblem } from '../helpers/problem.ts';

const CALLBACK_BASE = `${PUBLIC_URL}/api/v1/auth/oidc`;
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');
let seq = 0;
const uniq = () => `${process.pid}x${(seq += 1)}`;

describe('identity: OpenID Connect and GitHub sign-in', () => {
  let h: MailHarness;
  const op = new TestOpenIdProvider();
  const gh = new FakeGitHub();

  before(async () => {
    await op.start([`${CALLBACK_BASE}/idp/callback`, `${CALLBACK_BASE}/idp-post/callback`]);
    await gh.start();
    h = await startIdentityHarness({
      AUTH_OIDC_PROVIDERS: JSON.stringify([
        {
          id: 'idp',
          kind: 'oidc',
          issuer: op.issuer,
          clientId: op.clientId,
          clientSecret: op.clientSecret,
        },
        {
          id: 'idp-post',
          kind: 'oidc',
          issuer: op.issuer,
          clientId: op.clientId,
          clientSecret: op.clientSecret,
          responseMode: 'form_post',
        },
        {
          id: 'github',
          kind: 'github',
          clientId: gh.clientId,
          clientSecret: gh.clientSecret,
          authorizeUrl: `${gh.base}/login/oauth/authorize`,
          tokenUrl: `${gh.base}/login/oauth/access_token`,
          apiUrl: gh.base,
        },
        // Nothing listens on port 1: discovery fails.
        {
          id: 'down',
          kind: 'oidc',
          issuer: 'http://127.0.0.1:1',
          clientId: 'x',
          clientSecret: 'y',
        },
      ]),
    });
  });
  after(async () => {
    await h.close();
    await op.stop();
    await gh.stop();
  });

  const sql = <R extends object>(text: string, values: unknown[] = []) =>
    h.tdb.database.pool.query<R>(text, values).then((r) => r.rows);

  /** Our authorize answer: asserts the 302 and returns the provider URL. */
  async function begin(provider: string, headers: Record<string, string> = {}): Promise<URL> {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/auth/oidc/${provider}/authorize`,
      headers,
    });
    assert.equal(res.statusCode, 302, res.body);
    return new URL(String(res.headers.location));
  }

  const finish = (callback: URL) =>
    h.app.inject({ method: 'GET', url: `${callback.pathname}${callback.search}` });

  /** Authorize → provider (sign in, consent) → the callback URL the provider sends us to. */
  async function throughProvider(
    account: ProviderAccount,
    headers: Record<string, string> = {},
  ): Promise<URL> {
    op.signInAs(account);
    const start = await begin('idp', headers);
    return followToCallback(start.href, CALLBACK_BASE);
  }

  async function oidcSignIn(account: ProviderAccount, headers: Record<string, string> = {}) {
    return finish(await throughProvider(account, headers));
  }

  const account = (over: Partial<ProviderAccount> = {}): ProviderAccount => {
    const id = uniq();
    return {
      sub: `op-${id}`,
      email: `fed${id}@example.com`,
      email_verified: true,
      preferred_username: `Fed.User-${id}`,
      ...over,
    };
  };

  const identitiesOf = (userId: string) =>
    sql<{ id: string; provider: string; subject: string }>(
      'select id, provider, subject from gw_user_identity where user_id = $1 order by created_at',
      [userId],
    );

  test('authorize redirects to the provider with code + PKCE S256, state and nonce, and stores the state hashed for 10 minutes', async () => {
    const url = await begin('idp');
    assert.equal(url.origin, op.issuer);
    const q = url.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), op.clientId);
    assert.equal(q.get('redirect_uri'), `${CALLBACK_BASE}/idp/callback`);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((q.get('state') ?? '').length >= 32);
    assert.ok((q.get('nonce') ?? '').length >= 32);
    assert.deepEqual(q.get('scope')?.split(' '), ['openid', 'email', 'profile']);
    const state = q.get('state') ?? '';
    const rows = await sql<{ state_hash: string; ttl: number; code_verifier: string }>(
      `select state_hash, extract(epoch from expires_at - created_at)::int as ttl, code_verifier
         from gw_oidc_state where state_hash in ($1, $2)`,
      [state, sha256(state)],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.state_hash, sha256(state));
    assert.equal(rows[0]?.ttl, 600);
    // The verifier is sealed: its challenge is not computable from the stored value.
    const stored = rows[0]?.code_verifier ?? '';
    assert.notEqual(
      createHash('sha256').update(stored).digest('base64url'),
      q.get('code_challenge'),
    );
  });

  test('unknown provider: 404 OIDC_PROVIDER_NOT_FOUND (authorize and callback)', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/nope/authorize' });
    assertProblem(res, 404, 'OIDC_PROVIDER_NOT_FOUND');
    const odd = await h.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/IDP%20x/authorize' });
    assertProblem(odd, 404, 'OIDC_PROVIDER_NOT_FOUND');
    const cb = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/oidc/nope/callback?code=x&state=y',
    });
    assertProblem(cb, 404, 'OIDC_PROVIDER_NOT_FOUND');
  });

  test('an unreachable issuer: authorize is 503 OIDC_PROVIDER_UNAVAILABLE and stores no state', async () => {
    const [before] = await sql<{ n: number }>('select count(*)::int as n from gw_oidc_state');
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/down/authorize' });
    assertProblem(res, 503, 'OIDC_PROVIDER_UNAVAILABLE');
    const [afterwards] = await sql<{ n: number }>('select count(*)::int as n from gw_oidc_state');
    assert.equal(afterwards?.n, before?.n);
  });

  test('a new provider user gets an account (verified address, derived user name, no password), a fed session and audit events', async () => {
    const who = account();
    const res = await oidcSignIn(who);
    assert.equal(res.statusCode, 200, res.body);
    const pair = res.json<TokenPair>();
    assert.equal(pair.tokenType, 'Bearer');
    const claims = decodeJwt(pair.accessToken);
    const [user] = await sql<{
      id: string;
      username: string;
      has_password: boolean;
      verified: boolean;
    }>(
      `select id, username, password_hash is not null as has_password,
              email_verified_at is not null as verified from gw_user where email = $1`,
      [who.email],
    );
    assert.ok(user);
    assert.equal(claims.sub, user.id);
    assert.equal(user.username, who.preferred_username?.toLowerCase());
    assert.equal(user.has_password, false);
    assert.equal(user.verified, true);
    const [session] = await sql<{ amr: string[] }>('select amr from gw_session where id = $1', [
      pair.sessionId,
    ]);
    assert.deepEqual(session?.amr, ['fed']);
    const me = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/identities',
      headers: bearer(pair.accessToken),
    });
    assert.equal(me.statusCode, 200, me.body);
    const items = me.json<{ items: { id: string; provider: string; email: string }[] }>().items;
    assert.equal(items.length, 1);
    assert.equal(items[0]?.provider, 'idp');
    assert.equal(items[0]?.email, who.email);
    const actions = (await listAuditEvents(h.tdb.database.db, { actorId: user.id })).map(
      (e) => e.action,
    );
    // Every sign-in is audited as auth.login.success (amr fed), the provider step as auth.oidc.login.
    assert.deepEqual(actions.sort(), ['auth.login.success', 'auth.oidc.login', 'user.register']);

    // The same provider user again: the same account, no second one.
    const again = await oidcSignIn(who);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(decodeJwt(again.json<TokenPair>().accessToken).sub, user.id);
    assert.equal((await identitiesOf(user.id)).length, 1);
  });

  test('form_post response mode (Apple): the provider posts the callback parameters as a form', async () => {
    const who = account();
    op.signInAs(who);
    const start = await begin('idp-post');
    assert.equal(start.searchParams.get('response_mode'), 'form_post');
    const { action, fields } = await followToFormPost(start.href);
    assert.equal(action.href, `${CALLBACK_BASE}/idp-post/callback`);
    assert.ok(fields.code);
    const post = () =>
      h.app.inject({
        method: 'POST',
        url: action.pathname,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(fields).toString(),
      });
    const res = await post();
    assert.equal(res.statusCode, 200, res.body);
    const [user] = await sql<{ id: string }>('select id from gw_user where email = $1', [
      who.email,
    ]);
    assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, user?.id);
    assertProblem(await post(), 400, 'OIDC_LOGIN_FAILED');
  });

  test('a provider-only account (no password) signing in with a password gets the uniform 401', async () => {
    const who = account();
    assert.equal((await oidcSignIn(who)).statusCode, 200);
    const res = await login(h.app, { login: who.email ?? '', password: 'anything-at-all-123' });
    const unknown = await login(h.app, {
      login: `nobody${uniq()}@example.com`,
      password: 'anything-at-all-123',
    });
    assertProblem(res, 401, 'INVALID_CREDENTIALS');
    assert.equal(res.json<{ detail: string }>().detail, unknown.json<{ detail: string }>().detail);
  });

  test('a user name already taken is made unique', async () => {
    const taken = await createUser(h, { username: `dup_${uniq()}` });
    const who = account({ preferred_username: taken.username });
    const res = await oidcSignIn(who);
    assert.equal(res.statusCode, 200, res.body);
    const [user] = await sql<{ username: string }>(
      'select username from gw_user where email = $1',
      [who.email],
    );
    assert.notEqual(user?.username, taken.username);
    assert.match(user?.username ?? '', new RegExp(`^${taken.username}_\\d+$`));
  });

  test('a provider-verified address of an existing account links the identity and signs in to that account', async () => {
    const existing = await createUser(h);
    const who = account({ email: existing.email.toUpperCase() });
    const res = await oidcSignIn(who);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, existing.id);
    const ids = await identitiesOf(existing.id);
    assert.deepEqual(
      ids.map((i) => [i.provider, i.subject]),
      [['idp', who.sub]],
    );
    const link = await listAuditEvents(h.tdb.database.db, {
      actorId: existing.id,
      action: 'auth.oidc.link',
    });
    assert.equal(link.length, 1);
    assert.equal(link[0]?.data.via, 'verified-email');
    // The password still works: linking took nothing away.
    await signIn(h.app, existing);
  });

  test('an UNVERIFIED provider address matching an existing account does not link (400, no identity)', async () => {
    const existing = await createUser(h);
    const res = await oidcSignIn(account({ email: existing.email, email_verified: false }));
    const body = assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
    assert.equal(body.detail.includes(existing.email), false);
    assert.equal((await identitiesOf(existing.id)).length, 0);
  });

  test('an unverified account claimed by a provider-verified address loses the password whoever set it', async () => {
    const squatter = await createUser(h, { verified: false });
    // A session as it could exist with AUTH_REQUIRE_VERIFIED_EMAIL=false.
    const [squat] = await sql<{ id: string }>(
      `insert into gw_session (id, user_id, remember_me, expires_at)
       values (gen_random_uuid(), $1, false, now() + interval '1 day') returning id`,
      [squatter.id],
    );
    const res = await oidcSignIn(account({ email: squatter.email }));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, squatter.id);
    assertProblem(
      await login(h.app, { login: squatter.email, password: squatter.password }),
      401,
      'INVALID_CREDENTIALS',
    );
    const [revoked] = await sql<{ reason: string | null }>(
      'select revoked_reason as reason from gw_session where id = $1',
      [squat?.id],
    );
    assert.equal(revoked?.reason, 'claimed-by-provider');
  });

  test('authorize with an access token links the provider identity to the signed-in user', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const who = account({ email: `other${uniq()}@example.org` });
    const res = await oidcSignIn(who, bearer(pair.accessToken));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, user.id);
    assert.equal((await identitiesOf(user.id)).length, 1);
    assert.equal(
      (await sql('select 1 from gw_user where email = $1', [who.email])).length,
      0,
      'no account was created for the provider address',
    );
    const events = await listAuditEvents(h.tdb.database.db, {
      actorId: user.id,
      action: 'auth.oidc.link',
    });
    assert.equal(events[0]?.data.via, 'signed-in');

    // Linking the same provider user to someone else: 409.
    const other = await createUser(h);
    const otherPair = await signIn(h.app, other);
    const taken = await oidcSignIn(who, bearer(otherPair.accessToken));
    assertProblem(taken, 409, 'OIDC_IDENTITY_TAKEN');
    assert.equal((await identitiesOf(other.id)).length, 0);
  });

  test('a linking flow whose session was signed out before the callback links nothing (regression: a stolen token must not outlive its session)', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const cb = await throughProvider(account(), bearer(pair.accessToken));
    const out = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(pair.accessToken),
    });
    assert.equal(out.statusCode, 204);
    assertProblem(await finish(cb), 400, 'OIDC_LOGIN_FAILED');
    assert.equal((await identitiesOf(user.id)).length, 0);
  });

  test('authorize with an invalid access token is a 401, not an anonymous flow', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/oidc/idp/authorize',
      headers: { authorization: 'Bearer a.b.c' },
    });
    assertProblem(res, 401, 'INVALID_ACCESS_TOKEN');
  });

  test('callback with an unknown state, none, or a state of another provider: 400 OIDC_LOGIN_FAILED', async () => {
    const cb = await throughProvider(account());
    const wrong = new URL(cb);
    wrong.searchParams.set('state', randomBytes(32).toString('base64url'));
    assertProblem(await finish(wrong), 400, 'OIDC_LOGIN_FAILED');
    const none = new URL(cb);
    none.searchParams.delete('state');
    assertProblem(await finish(none), 400, 'OIDC_LOGIN_FAILED');
    const elsewhere = new URL(cb.href.replace('/oidc/idp/', '/oidc/github/'));
    assertProblem(await finish(elsewhere), 400, 'OIDC_LOGIN_FAILED');
    // None of those spent the real state: the genuine callback still works.
    assert.equal((await finish(cb)).statusCode, 200);
  });

  test('a replayed callback (same state) is refused', async () => {
    const cb = await throughProvider(account());
    assert.equal((await finish(cb)).statusCode, 200);
    assertProblem(await finish(cb), 400, 'OIDC_LOGIN_FAILED');
  });

  test('two racing callbacks with the same state: exactly one signs in', async () => {
    const cb = await throughProvider(account());
    const statuses = (await Promise.all([finish(cb), finish(cb)])).map((r) => r.statusCode);
    assert.deepEqual(statuses.sort(), [200, 400]);
  });

  test('an expired state is refused', async () => {
    const cb = await throughProvider(account());
    await sql(
      `update gw_oidc_state set expires_at = now() - interval '1 second' where state_hash = $1`,
      [sha256(cb.searchParams.get('state') ?? '')],
    );
    assertProblem(await finish(cb), 400, 'OIDC_LOGIN_FAILED');
  });

  test('a replayed code with a fresh valid state (same verifier and nonce) is refused by the provider', async () => {
    const cb = await throughProvider(account());
    assert.equal((await finish(cb)).statusCode, 200);
    // An attacker holding the spent code and a state of their own carrying the same secrets.
    const fresh = randomBytes(32).toString('base64url');
    await sql(
      `insert into gw_oidc_state (state_hash, provider, nonce, code_verifier, expires_at)
       select $1, provider, nonce, code_verifier, now() + interval '5 minutes'
         from gw_oidc_state where state_hash = $2`,
      [sha256(fresh), sha256(cb.searchParams.get('state') ?? '')],
    );
    const replay = new URL(cb);
    replay.searchParams.set('state', fresh);
    const res = await finish(replay);
    const body = assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
    assert.equal(/invalid_grant|grant/i.test(JSON.stringify(body)), false, 'no provider text');
  });

  test('the purge job deletes states that ended over a day ago, and only those', async () => {
    const old = await begin('idp');
    const recent = await begin('idp');
    const hashOf = (u: URL) => sha256(u.searchParams.get('state') ?? '');
    await sql(
      `update gw_oidc_state set expires_at = now() - interval '25 hours' where state_hash = $1`,
      [hashOf(old)],
    );
    const result = await purgeOidcStatesJob.handler({}, {
      db: h.tdb.database.db,
      log: pino({ level: 'silent' }),
    } as unknown as JobContext);
    assert.ok(result.deleted >= 1);
    const left = await sql<{ state_hash: string }>(
      'select state_hash from gw_oidc_state where state_hash in ($1, $2)',
      [hashOf(old), hashOf(recent)],
    );
    assert.deepEqual(
      left.map((r) => r.state_hash),
      [hashOf(recent)],
    );
  });

  test('a garbage code (failed exchange) is refused', async () => {
    const cb = await throughProvider(account());
    cb.searchParams.set('code', 'not-a-code');
    assertProblem(await finish(cb), 400, 'OIDC_LOGIN_FAILED');
  });

  test('an ID token issued for another nonce is refused', async () => {
    const who = account();
    op.signInAs(who);
    const start = await begin('idp');
    // The provider is asked with our state and PKCE challenge but another nonce: its ID token
    // then carries a nonce this flow never issued.
    start.searchParams.set('nonce', randomBytes(32).toString('base64url'));
    const cb = await followToCallback(start.href, CALLBACK_BASE);
    assertProblem(await finish(cb), 400, 'OIDC_LOGIN_FAILED');
    assert.equal((await sql('select 1 from gw_user where email = $1', [who.email])).length, 0);
  });

  test('the provider answering error=access_denied is 400 OIDC_LOGIN_FAILED without its text, and spends the state', async () => {
    op.signInAs(account());
    op.refuseNext();
    const start = await begin('idp');
    const cb = await followToCallback(start.href, CALLBACK_BASE);
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    const res = await finish(cb);
    assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
    assert.equal(res.body.includes('aborted'), false);
    assert.equal(res.body.includes('access_denied'), false);
    const [row] = await sql<{ used: boolean }>(
      'select used_at is not null as used from gw_oidc_state where state_hash = $1',
      [sha256(start.searchParams.get('state') ?? '')],
    );
    assert.equal(row?.used, true);
  });

  test('a hand-made callback with error params and a raw description does not echo it', async () => {
    const start = await begin('idp');
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/auth/oidc/idp/callback?error=server_error&error_description=${encodeURIComponent('<script>boom</script>')}&state=${start.searchParams.get('state') ?? ''}`,
    });
    assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
    assert.equal(res.body.includes('boom'), false);
  });

  test('identities: unlinking the last sign-in method is 409; another user\u2019s identity is 404; otherwise 204 with an audit event', async () => {
    // A provider-only account with one identity.
    const who = account();
    const pair = (await oidcSignIn(who)).json<TokenPair>();
    const userId = String(decodeJwt(pair.accessToken).sub);
    const [only] = await identitiesOf(userId);
    assert.ok(only);
    const del = (id: string, token: string) =>
      h.app.inject({
        method: 'DELETE',
        url: `/api/v1/auth/identities/${id}`,
        headers: bearer(token),
      });
    assertProblem(await del(only.id, pair.accessToken), 409, 'LAST_SIGN_IN_METHOD');
    assert.equal((await identitiesOf(userId)).length, 1);

    // Someone else cannot see or remove it.
    const stranger = await createUser(h);
    const strangerPair = await signIn(h.app, stranger);
    assertProblem(await del(only.id, strangerPair.accessToken), 404, 'IDENTITY_NOT_FOUND');
    const list = await h.app.inject({
      method: 'GET',
      url: '/api/v1/auth/identities',
      headers: bearer(strangerPair.accessToken),
    });
    assert.deepEqual(list.json(), { items: [] });
    assertProblem(
      await del('00000000-0000-4000-8000-000000000000', pair.accessToken),
      404,
      'IDENTITY_NOT_FOUND',
    );

    // With a second identity (GitHub, linked while signed in), one of them may go.
    gh.signInAs({
      id: 9_000_000 + seq,
      login: `octo${uniq()}`,
      email: null,
      emails: [{ email: `gh${uniq()}@example.net`, primary: true, verified: true }],
    });
    const ghStart = await begin('github', bearer(pair.accessToken));
    const linked = await finish(await followToCallback(ghStart.href, CALLBACK_BASE));
    assert.equal(linked.statusCode, 200, linked.body);
    assert.equal((await identitiesOf(userId)).length, 2);
    const res = await del(only.id, pair.accessToken);
    assert.equal(res.statusCode, 204, res.body);
    assert.equal((await identitiesOf(userId)).length, 1);
    const events = await listAuditEvents(h.tdb.database.db, {
      actorId: userId,
      action: 'auth.oidc.unlink',
    });
    assert.equal(events.length, 1);
    assert.equal(events[0]?.data.provider, 'idp');

    // A password account may unlink its only identity.
    const pwd = await createUser(h);
    const pwdPair = await signIn(h.app, pwd);
    assert.equal((await oidcSignIn(account(), bearer(pwdPair.accessToken))).statusCode, 200);
    const [pwdIdentity] = await identitiesOf(pwd.id);
    assert.equal((await del(pwdIdentity?.id ?? '', pwdPair.accessToken)).statusCode, 204);
  });

  test('identities need a signed-in user', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/auth/identities' });
    assertProblem(res, 401, 'UNAUTHORIZED');
  });

  describe('GitHub', () => {
    const ghUser = (over: Partial<Parameters<FakeGitHub['signInAs']>[0]> = {}) => {
      const id = uniq();
      return {
        id: 7_000_000 + seq,
        login: `Octo-${id}`,
        email: null,
        emails: [
          { email: `noreply${id}@users.noreply.github.com`, primary: false, verified: true },
          { email: `octo${id}@example.com`, primary: true, verified: true },
        ],
        ...over,
      };
    };

    test('authorize uses PKCE S256 and state (no nonce); the callback creates an account from the verified primary address', async () => {
      const user = ghUser();
      gh.signInAs(user);
      const start = await begin('github');
      assert.equal(start.origin + start.pathname, `${gh.base}/login/oauth/authorize`);
      assert.equal(start.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(start.searchParams.get('nonce'), null);
      assert.equal(start.searchParams.get('scope'), 'read:user user:email');
      const res = await finish(await followToCallback(start.href, CALLBACK_BASE));
      assert.equal(res.statusCode, 200, res.body);
      const primary = user.emails[1]?.email ?? '';
      const [row] = await sql<{ id: string; username: string }>(
        'select id, username from gw_user where email = $1',
        [primary],
      );
      assert.equal(row?.username, user.login.toLowerCase());
      assert.equal(decodeJwt(res.json<TokenPair>().accessToken).sub, row?.id);
      const sent = gh.tokenRequests.at(-1);
      assert.ok(sent?.get('code_verifier'), 'the token request carries the PKCE verifier');
      assert.equal(sent?.get('client_secret'), gh.clientSecret);
    });

    test('an unverified primary address matching an account does not link (400)', async () => {
      const existing = await createUser(h);
      gh.signInAs(ghUser({ emails: [{ email: existing.email, primary: true, verified: false }] }));
      const start = await begin('github');
      const res = await finish(await followToCallback(start.href, CALLBACK_BASE));
      assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
      assert.equal((await identitiesOf(existing.id)).length, 0);
    });

    test('access_denied from GitHub and a replayed code are 400 OIDC_LOGIN_FAILED', async () => {
      gh.refuseNext();
      const denied = await begin('github');
      const res = await finish(await followToCallback(denied.href, CALLBACK_BASE));
      assertProblem(res, 400, 'OIDC_LOGIN_FAILED');
      assert.equal(res.body.includes('denied your application'), false);

      gh.signInAs(ghUser());
      const start = await begin('github');
      const cb = await followToCallback(start.href, CALLBACK_BASE);
      assert.equal((await finish(cb)).statusCode, 200);
      const fresh = randomBytes(32).toString('base64url');
      await sql(
        `insert into gw_oidc_state (state_hash, provider, nonce, code_verifier, expires_at)
         select $1, provider, nonce, code_verifier, now() + interval '5 minutes'
           from gw_oidc_state where state_hash = $2`,
        [sha256(fresh), sha256(cb.searchParams.get('state') ?? '')],
      );
      cb.searchParams.set('state', fresh);
      const replay = await finish(cb);
      assertProblem(replay, 400, 'OIDC_LOGIN_FAILED');
      assert.equal(replay.body.includes('incorrect or expired'), false);
    });
  });
});
