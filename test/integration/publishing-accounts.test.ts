// The accounts half of publishing through HTTP against the fake platforms: OAuth connect (state,
// PKCE, denied consent, replayed code), reconnect in place, the account routes (another user's
// account is a 404), encrypted tokens, the refresh (edge cases), the reauth episode and key rotation.
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  accountJobs,
  AccountsService,
  accountsServiceOf,
  TokenKeys,
} from '../../src/apps/publishing/accounts/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { userTag } from '../../src/platform/cache/index.ts';
import type { ConnectableAdapter } from '../../src/apps/publishing/platforms/oauth.ts';
import {
  PlatformError,
  type PlatformId,
  type PublishingPostHooks,
} from '../../src/apps/publishing/platforms/types.ts';
import { publishingApp } from '../../src/apps/publishing/index.ts';
import { ConfigError, loadConfig } from '../../src/platform/config/index.ts';
import { publishingRuntime } from '../../src/apps/publishing/runtime.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { rollback } from '../../src/platform/db/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { LogCapture } from '../helpers/app.ts';
import { createUser, signIn } from '../helpers/identity.ts';
import { createTestDatabase } from '../helpers/db.ts';
import type { PublishingSettings } from '../../src/apps/publishing/settings.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  connectFakeAccount,
  fakeConsent,
  PUBLISHING_PREFIX,
  startPublishingHarness,
  type ConnectedAccount,
  publishingTestConfig,
  type PublishingHarness,
} from '../helpers/publishing.ts';

let h: PublishingHarness;

before(async () => {
  h = await startPublishingHarness();
});
after(async () => {
  await h?.close();
});

const get = (url: string, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url: `${PUBLISHING_PREFIX}${url}`, headers });

describe('publishing accounts: connect', () => {
  test('each platform connects through its OAuth consent; the account is listed, tokens sealed', async () => {
    const user = await h.user();
    for (const platform of ['instagram', 'facebook', 'youtube'] as const) {
      const account = await connectFakeAccount(h.app, user.token, platform);
      assert.equal(account.platform, platform);
      assert.equal(account.status, 'active');
      const { rows } = await h.tdb.database.pool.query<{
        access_token_sealed: string;
        refresh_token_sealed: string | null;
      }>('select access_token_sealed, refresh_token_sealed from publishing_account where id = $1', [
        account.id,
      ]);
      const sealed = rows[0]!.access_token_sealed;
      assert.match(sealed, /^v1\.app\./, 'sealed under the key derived from APP_SECRET');
      assert.ok(!sealed.includes(`${platform}-at-`), 'no plain token stored');
      if (platform === 'youtube') assert.match(rows[0]!.refresh_token_sealed ?? '', /^v1\.app\./);
    }
    const list = await get('/accounts', user.headers);
    assert.equal(list.statusCode, 200, list.body);
    assert.deepEqual(
      list
        .json<{ items: ConnectedAccount[] }>()
        .items.map((a) => a.platform)
        .sort(),
      ['facebook', 'instagram', 'youtube'],
    );
  });
});

beforeEach(() => h.fakes.reset());

const pool = () => h.tdb.database.pool;
async function row(id: string) {
  const { rows } = await pool().query<{
    status: string;
    status_reason: string | null;
    access_token_sealed: string | null;
    refresh_token_sealed: string | null;
    token_expires_at: Date | null;
    reauth_notified_at: Date | null;
    deleted_at: Date | null;
  }>('select * from publishing_account where id = $1', [id]);
  return rows[0]!;
}
const count = async (sql: string, params: unknown[]) =>
  (await pool().query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;
const accountRows = () => count('select count(*)::int as n from publishing_account', []);

describe('publishing accounts: OAuth callback refusals', () => {
  test('a wrong, missing or other-platform state: 400 PUBLISHING_OAUTH_STATE_INVALID, nothing stored', async () => {
    const user = await h.user();
    const before = await accountRows();
    const callback = await fakeConsent(h.app, user.token, 'youtube');
    const url = new URL(callback, 'https://x');
    const code = url.searchParams.get('code') ?? '';
    assertProblem(
      await get(`/accounts/callback/youtube?state=forged&code=${code}`),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    assertProblem(
      await get(`/accounts/callback/youtube?code=${code}`),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    // The state was issued for youtube: the instagram callback does not take it.
    assertProblem(
      await get(`/accounts/callback/instagram${url.search}`),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    assert.equal(await accountRows(), before);
    // The genuine callback still works once.
    assert.equal((await h.app.inject({ method: 'GET', url: callback })).statusCode, 200);
  });

  test('an expired state: 400, nothing stored', async () => {
    const user = await h.user();
    const callback = await fakeConsent(h.app, user.token, 'facebook');
    await pool().query(
      `update publishing_oauth_state set expires_at = now() - interval '1 second' where user_id = $1`,
      [user.id],
    );
    const before = await accountRows();
    assertProblem(
      await h.app.inject({ method: 'GET', url: callback }),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    assert.equal(await accountRows(), before);
  });

  test('a replayed callback is refused (single-use state); a replayed code under a new state is refused by the platform', async () => {
    const user = await h.user();
    const callback = await fakeConsent(h.app, user.token, 'youtube');
    assert.equal((await h.app.inject({ method: 'GET', url: callback })).statusCode, 200);
    const before = await accountRows();
    assertProblem(
      await h.app.inject({ method: 'GET', url: callback }),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    // The same code with a fresh state of this user: the platform refuses the used code.
    const fresh = new URL(await fakeConsent(h.app, user.token, 'youtube'), 'https://x');
    const oldCode = new URL(callback, 'https://x').searchParams.get('code') ?? '';
    const replay = await get(
      `/accounts/callback/youtube?state=${encodeURIComponent(fresh.searchParams.get('state') ?? '')}&code=${encodeURIComponent(oldCode)}`,
    );
    assertProblem(replay, 400, 'PUBLISHING_OAUTH_CODE_INVALID');
    assert.equal(await accountRows(), before);
  });

  test('a denied consent: 400 PUBLISHING_OAUTH_DENIED, the state is spent, nothing stored', async () => {
    const user = await h.user();
    h.fakes.set('instagram', { consentDenied: true });
    const callback = await fakeConsent(h.app, user.token, 'instagram');
    assert.match(callback, /error=access_denied/);
    const before = await accountRows();
    const denied = assertProblem(
      await h.app.inject({ method: 'GET', url: callback }),
      400,
      'PUBLISHING_OAUTH_DENIED',
    );
    assert.match(denied.detail ?? '', /access_denied/);
    assertProblem(
      await h.app.inject({ method: 'GET', url: callback }),
      400,
      'PUBLISHING_OAUTH_STATE_INVALID',
    );
    assert.equal(await accountRows(), before);
  });

  test('the platform failing during the exchange: 503 PUBLISHING_PLATFORM_UNAVAILABLE', async () => {
    const user = await h.user();
    const callback = await fakeConsent(h.app, user.token, 'youtube');
    h.fakes.set('youtube', { serverError: true });
    assertProblem(
      await h.app.inject({ method: 'GET', url: callback }),
      503,
      'PUBLISHING_PLATFORM_UNAVAILABLE',
    );
  });

  test('connect: anonymous 401, an unknown platform 422; the redirect carries state and PKCE S256', async () => {
    assertProblem(await get('/accounts/connect/youtube'), 401, 'UNAUTHORIZED');
    const user = await h.user();
    assertProblem(await get('/accounts/connect/tiktok', user.headers), 422, 'VALIDATION_FAILED');
    const res = await get('/accounts/connect/youtube', user.headers);
    assert.equal(res.statusCode, 302);
    const consent = new URL(String(res.headers.location));
    assert.equal(consent.searchParams.get('code_challenge_method'), 'S256');
    assert.match(consent.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(consent.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(
      consent.searchParams.get('redirect_uri'),
      'https://app.example.test/api/v1/publishing/accounts/callback/youtube',
    );
    // Stored hashed: the state itself is nowhere in the table.
    assert.equal(
      await count('select count(*)::int as n from publishing_oauth_state where state_hash = $1', [
        consent.searchParams.get('state'),
      ]),
      0,
    );
  });
});

describe('publishing accounts: routes', () => {
  test('GET /platforms lists the enabled platforms with rules and quotas', async () => {
    const user = await h.user();
    const res = await get('/platforms', user.headers);
    assert.equal(res.statusCode, 200, res.body);
    const items = res.json<{
      items: { id: string; rules: { maxTextLength: number }; quotas: unknown[] }[];
    }>().items;
    assert.deepEqual(items.map((i) => i.id).sort(), ['facebook', 'instagram', 'youtube']);
    assert.ok(items.every((i) => i.rules.maxTextLength > 0 && i.quotas.length > 0));
  });

  test('GET /accounts is cached per user: a change behind its back shows once the user’s tag is dropped', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'youtube');
    const names = async () =>
      (await get('/accounts', user.headers))
        .json<{ items: ConnectedAccount[] }>()
        .items.map((a) => a.name);
    assert.deepEqual(await names(), [account.name]);
    await pool().query(`update publishing_account set name = 'renamed' where id = $1`, [
      account.id,
    ]);
    assert.deepEqual(await names(), [account.name], 'served from the cache');
    await h.platform.cache.invalidateTag(userTag(user.id));
    assert.deepEqual(await names(), ['renamed']);
  });

  test('someone else’s account is a 404 for GET, DELETE and reconnect, and is left alone', async () => {
    const owner = await h.user();
    const other = await h.user();
    const account = await connectFakeAccount(h.app, owner.token, 'facebook');
    assertProblem(
      await get(`/accounts/${account.id}`, other.headers),
      404,
      'PUBLISHING_ACCOUNT_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        method: 'DELETE',
        url: `${PUBLISHING_PREFIX}/accounts/${account.id}`,
        headers: other.headers,
      }),
      404,
      'PUBLISHING_ACCOUNT_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: `${PUBLISHING_PREFIX}/accounts/${account.id}/reconnect`,
        headers: other.headers,
      }),
      404,
      'PUBLISHING_ACCOUNT_NOT_FOUND',
    );
    assertProblem(
      await get('/accounts/00000000-0000-4000-8000-000000000000', owner.headers),
      404,
      'PUBLISHING_ACCOUNT_NOT_FOUND',
    );
    assertProblem(await get('/accounts/not-a-uuid', owner.headers), 422, 'VALIDATION_FAILED');
    assert.equal((await row(account.id)).deleted_at, null);
    const mine = await get(`/accounts/${account.id}`, owner.headers);
    assert.equal(mine.statusCode, 200);
    assert.equal(mine.json<ConnectedAccount>().id, account.id);
    assert.equal(
      (await get('/accounts', other.headers)).json<{ items: unknown[] }>().items.length,
      0,
    );
  });

  test('delete forgets the tokens, leaves the (cached) list, calls the posts hook', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'instagram');
    const removed: string[] = [];
    const restore = spyHooks({ onRemoved: async (_trx, id) => void removed.push(id) });
    try {
      assert.equal(
        (await get('/accounts', user.headers)).json<{ items: unknown[] }>().items.length,
        1,
      );
      const del = await h.app.inject({
        method: 'DELETE',
        url: `${PUBLISHING_PREFIX}/accounts/${account.id}`,
        headers: user.headers,
      });
      assert.equal(del.statusCode, 204, del.body);
    } finally {
      restore();
    }
    assert.deepEqual(removed, [account.id]);
    const stored = await row(account.id);
    assert.ok(stored.deleted_at);
    assert.equal(stored.access_token_sealed, null);
    assert.equal(stored.status, 'disconnected');
    assert.equal(
      (await get('/accounts', user.headers)).json<{ items: unknown[] }>().items.length,
      0,
    );
    assertProblem(
      await get(`/accounts/${account.id}`, user.headers),
      404,
      'PUBLISHING_ACCOUNT_NOT_FOUND',
    );
  });

  test('a reconnect of the same platform account updates it in place and keeps the stored refresh token', async () => {
    const user = await h.user();
    const fakeUser = `same${process.pid}`;
    const first = await connectFakeAccount(h.app, user.token, 'youtube', { fakeUser });
    const before = await row(first.id);
    const service = await accountsServiceOf(h.platform);
    const refresh = service.keys.open(before.refresh_token_sealed!, `${first.id}:refresh`);
    const res = await h.app.inject({
      method: 'POST',
      url: `${PUBLISHING_PREFIX}/accounts/${first.id}/reconnect`,
      headers: user.headers,
    });
    assert.equal(res.statusCode, 200, res.body);
    h.fakes.set('youtube', { codeWithoutRefreshToken: true });
    const callback = await fakeConsent(h.app, user.token, 'youtube', {
      fakeUser,
      consentUrl: res.json<{ url: string }>().url,
    });
    const again = await h.app.inject({ method: 'GET', url: callback });
    assert.equal(again.statusCode, 200, again.body);
    const [second] = again.json<{ accounts: ConnectedAccount[] }>().accounts;
    assert.equal(second?.id, first.id, 'the same row');
    const after = await row(first.id);
    assert.notEqual(after.access_token_sealed, before.access_token_sealed, 'a new access token');
    assert.equal(service.keys.open(after.refresh_token_sealed!, `${first.id}:refresh`), refresh);
    assert.equal(
      await count('select count(*)::int as n from publishing_account where user_id = $1', [
        user.id,
      ]),
      1,
    );
  });
});

describe('publishing accounts: concurrent connects', () => {
  test('two callbacks for the same platform account at once: one row, both answered with it', async () => {
    const user = await h.user();
    const fakeUser = `twice${process.pid}`;
    const [a, b] = await Promise.all([
      fakeConsent(h.app, user.token, 'facebook', { fakeUser }),
      fakeConsent(h.app, user.token, 'facebook', { fakeUser }),
    ]);
    const [ra, rb] = await Promise.all([
      h.app.inject({ method: 'GET', url: a }),
      h.app.inject({ method: 'GET', url: b }),
    ]);
    assert.equal(ra.statusCode, 200, ra.body);
    assert.equal(rb.statusCode, 200, rb.body);
    const ids = [ra, rb].map((r) => r.json<{ accounts: ConnectedAccount[] }>().accounts[0]?.id);
    assert.equal(ids[0], ids[1]);
    assert.equal(
      await count('select count(*)::int as n from publishing_account where user_id = $1', [
        user.id,
      ]),
      1,
    );
  });
});

/** Replaces some of the posts half's hooks for one test (the runtime holds one hooks object). */
function spyHooks(spies: Partial<PublishingPostHooks>): () => void {
  const hooks = publishingRuntime(h.platform).hooks as unknown as Record<string, unknown>;
  const saved = { ...hooks };
  Object.assign(hooks, spies);
  return () => Object.assign(hooks, saved);
}

describe('publishing accounts: tokens, refresh and reauth', () => {
  const expireSoon = (id: string) =>
    pool().query(
      `update publishing_account set token_expires_at = now() + interval '60 seconds' where id = $1`,
      [id],
    );

  test('credentials refresh a token about to expire, once for concurrent callers; an empty refresh token never replaces the stored one', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'youtube');
    const service = await accountsServiceOf(h.platform);
    const stored = await row(account.id);
    const oldAccess = service.keys.open(stored.access_token_sealed!, `${account.id}:access`);
    const oldRefresh = service.keys.open(stored.refresh_token_sealed!, `${account.id}:refresh`);
    await expireSoon(account.id);
    h.fakes.set('youtube', { refreshWithoutRefreshToken: true });
    const tokenCalls = h.fakes.counts['youtube:token'] ?? 0;
    const all = await Promise.all(
      Array.from({ length: 5 }, () => service.credentials(account.id, AbortSignal.timeout(10_000))),
    );
    assert.equal(
      (h.fakes.counts['youtube:token'] ?? 0) - tokenCalls,
      1,
      'one refresh for five callers',
    );
    assert.equal(new Set(all.map((c) => c.accessToken)).size, 1);
    assert.notEqual(all[0]!.accessToken, oldAccess);
    const after = await row(account.id);
    assert.ok(after.token_expires_at!.getTime() > Date.now() + 30 * 60_000);
    assert.equal(
      service.keys.open(after.refresh_token_sealed!, `${account.id}:refresh`),
      oldRefresh,
    );
  });

  test('a platform failing during refresh: the still-valid token is used; an expired one is TOKEN_EXPIRED (retryable)', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'youtube');
    const service = await accountsServiceOf(h.platform);
    const current = service.keys.open(
      (await row(account.id)).access_token_sealed!,
      `${account.id}:access`,
    );
    await expireSoon(account.id);
    h.fakes.set('youtube', { serverError: true });
    const creds = await service.credentials(account.id, AbortSignal.timeout(10_000));
    assert.equal(creds.accessToken, current);
    await pool().query(
      `update publishing_account set token_expires_at = now() - interval '1 minute' where id = $1`,
      [account.id],
    );
    const e = await service
      .credentials(account.id, AbortSignal.timeout(10_000))
      .catch((x: unknown) => x);
    assert.ok(e instanceof PlatformError);
    assert.equal(e.code, 'TOKEN_EXPIRED');
    assert.equal(e.retryable, true);
    assert.equal((await row(account.id)).status, 'active', 'a passing failure is no reauth');
  });

  test('a revoked grant: reauth_required with the reason, the hook, the event and ONE mail per episode; a reconnect ends it', async () => {
    const user = await h.user();
    const fakeUser = `revoked${process.pid}`;
    const account = await connectFakeAccount(h.app, user.token, 'youtube', { fakeUser });
    const service = await accountsServiceOf(h.platform);
    const paused: string[] = [];
    const resumed: string[] = [];
    const restore = spyHooks({
      onReauthRequired: async (_trx, id) => void paused.push(id),
      onReconnected: async (_trx, id) => void resumed.push(id),
    });
    try {
      await expireSoon(account.id);
      h.fakes.revokeUser('youtube', fakeUser);
      const e = await service
        .credentials(account.id, AbortSignal.timeout(10_000))
        .catch((x: unknown) => x);
      assert.ok(e instanceof PlatformError);
      assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED');
      const stored = await row(account.id);
      assert.equal(stored.status, 'reauth_required');
      assert.match(stored.status_reason ?? '', /revoked/);
      // Again, through every path: the refresh job, the posts half's requireReauth, credentials.
      await service.refreshDue(AbortSignal.timeout(10_000));
      await service.requireReauth(account.id, 'the platform refused the token');
      await service.credentials(account.id, AbortSignal.timeout(10_000)).catch(() => undefined);
      assert.deepEqual(paused, [account.id]);
      const metrics = await h.platform.metrics.metrics();
      assert.match(metrics, /publishing_account_reauth_total\{platform="youtube"\} [1-9]/);
      assert.match(
        metrics,
        /publishing_token_refreshes_total\{platform="youtube",outcome="reauth_required"\} [1-9]/,
      );
      const mails = await count(
        `select count(*)::int as n from gw_mail_delivery where recipient = $1 and template = 'publishing.account-reauth-required'`,
        [user.email],
      );
      assert.equal(mails, 1, 'one mail per episode');
      assert.equal(
        await count(
          `select count(*)::int as n from gw_event where type = 'publishing.account.reauth_required' and subject_id = $1 and owner_id = $2`,
          [account.id, user.id],
        ),
        1,
      );
      const listed = (await get(`/accounts/${account.id}`, user.headers)).json<ConnectedAccount>();
      assert.equal(listed.status, 'reauth_required');
      // Reconnect: active again, the hook resumes the paused posts; a new episode would mail again.
      const again = await connectFakeAccount(h.app, user.token, 'youtube', { fakeUser });
      assert.equal(again.id, account.id);
      assert.equal(again.status, 'active');
      assert.deepEqual(resumed, [account.id]);
      assert.equal((await row(account.id)).reauth_notified_at, null);
      await service.requireReauth(account.id, 'revoked again');
      assert.equal(
        await count(
          `select count(*)::int as n from gw_mail_delivery where recipient = $1 and template = 'publishing.account-reauth-required'`,
          [user.email],
        ),
        2,
      );
    } finally {
      restore();
    }
  });

  test('the refresh job renews due accounts of every platform; accounts not due are left alone', async () => {
    const user = await h.user();
    const ig = await connectFakeAccount(h.app, user.token, 'instagram');
    const yt = await connectFakeAccount(h.app, user.token, 'youtube');
    const fb = await connectFakeAccount(h.app, user.token, 'facebook');
    assert.equal((await row(fb.id)).token_expires_at, null, 'Page tokens do not expire');
    await expireSoon(ig.id);
    const ytBefore = (await row(yt.id)).access_token_sealed;
    const igBefore = (await row(ig.id)).access_token_sealed;
    const service = await accountsServiceOf(h.platform);
    const result = await service.refreshDue(AbortSignal.timeout(10_000));
    assert.ok(result.refreshed >= 1);
    assert.notEqual((await row(ig.id)).access_token_sealed, igBefore);
    assert.ok((await row(ig.id)).token_expires_at!.getTime() > Date.now() + 50 * 24 * 3600_000);
    assert.equal((await row(yt.id)).access_token_sealed, ytBefore, 'not due: untouched');
  });

  test('key rotation re-seals rows under the new key while the old one still opens them', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'youtube');
    const settings = h.config.modules.publishing as PublishingSettings;
    const runtime = publishingRuntime(h.platform);
    const oldKey = Buffer.from(
      hkdfSync('sha256', h.config.secrets.appSecret, 'groundwork', 'publishing tokens', 32),
    ).toString('base64');
    const newKey = Buffer.alloc(32, 7).toString('base64');
    const make = (keys: string) =>
      new AccountsService({
        platform: h.platform,
        settings: { ...settings, PUBLISHING_TOKEN_KEYS: keys },
        adapters: runtime.adapters as ReadonlyMap<PlatformId, ConnectableAdapter>,
        hooks: runtime.hooks,
      });
    const old = await accountsServiceOf(h.platform);
    const before = await old.credentials(account.id, AbortSignal.timeout(10_000));
    const rotating = make(`k2:${newKey},app:${oldKey}`);
    assert.equal(
      (await rotating.credentials(account.id, AbortSignal.timeout(10_000))).accessToken,
      before.accessToken,
    );
    const resealed = await rotating.rotateTokenKeys(2);
    assert.ok(resealed >= 1);
    assert.equal(
      await count(
        `select count(*)::int as n from publishing_account where access_token_sealed not like 'v1.k2.%' or refresh_token_sealed not like 'v1.k2.%'`,
        [],
      ),
      0,
      'every row under the new key',
    );
    assert.equal(await rotating.rotateTokenKeys(), 0, 'idempotent');
    // The old key can go: the new key alone opens every row.
    const next = make(`k2:${newKey}`);
    assert.equal(
      (await next.credentials(account.id, AbortSignal.timeout(10_000))).accessToken,
      before.accessToken,
    );
    assert.equal(
      (await next.credentials(account.id, AbortSignal.timeout(10_000))).accessToken,
      before.accessToken,
    );
    // And the process with only the old key no longer opens them (so rows did move).
    await assert.rejects(old.credentials(account.id, AbortSignal.timeout(10_000)), /unknown key/);
    assert.ok(TokenKeys.kidOf((await row(account.id)).access_token_sealed!) === 'k2');
    // A pass of the old process skips what it cannot open instead of failing on it.
    assert.equal(await old.rotateTokenKeys(), 0);
    assert.ok(TokenKeys.kidOf((await row(account.id)).access_token_sealed!) === 'k2');
    // Back under the derived key for the other tests (a rotation the other way).
    assert.ok((await make(`app:${oldKey},k2:${newKey}`).rotateTokenKeys()) >= 1);
    assert.equal(
      (await old.credentials(account.id, AbortSignal.timeout(10_000))).accessToken,
      before.accessToken,
    );
  });
});

describe('publishing accounts: for the posts half', () => {
  test('ownedBy answers only the user’s live accounts among the ids (others’, unknown, malformed and removed ones absent)', async () => {
    const user = await h.user();
    const other = await h.user();
    const mine = await connectFakeAccount(h.app, user.token, 'facebook');
    const removed = await connectFakeAccount(h.app, user.token, 'instagram');
    const theirs = await connectFakeAccount(h.app, other.token, 'facebook');
    await h.app.inject({
      method: 'DELETE',
      url: `${PUBLISHING_PREFIX}/accounts/${removed.id}`,
      headers: user.headers,
    });
    const service = await accountsServiceOf(h.platform);
    const owned = await service.ownedBy(h.tdb.database.db, user.id, [
      mine.id,
      theirs.id,
      removed.id,
      '00000000-0000-4000-8000-000000000000',
      "x' or 1=1 --",
    ]);
    assert.deepEqual([...owned.keys()], [mine.id]);
    assert.equal(owned.get(mine.id)?.platform, 'facebook');
    assert.equal(owned.get(mine.id)?.status, 'active');
  });

  test('credentials of a removed or reauth_required account: ACCOUNT_REAUTH_REQUIRED; the list shows the new status at once', async () => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'instagram');
    const service = await accountsServiceOf(h.platform);
    const ok = await service.credentials(account.id, AbortSignal.timeout(10_000));
    assert.equal(ok.externalId, account.externalId);
    assert.equal(ok.platform, 'instagram');
    // Listed (and cached) as active, then the platform refuses the token while publishing.
    const listed = () =>
      get('/accounts', user.headers).then((r) => r.json<{ items: ConnectedAccount[] }>().items);
    assert.equal((await listed())[0]?.status, 'active');
    await service.requireReauth(account.id, 'the platform refused the token');
    assert.equal((await listed())[0]?.status, 'reauth_required', 'cache dropped on change');
    const e = await service
      .credentials(account.id, AbortSignal.timeout(10_000))
      .catch((x: unknown) => x);
    assert.ok(e instanceof PlatformError);
    assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED');
    assert.equal(e.action, 'reconnect_account');
    const gone = await service
      .credentials('00000000-0000-4000-8000-000000000000', AbortSignal.timeout(10_000))
      .catch((x: unknown) => x);
    assert.ok(gone instanceof PlatformError);
    assert.equal(gone.code, 'ACCOUNT_REAUTH_REQUIRED');
  });

  test('a platform not enabled: connect answers 404 PUBLISHING_PLATFORM_NOT_ENABLED', async () => {
    const runtime = publishingRuntime(h.platform);
    const service = new AccountsService({
      platform: h.platform,
      settings: runtime.settings,
      adapters: new Map(),
      hooks: runtime.hooks,
    });
    await assert.rejects(service.startConnect('00000000-0000-4000-8000-000000000000', 'youtube'), {
      code: 'PUBLISHING_PLATFORM_NOT_ENABLED',
    });
  });
});

describe('publishing accounts: migration', () => {
  test('up creates the accounts and connect-state tables; down removes them', async (t) => {
    const migrations = allMigrations([publishingApp]);
    const tdb = await createTestDatabase({ migrations });
    t.after(() => tdb.drop());
    const exists = async (table: string) =>
      (
        await tdb.database.pool.query<{ t: string | null }>(`select to_regclass($1)::text as t`, [
          `public.${table}`,
        ])
      ).rows[0]?.t ?? null;
    assert.equal(await exists('publishing_account'), 'publishing_account');
    assert.equal(await exists('publishing_oauth_state'), 'publishing_oauth_state');
    const names = Object.keys(migrations).sort();
    const later = names.slice(names.indexOf('202612070900_publishing_accounts'));
    await rollback(tdb.database.db, migrations, later.length);
    assert.equal(await exists('publishing_account'), null);
    assert.equal(await exists('publishing_oauth_state'), null);
  });
});

describe('publishing accounts: web app flows', () => {
  test('connect with mode=json answers the consent URL instead of a redirect', async () => {
    const user = await h.user();
    const res = await get('/accounts/connect/facebook?mode=json', user.headers);
    assert.equal(res.statusCode, 200, res.body);
    const url = new URL(res.json<{ url: string }>().url);
    assert.ok(url.href.startsWith(h.fakes.env.PUBLISHING_FACEBOOK_AUTH_URL!));
    assert.ok(url.searchParams.get('state'));
    assertProblem(
      await get('/accounts/connect/facebook?mode=other', user.headers),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('with PUBLISHING_CONNECT_RETURN_URL the callback sends the browser back, success and errors alike', async (t) => {
    const config = publishingTestConfig(h.fakes, {
      PUBLISHING_CONNECT_RETURN_URL: 'https://web.example.test/settings/accounts',
    });
    const platform = await createPlatform(config, {
      modules: enabledModules(config, [publishingApp]),
      database: h.tdb.database,
      redis: null,
      work: false,
      logDestination: new LogCapture(),
    });
    t.after(() => platform.close());
    const app = await buildApp(config, { platform, apps: [publishingApp] });
    t.after(() => app.close());
    await app.ready();
    // Signed in on this app: its tokens are signed with its own key.
    const token = (await signIn(app, await createUser({ tdb: h.tdb, config }))).accessToken;
    const callback = await fakeConsent(app, token, 'youtube');
    const ok = await app.inject({ method: 'GET', url: callback });
    assert.equal(ok.statusCode, 302, ok.body);
    const back = new URL(String(ok.headers.location));
    assert.equal(back.origin + back.pathname, 'https://web.example.test/settings/accounts');
    assert.equal(back.searchParams.get('status'), 'connected');
    const ids = back.searchParams.get('accounts')?.split(',') ?? [];
    assert.equal(ids.length, 1);
    assert.equal((await row(ids[0]!)).status, 'active');
    const replay = await app.inject({ method: 'GET', url: callback });
    assert.equal(replay.statusCode, 302);
    const refused = new URL(String(replay.headers.location));
    assert.equal(refused.searchParams.get('status'), 'error');
    assert.equal(refused.searchParams.get('code'), 'PUBLISHING_OAUTH_STATE_INVALID');
  });
});

describe('publishing accounts: jobs', () => {
  test('the refresh job (every 5 minutes by default) and the rotation job run through their handlers', async () => {
    const settings = h.config.modules.publishing as PublishingSettings;
    const jobs = accountJobs(settings);
    const refresh = jobs.find((j) => j.name === 'publishing.refresh-tokens');
    const rotate = jobs.find((j) => j.name === 'publishing.rotate-token-keys');
    assert.equal(refresh?.options.cron?.expression, '*/5 * * * *');
    assert.ok(rotate?.options.cron);
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'instagram');
    await pool().query(
      `update publishing_account set token_expires_at = now() + interval '1 minute' where id = $1`,
      [account.id],
    );
    const ctx = {
      platform: h.platform,
      signal: AbortSignal.timeout(10_000),
    } as unknown as JobContext;
    assert.ok(refresh && rotate);
    const result = (await refresh.handler({}, ctx)) as { refreshed: number };
    assert.ok(result.refreshed >= 1);
    assert.ok((await row(account.id)).token_expires_at!.getTime() > Date.now() + 24 * 3600_000);
    assert.deepEqual(await rotate.handler({}, ctx), { resealed: 0 }, 'nothing under an old key');
  });
});

describe('publishing accounts: settings', () => {
  test('token keys that are not 32 bytes, or a key id listed twice, refuse to start (exit 78)', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    // 44 base64 characters without padding pass the pattern but decode to 33 bytes.
    for (const [value, message] of [
      [`a:${'A'.repeat(44)}`, /32 bytes/],
      [`a:${key},a:${key}`, /twice/],
    ] as const) {
      try {
        loadConfig(
          { APP_ENV: 'test', PUBLISHING_TOKEN_KEYS: value },
          { modules: [...new Set([...knownModules(), publishingApp])] },
        );
        assert.fail('the configuration was accepted');
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        assert.deepEqual(
          error.issues.map((i) => i.key),
          ['PUBLISHING_TOKEN_KEYS'],
        );
        assert.match(
          error.issues.find((i) => i.key === 'PUBLISHING_TOKEN_KEYS')?.message ?? '',
          message,
        );
      }
    }
  });
});
