// The client (clients/ts) against a running server: real HTTP on a port, the public-data read
// routes (the stand-in fixture until the app is listed), a signed-in route, typed errors, keyset
// pagination to the end, caching headers, and a rate limit surfaced as a typed error.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { loadConfig } from '../../src/platform/config/index.ts';
import { identityMailTemplates } from '../../src/platform/identity/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { createGroundworkClient, isApiError } from '../../clients/ts/src/index.ts';
import { createApi, type Api } from '../../examples/frontend/src/api.ts';
import { FIXTURE_DATASETS, publicDataFixture } from '../fixtures/frontend/public-data-fixture.ts';
import { createUser, signIn } from '../helpers/identity.ts';
import { startMailHarness, type MailHarness } from '../helpers/mail.ts';

const rowsPath = '/api/v1/public-data/datasets/{slug}/rows' as const;

describe('sdk client against a running server', () => {
  let h: MailHarness;
  let baseUrl: string;
  let api: Api;
  before(async () => {
    h = await startMailHarness({ templates: identityMailTemplates, apps: [publicDataFixture] });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${String((h.app.server.address() as AddressInfo).port)}`;
    api = createApi(baseUrl);
  });
  after(() => h.close());

  test('lists datasets and reads one, anonymously', async () => {
    const list = await api.GET('/api/v1/public-data/datasets', {
      params: { query: { tag: 'health' } },
    });
    assert.deepEqual(
      list.items.map((d) => d.slug),
      ['air-quality'],
    );
    const dataset = await api.GET('/api/v1/public-data/datasets/{slug}', {
      params: { path: { slug: 'air-quality' } },
    });
    assert.deepEqual(
      dataset.columns.map((c) => c.name),
      ['id', 'city', 'pollutant', 'value', 'measuredAt'],
    );
    assert.equal(dataset.rowCount, 120);
  });

  test('filters and facets: every row matches, the facet counts add up to the filtered rows', async () => {
    const slug = 'air-quality';
    const query = { city: 'Lyon', 'value[gte]': '40', facets: 'pollutant', limit: 100 };
    const page = await api.GET(rowsPath, { params: { path: { slug }, query } });
    assert.ok(page.items.length > 0);
    for (const row of page.items) {
      assert.equal(row.city, 'Lyon');
      assert.ok(Number(row.value) >= 40);
    }
    const total = (page.facets?.pollutant ?? []).reduce((n, f) => n + f.count, 0);
    assert.equal(total, page.items.length);
    const expected = (FIXTURE_DATASETS[0]?.rows ?? []).filter(
      (r) => r.city === 'Lyon' && Number(r.value) >= 40,
    ).length;
    assert.equal(page.items.length, expected);
  });

  test('paginate walks every page to the end, each row once', async () => {
    const ids: number[] = [];
    const seenPages: number[] = [];
    for await (const p of api.pages(rowsPath, {
      params: { path: { slug: 'air-quality' }, query: { limit: 25, sort: '-value' } },
    })) {
      seenPages.push(p.items.length);
      for (const row of p.items) ids.push(Number(row.id));
    }
    assert.deepEqual(seenPages, [25, 25, 25, 25, 20]);
    assert.equal(new Set(ids).size, 120);
    let count = 0;
    for await (const _row of api.paginate(rowsPath, {
      params: { path: { slug: 'libraries' }, query: { limit: 2 } },
    }))
      count += 1;
    assert.equal(count, 5);
  });

  test('typed errors: an unknown dataset is NOT_FOUND, an unknown column VALIDATION_FAILED naming it', async () => {
    const missing = await api
      .GET('/api/v1/public-data/datasets/{slug}', { params: { path: { slug: 'nope' } } })
      .catch((e: unknown) => e);
    assert.ok(isApiError(missing, 'NOT_FOUND'), String(missing));
    assert.equal(missing.status, 404);
    assert.match(missing.requestId ?? '', /^[0-9a-f-]{36}$/);

    const bad = await api
      .GET(rowsPath, { params: { path: { slug: 'air-quality' }, query: { 'secret[eq]': 'x' } } })
      .catch((e: unknown) => e);
    assert.ok(isApiError(bad, 'VALIDATION_FAILED'), String(bad));
    assert.equal(bad.fieldErrors[0]?.path, '/querystring/secret[eq]');
  });

  test('public answers carry a strong ETag and Cache-Control; a matching If-None-Match is a 304', async () => {
    const { response } = await api.raw.GET('/api/v1/public-data/datasets');
    const etag = response.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    assert.match(response.headers.get('cache-control') ?? '', /public, max-age=60/);
    const again = await fetch(`${baseUrl}/api/v1/public-data/datasets`, {
      headers: { 'if-none-match': etag ?? '' },
    });
    assert.equal(again.status, 304);
  });

  test('a signed-in route with the access token; a bad token is INVALID_ACCESS_TOKEN', async () => {
    const user = await createUser(h);
    const tokens = await signIn(h.app, user);
    const signed = createGroundworkClient({ baseUrl, accessToken: () => tokens.accessToken });
    const me = await signed.GET('/api/v1/users/me');
    assert.equal(me.email, user.email);
    const forged = createGroundworkClient({ baseUrl, accessToken: () => 'a.b.c' });
    const error = await forged.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(isApiError(error, 'INVALID_ACCESS_TOKEN'), String(error));
    assert.equal(error.status, 401);
  });
});

describe('sdk client: a rate limit of the running server', () => {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  test('RATE_LIMITED with a Retry-After past the client’s cap comes at once, with retryAfterMs and the RateLimit header', async (t) => {
    const config = loadConfig(
      {
        APP_ENV: 'test',
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_ANONYMOUS_PER_MIN: '3',
        MAX_EVENT_LOOP_DELAY_MS: '0',
      },
      { modules: knownModules() },
    );
    const platform = await createPlatform(config, {
      logDestination: quiet,
      modules: enabledModules(config, [publicDataFixture]),
      connect: false,
    });
    t.after(() => platform.close());
    const app = await buildApp(config, { platform, apps: [publicDataFixture] });
    t.after(() => app.close());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${String((app.server.address() as AddressInfo).port)}`;

    let sent = 0;
    const counting = (request: Request) => {
      sent += 1;
      return fetch(request);
    };
    const api = createApi(url, { fetch: counting });
    for (let i = 0; i < 3; i++) await api.GET('/api/v1/public-data/datasets');
    sent = 0;
    const started = Date.now();
    const error = await api.GET('/api/v1/public-data/datasets').catch((e: unknown) => e);
    assert.ok(isApiError(error, 'RATE_LIMITED'), String(error));
    // 3 a minute: the next one in about 20 s, past the frontend's 5 s cap: not waited for.
    assert.ok((error.retryAfterMs ?? 0) > 5_000, String(error.retryAfterMs));
    assert.equal(sent, 1);
    assert.ok(Date.now() - started < 2_000);
    assert.ok(error.response.headers.get('ratelimit'), 'the RateLimit header is exposed');
  });
});
