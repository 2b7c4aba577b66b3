// The public data app's answers to the outside: CORS from the allowlist only, anonymous limits
// per IP with the RateLimit headers, and partner API keys with their own limits and usage.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import { publish, read, startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

const ALLOWED = 'https://app.example.com';

describe('public data: CORS, rate limits, API keys', () => {
  let h: PublicDataHarness;
  before(async () => {
    h = await startPublicData({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_ANONYMOUS_PER_MIN: '100',
      RATE_LIMIT_FREE_PER_MIN: '10000',
      CORS_ORIGINS: ALLOWED,
    });
    const v = await publish(h, 'tiny', 'id,name\n1,one\n2,two\n');
    assert.equal(v.status, 'ready', JSON.stringify(v));
  });
  after(async () => {
    await h?.close();
  });

  test('CORS answers the listed origin only; the preflight is cached', async () => {
    const ok = await read(h, '/datasets/tiny/rows', { origin: ALLOWED });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
    assert.match(String(ok.headers['access-control-expose-headers']), /ETag/);
    assert.match(String(ok.headers.vary), /Origin/);
    const evil = await read(h, '/datasets/tiny/rows', { origin: 'https://evil.example' });
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    assert.match(String(evil.headers.vary), /Origin/);
    const preflight = (origin: string) =>
      h.app.inject({
        method: 'OPTIONS',
        url: '/api/v1/public-data/datasets/tiny/rows',
        headers: {
          origin,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'if-none-match',
        },
      });
    const yes = await preflight(ALLOWED);
    assert.equal(yes.statusCode, 204);
    assert.equal(yes.headers['access-control-allow-origin'], ALLOWED);
    assert.equal(yes.headers['access-control-max-age'], '600');
    assert.match(String(yes.headers['access-control-allow-headers']), /If-None-Match/i);
    assert.match(String(yes.headers['access-control-allow-headers']), /X-API-Key/i);
    const no = await preflight('https://app.example.com.evil.example');
    assert.equal(no.headers['access-control-allow-origin'], undefined);
  });

  test('an `in` list too long for the URL is 414 before anything runs', async () => {
    const values = Array.from({ length: 10_000 }, (_, i) => String(i)).join(',');
    assertProblem(await read(h, `/datasets/tiny/rows?id[in]=${values}`), 414, 'URI_TOO_LONG');
  });

  test('10,000 requests a minute from one IP without a key: 429 past the limit, with the headers', async () => {
    // Each test's bucket starts from what the previous ones took: count what is left.
    let allowed = 0;
    let refused = 0;
    let last: Awaited<ReturnType<typeof read>> | undefined;
    const started = Date.now();
    for (let i = 0; i < 10_000; i++) {
      const res = await read(h, '/datasets/tiny', { 'x-forwarded-for': '203.0.113.9' });
      if (res.statusCode === 200) allowed++;
      else {
        assert.equal(res.statusCode, 429);
        refused++;
        last = res;
      }
      if (i === 0) {
        assert.match(String(res.headers['ratelimit-policy']), /"api-anonymous";q=100;w=60/);
        assert.match(String(res.headers.ratelimit), /"api-anonymous";r=\d+;t=\d+/);
      }
    }
    // 100 a minute: one more every 600 ms while the loop runs (GCRA refills continuously).
    const refilled = Math.ceil((Date.now() - started) / 600) + 1;
    assert.ok(
      allowed >= 90 && allowed <= 100 + refilled,
      `allowed ${allowed}, refilled ${refilled}`,
    );
    assert.equal(allowed + refused, 10_000);
    assert.ok(last);
    const body = assertProblem(last, 429, 'RATE_LIMITED');
    assert.match(String(body.detail), /api-anonymous/);
    assert.ok(Number(last.headers['retry-after']) >= 1);
    assert.match(String(last.headers.ratelimit), /"api-anonymous";r=0/);
  });

  test('with an API key: the key’s limit instead of the IP’s, usage counted, revocable', async () => {
    const issued = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/api-keys',
      headers: h.admin.headers,
      payload: { name: 'Partner', rateLimitPerMin: 20_000 },
    });
    assert.equal(issued.statusCode, 201, issued.body);
    const key = issued.json<{ id: string; key: string; prefix: string }>();
    assert.match(key.key, /^pdk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const stored = await h.tdb.database.pool.query<{ key_hash: Buffer }>(
      'select key_hash from pd_api_key where id = $1',
      [key.id],
    );
    assert.equal(stored.rows[0]?.key_hash.length, 32, 'only a SHA-256 is stored');
    assert.ok(!stored.rows[0]?.key_hash.toString('latin1').includes(key.key));
    // The IP is over its anonymous limit (previous test): the key still gets through.
    for (let i = 0; i < 10_000; i++) {
      const res = await read(h, '/datasets/tiny', {
        'x-api-key': key.key,
        'x-forwarded-for': '203.0.113.9',
      });
      assert.equal(res.statusCode, 200, res.body);
      if (i === 0)
        assert.match(String(res.headers['ratelimit-policy']), /"api-client";q=20000;w=60/);
    }
    const listed = await h.app.inject({
      method: 'GET',
      url: '/api/v1/public-data/api-keys',
      headers: h.admin.headers,
    });
    const mine = listed
      .json<{ items: { id: string; requestCount: number; lastUsedAt: string | null }[] }>()
      .items.find((k) => k.id === key.id);
    assert.equal(mine?.requestCount, 10_000);
    assert.ok(mine?.lastUsedAt);
    assert.ok(!listed.body.includes(key.key), 'the key is never shown again');
    // A small key limit applies to its holder.
    const small = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/api-keys',
      headers: h.admin.headers,
      payload: { name: 'Small', rateLimitPerMin: 3 },
    });
    const smallKey = small.json<{ key: string }>().key;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await read(h, '/datasets/tiny', { 'x-api-key': smallKey })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    // Wrong, malformed and revoked keys are refused, not treated as anonymous.
    const wrong = `${key.key.slice(0, -1)}${key.key.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [wrong, 'nope', `pdk_000000000000_${'a'.repeat(43)}`])
      assertProblem(await read(h, '/datasets/tiny', { 'x-api-key': bad }), 401, 'INVALID_API_KEY');
    const revoked = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/public-data/api-keys/${key.id}`,
      headers: h.admin.headers,
    });
    assert.equal(revoked.statusCode, 204);
    assertProblem(
      await read(h, '/datasets/tiny', { 'x-api-key': key.key }),
      401,
      'INVALID_API_KEY',
    );
  });

  test('an export the client abandons releases its connection (the COPY stops)', async () => {
    const rows = Array.from({ length: 60_000 }, (_, i) => `${String(i)},${'x'.repeat(50)}`);
    const v = await publish(h, 'long', `id,text\n${rows.join('\n')}\n`);
    assert.equal(v.status, 'ready', JSON.stringify(v));
    // This IP spent its anonymous minute in the tests above: a key of its own.
    const issued = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/api-keys',
      headers: h.admin.headers,
      payload: { name: 'Exports', rateLimitPerMin: 1000 },
    });
    const key = { 'x-api-key': issued.json<{ key: string }>().key };
    const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const abort = new AbortController();
    const open = await fetch(`${address}/api/v1/public-data/datasets/long/rows.csv`, {
      signal: abort.signal,
      headers: key,
    });
    assert.equal(open.status, 200);
    const reader = (open.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0);
    abort.abort(); // the rest (3.5 MB) is never read
    const copies = async () =>
      (
        await h.tdb.database.pool.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
           where datname = current_database() and query ilike 'copy (select%' and state <> 'idle'`,
        )
      ).rows[0]?.n;
    const until = Date.now() + 10_000;
    while ((await copies()) !== 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await copies(), 0);
    // The pool still serves reads and exports (no connection left mid-COPY in it).
    for (let i = 0; i < 20; i++)
      assert.equal(
        (await read(h, `/datasets/long/rows?limit=1&id=${String(i)}`, key)).statusCode,
        200,
      );
    const after = await fetch(`${address}/api/v1/public-data/datasets/long/rows.ndjson?id[lt]=3`, {
      headers: key,
    });
    assert.equal(after.status, 200);
    assert.equal((await after.text()).trim().split('\n').length, 3);
  });
});
