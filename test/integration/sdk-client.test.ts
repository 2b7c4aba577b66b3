// The client (clients/ts) against a running server: real HTTP on a port, the public-data app
// with two imported datasets (read anonymously: filters, facets, keyset pages to the end, caching
// headers), a signed-in route, typed errors, and a rate limit surfaced as a typed error.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ApiError, createGroundworkClient, isApiError } from '../../clients/ts/src/index.ts';
import { createApi, type Api } from '../../examples/frontend/src/api.ts';
import { AIR_QUALITY_ROWS, seedDatasets } from '../fixtures/frontend/datasets.ts';
import { createUser, signIn } from '../helpers/identity.ts';
import { startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

const rowsPath = '/api/v1/public-data/datasets/{slug}/rows' as const;
/** The code of an API error as a string (the app's codes join the generated union once it is listed). */
const codeOf = (error: unknown) =>
  error instanceof ApiError ? (error.code as string) : String(error);

describe('sdk client against a running server', () => {
  let h: PublicDataHarness;
  let baseUrl: string;
  let api: Api;
  before(async () => {
    h = await startPublicData();
    await seedDatasets(h);
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
      ['id', 'city', 'pollutant', 'value', 'measured_at'],
    );
    assert.equal(dataset.rowCount, 120);
  });

  test('filters and facets: every row matches, the facet counts add up to the filtered rows', async () => {
    const slug = 'air-quality';
    const filters: Record<string, string> = { city: 'Lyon', 'value[gte]': '40' };
    const page = await api.GET(rowsPath, {
      params: { path: { slug }, query: { ...filters, facets: 'pollutant', limit: 100 } },
    });
    assert.ok(page.items.length > 0);
    for (const row of page.items) {
      assert.equal(row.city, 'Lyon');
      assert.ok(Number(row.value) >= 40);
    }
    const total = (page.facets?.pollutant ?? []).reduce((n, f) => n + f.count, 0);
    assert.equal(total, page.items.length);
    const expected = AIR_QUALITY_ROWS.filter((r) => r.city === 'Lyon' && r.value >= 40).length;
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

  test('typed errors: an unknown dataset is DATASET_NOT_FOUND, an unknown column INVALID_FILTER naming it', async () => {
    const missing = await api
      .GET('/api/v1/public-data/datasets/{slug}', { params: { path: { slug: 'nope' } } })
      .catch((e: unknown) => e);
    assert.ok(isApiError(missing), String(missing));
    assert.equal(codeOf(missing), 'DATASET_NOT_FOUND');
    assert.equal(missing.status, 404);
    assert.match(missing.requestId ?? '', /^[0-9a-f-]{36}$/);

    const filters: Record<string, string> = { 'secret[eq]': 'x' };
    const bad = await api
      .GET(rowsPath, { params: { path: { slug: 'air-quality' }, query: filters } })
      .catch((e: unknown) => e);
    assert.ok(isApiError(bad), String(bad));
    assert.equal(codeOf(bad), 'INVALID_FILTER');
    assert.equal(bad.status, 422);
    assert.match(bad.problem?.detail ?? '', /secret/);
  });

  test('public answers carry a strong ETag and Cache-Control; a matching If-None-Match is a 304', async () => {
    const { response } = await api.raw.GET('/api/v1/public-data/datasets');
    const etag = response.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    assert.match(response.headers.get('cache-control') ?? '', /^public, max-age=\d+/);
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
  test('RATE_LIMITED with a Retry-After past the client’s cap comes at once, with retryAfterMs and the RateLimit header', async (t) => {
    const h = await startPublicData({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_ANONYMOUS_PER_MIN: '6',
    });
    t.after(() => h.close());
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${String((h.app.server.address() as AddressInfo).port)}`;

    let sent = 0;
    const counting = (request: Request) => {
      sent += 1;
      return fetch(request);
    };
    const api = createApi(url, { fetch: counting });
    // The harness's own sign-in counted too: send until the limit answers (within 7 requests).
    let error: unknown;
    let started = 0;
    for (let i = 0; i < 7 && error === undefined; i++) {
      sent = 0;
      started = Date.now();
      error = await api.GET('/api/v1/public-data/datasets').then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    assert.ok(isApiError(error, 'RATE_LIMITED'), String(error));
    // 6 a minute: the next one in about 10 s, past the frontend's 5 s cap: not waited for.
    assert.ok((error.retryAfterMs ?? 0) > 5_000, String(error.retryAfterMs));
    assert.equal(sent, 1);
    assert.ok(Date.now() - started < 2_000);
    assert.ok(error.response.headers.get('ratelimit'), 'the RateLimit header is exposed');
  });
});
