// Conditional GETs of public data answered early (issue 20 (b)): a URL whose ETag this process
// gave out is answered 304 in `preParsing`, before validation and the handler, while the dataset
// metadata it came from is still current. Checked: the comparison rules (weak, lists, `*`), what
// stays on a 304 (security headers, request id, rate-limit headers: a 304 counts), that an
// invalid API key is still refused, that a republish (here, and on another app instance within
// PUBLIC_DATA_METADATA_TTL) ends the 304s, and that only validated URLs and GET/HEAD take it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { publicDataApp } from '../../src/apps/public-data/index.ts';
import { metadataOf } from '../../src/apps/public-data/metadata.ts';
import { buildApp, enabledModules } from '../../src/app.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture } from '../helpers/app.ts';
import { assertProblem } from '../helpers/problem.ts';
import { publish, read, startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

const URL_ROWS = '/datasets/cond/rows?sort=-n&limit=2';
const IP = { 'x-forwarded-for': '198.51.100.7' };

let h: PublicDataHarness;
before(async () => {
  h = await startPublicData({
    RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT_ANONYMOUS_PER_MIN: '1000',
    PUBLIC_DATA_METADATA_TTL: '1s',
  });
  const v = await publish(h, 'cond', 'n,label\n1,one\n2,two\n3,three\n');
  assert.equal(v.status, 'ready', JSON.stringify(v));
});
after(async () => {
  await h?.close();
});

/** Counts the early path's look-ups (it peeks at the metadata; the handler does not). */
function countEarly(): { readonly n: number; restore(): void } {
  const cache = metadataOf(h.platform);
  const original = cache.peek.bind(cache);
  let n = 0;
  cache.peek = (slug: string) => {
    n += 1;
    return original(slug);
  };
  return {
    get n() {
      return n;
    },
    restore() {
      cache.peek = original;
    },
  };
}

describe('public data: conditional GETs answered early', () => {
  test('a repeat with the ETag is a 304 before the handler, with every platform header', async () => {
    const first = await read(h, URL_ROWS, IP);
    assert.equal(first.statusCode, 200, first.body);
    const etag = String(first.headers.etag);
    const early = countEarly();
    try {
      const again = await read(h, URL_ROWS, { ...IP, 'if-none-match': etag });
      assert.equal(again.statusCode, 304);
      assert.equal(early.n, 1, 'answered by the early path');
      assert.equal(again.body, '');
      assert.equal(again.headers['content-length'], undefined);
      assert.equal(again.headers.etag, etag);
      assert.equal(again.headers['cache-control'], first.headers['cache-control']);
      assert.match(String(again.headers.vary), /Origin/);
      // What the platform adds to every answer is there, and the 304 counted toward the limit.
      assert.match(String(again.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      assert.notEqual(again.headers['x-request-id'], first.headers['x-request-id']);
      assert.equal(again.headers['x-content-type-options'], 'nosniff');
      assert.ok(again.headers['x-frame-options'] ?? again.headers['content-security-policy']);
      const left = (res: typeof first) =>
        Number(/r=(\d+)/.exec(String(res.headers.ratelimit))?.[1]);
      assert.equal(left(again), left(first) - 1);
      // HEAD too.
      const head = await h.app.inject({
        method: 'HEAD',
        url: `/api/v1/public-data${URL_ROWS}`,
        headers: { ...IP, 'if-none-match': etag },
      });
      assert.equal(head.statusCode, 304);
    } finally {
      early.restore();
    }
  });

  test('If-None-Match: weak comparison, lists, `*`; anything else gets the 200', async () => {
    const etag = String((await read(h, URL_ROWS)).headers.etag);
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, `W/"x",W/${etag} , "y"`, '*']) {
      const res = await read(h, URL_ROWS, { 'if-none-match': inm });
      assert.equal(res.statusCode, 304, inm);
      assert.equal(res.headers.etag, etag, inm);
    }
    for (const inm of ['"nope"', etag.slice(1, -1), `W/"${etag.slice(2)}`, '']) {
      const res = await read(h, URL_ROWS, { 'if-none-match': inm });
      assert.equal(res.statusCode, 200, inm);
      assert.equal(res.json<{ items: unknown[] }>().items.length, 2, inm);
    }
  });

  test('the detail and the exports take the same path; the ETag is per URL', async () => {
    for (const url of ['/datasets/cond', '/datasets/cond/rows.csv', '/datasets/cond/rows.ndjson']) {
      const first = await read(h, url);
      assert.equal(first.statusCode, 200, url);
      const early = countEarly();
      try {
        const again = await read(h, url, { 'if-none-match': String(first.headers.etag) });
        assert.equal(again.statusCode, 304, url);
        assert.equal(early.n, 1, url);
      } finally {
        early.restore();
      }
    }
    // Another URL (another sort) with this URL's ETag: its own answer.
    const etag = String((await read(h, URL_ROWS)).headers.etag);
    const other = await read(h, '/datasets/cond/rows?sort=n&limit=2', { 'if-none-match': etag });
    assert.equal(other.statusCode, 200);
  });

  test('never for a URL not validated, a bad API key, or a method other than GET and HEAD', async () => {
    // A URL whose query is refused never had an ETag: still the 422 (twice: nothing was kept).
    const etag = String((await read(h, URL_ROWS)).headers.etag);
    for (let i = 0; i < 2; i++) {
      const refused = await read(h, '/datasets/cond/rows?sort=nope', { 'if-none-match': etag });
      assert.equal(refused.statusCode, 422, refused.body);
    }
    assertProblem(
      await read(h, URL_ROWS, { 'if-none-match': etag, 'x-api-key': 'gwpd_not-a-real-key' }),
      401,
      'INVALID_API_KEY',
    );
    const detail = String((await read(h, '/datasets/cond')).headers.etag);
    const patch = await h.app.inject({
      method: 'PATCH',
      url: '/api/v1/public-data/datasets/cond',
      headers: { ...h.admin.headers, 'if-none-match': detail },
      payload: { description: 'Changed by PATCH' },
    });
    assert.equal(patch.statusCode, 200, patch.body);
    // The edit changed the detail: the old ETag gets the new body.
    const after = await read(h, '/datasets/cond', { 'if-none-match': detail });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json<{ description: string }>().description, 'Changed by PATCH');
  });

  test('a republish ends the 304s at once here, and within the TTL on another instance', async () => {
    // A second app instance on the same database (another process in production).
    const config = h.config;
    const platform = await createPlatform(config, {
      modules: enabledModules(config, [publicDataApp]),
      database: h.tdb.database,
      redis: null,
      work: false,
      logDestination: new LogCapture(),
    });
    const other = await buildApp(config, { platform, apps: [publicDataApp] });
    try {
      await other.ready();
      const readOther = (headers: Record<string, string> = {}) =>
        other.inject({ method: 'GET', url: `/api/v1/public-data${URL_ROWS}`, headers });
      const etag = String((await read(h, URL_ROWS)).headers.etag);
      const onOther = await readOther();
      assert.equal(onOther.headers.etag, etag, 'the same ETag on both instances');
      assert.equal((await readOther({ 'if-none-match': etag })).statusCode, 304);

      const v = await publish(h, 'cond', 'n,label\n7,seven\n8,eight\n9,nine\n');
      assert.equal(v.status, 'ready', JSON.stringify(v));
      // Here: at once.
      const here = await read(h, URL_ROWS, { 'if-none-match': etag });
      assert.equal(here.statusCode, 200);
      assert.notEqual(here.headers.etag, etag);
      assert.deepEqual(
        here.json<{ items: { n: number }[] }>().items.map((r) => r.n),
        [9, 8],
      );
      // There: within PUBLIC_DATA_METADATA_TTL (1 s here), on the early path as on the handler's.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const there = await readOther({ 'if-none-match': etag });
      assert.equal(there.statusCode, 200);
      assert.equal(there.headers.etag, here.headers.etag);
      assert.equal(
        (await readOther({ 'if-none-match': String(here.headers.etag) })).statusCode,
        304,
      );
    } finally {
      await other.close();
      await platform.close();
    }
  });
});
