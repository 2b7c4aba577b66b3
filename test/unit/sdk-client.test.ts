// The client wrapper (clients/ts) against a scripted fetch: typed errors, retries honouring
// Retry-After with a cap, keyset pagination, credentials. The running server: test/integration/sdk-client.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ApiError,
  NetworkError,
  createGroundworkClient,
  isApiError,
  retryAfterMs,
} from '../../clients/ts/src/index.ts';

const BASE = 'https://api.example.test';
const REQUEST_ID = '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b';

interface Sent {
  method: string;
  url: string;
  headers: Headers;
  body: string;
}

/** A fetch answering from a script, in order; records what was sent. */
function scripted(...answers: (() => Response)[]) {
  const sent: Sent[] = [];
  const fetch = async (request: Request) => {
    sent.push({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: await request.text(),
    });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected request ${request.method} ${request.url}`);
    return next();
  };
  return { fetch, sent };
}

const json =
  (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });
const problem = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(
    {
      type: `urn:groundwork:problem:${code.toLowerCase()}`,
      title: code,
      status,
      detail: `detail of ${code}`,
      code,
      requestId: REQUEST_ID,
      ...(code === 'VALIDATION_FAILED'
        ? { errors: [{ path: '/querystring/city[zz]', message: 'unknown operator' }] }
        : {}),
    },
    status,
    { 'content-type': 'application/problem+json; charset=utf-8', ...headers },
  );

/** A sleep that only records the waits. */
function fakeSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

const me = { id: REQUEST_ID, email: 'ada@example.com' };

describe('sdk client: calls and errors', () => {
  test('GET returns the data; the access token and API key are sent; baseUrl is joined once', async () => {
    const { fetch, sent } = scripted(json(me));
    const api = createGroundworkClient({
      baseUrl: `${BASE}/`,
      fetch,
      accessToken: () => 'tok',
      apiKey: 'key-1',
    });
    const user = await api.GET('/api/v1/users/me');
    assert.equal(user.email, 'ada@example.com');
    assert.equal(sent[0]?.url, `${BASE}/api/v1/users/me`);
    assert.equal(sent[0]?.headers.get('authorization'), 'Bearer tok');
    assert.equal(sent[0]?.headers.get('x-api-key'), 'key-1');
  });

  test('path and query parameters are filled in; a JSON body is sent', async () => {
    const { fetch, sent } = scripted(json({ id: REQUEST_ID }), json({}, 201));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    await api.GET('/api/v1/admin/users/{id}', { params: { path: { id: REQUEST_ID } } });
    assert.equal(sent[0]?.url, `${BASE}/api/v1/admin/users/${REQUEST_ID}`);
    await api.POST('/api/v1/admin/roles', { body: { name: 'editors', permissions: [] } });
    assert.equal(sent[1]?.method, 'POST');
    assert.deepEqual(JSON.parse(sent[1]?.body ?? ''), { name: 'editors', permissions: [] });
  });

  test('an error answer throws ApiError with the typed code, detail, request id and field errors', async () => {
    const { fetch } = scripted(problem(422, 'VALIDATION_FAILED'), problem(404, 'USER_NOT_FOUND'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch, retry: { retries: 0 } });
    const error = await api.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(isApiError(error, 'VALIDATION_FAILED'));
    assert.equal(error.status, 422);
    assert.equal(error.requestId, REQUEST_ID);
    assert.deepEqual(error.fieldErrors, [
      { path: '/querystring/city[zz]', message: 'unknown operator' },
    ]);
    assert.match(error.message, /VALIDATION_FAILED: detail of VALIDATION_FAILED/);
    const missing = await api
      .GET('/api/v1/admin/users/{id}', { params: { path: { id: REQUEST_ID } } })
      .catch((e: unknown) => e);
    assert.ok(isApiError(missing, 'USER_NOT_FOUND'));
    assert.equal(isApiError(missing, 'NOT_FOUND'), false);
  });

  test('an error that is not a problem (a proxy page) is UNEXPECTED_RESPONSE with the request id header', async () => {
    const { fetch } = scripted(
      () =>
        new Response('<html>Bad gateway</html>', {
          status: 502,
          headers: { 'content-type': 'text/html', 'x-request-id': 'r-1' },
        }),
    );
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    const error = await api.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 'UNEXPECTED_RESPONSE');
    assert.equal(error.status, 502);
    assert.equal(error.requestId, 'r-1');
    assert.equal(error.problem, undefined);
  });

  test('no answer at all (refused, CORS) is a NetworkError keeping the cause', async () => {
    const api = createGroundworkClient({
      baseUrl: BASE,
      fetch: () => Promise.reject(new TypeError('Failed to fetch')),
    });
    const error = await api.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(error instanceof NetworkError);
    assert.match(error.message, /Failed to fetch/);
    assert.ok(error.cause instanceof TypeError);
  });

  test('raw gives openapi-fetch’s result without throwing', async () => {
    const { fetch } = scripted(problem(401, 'UNAUTHORIZED'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    const { data, error, response } = await api.raw.GET('/api/v1/users/me');
    assert.equal(data, undefined);
    assert.equal(response.status, 401);
    assert.equal(error?.code, 'UNAUTHORIZED');
  });
});

describe('sdk client: retries', () => {
  test('429 is retried after Retry-After (seconds), then the data is returned', async () => {
    const clock = fakeSleep();
    const { fetch, sent } = scripted(
      problem(429, 'RATE_LIMITED', { 'retry-after': '2' }),
      json(me),
    );
    const api = createGroundworkClient({ baseUrl: BASE, fetch, retry: { sleep: clock.sleep } });
    assert.equal((await api.GET('/api/v1/users/me')).id, REQUEST_ID);
    assert.deepEqual(clock.waits, [2000]);
    assert.equal(sent.length, 2);
  });

  test('Retry-After as an HTTP date is honoured', () => {
    const now = Date.parse('2026-01-15T09:30:00Z');
    assert.equal(retryAfterMs('Thu, 15 Jan 2026 09:30:05 GMT', now), 5000);
    assert.equal(retryAfterMs('Thu, 15 Jan 2026 09:29:00 GMT', now), 0);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });

  test('a Retry-After past the cap is not waited for: the error comes at once, with retryAfterMs', async () => {
    const clock = fakeSleep();
    const { fetch, sent } = scripted(problem(429, 'RATE_LIMITED', { 'retry-after': '60' }));
    const api = createGroundworkClient({
      baseUrl: BASE,
      fetch,
      retry: { sleep: clock.sleep, maxDelayMs: 5000 },
    });
    const error = await api.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(isApiError(error, 'RATE_LIMITED'));
    assert.equal(error.retryAfterMs, 60_000);
    assert.deepEqual(clock.waits, []);
    assert.equal(sent.length, 1);
  });

  test('without Retry-After: exponential backoff capped by maxDelayMs; retries are bounded', async () => {
    const clock = fakeSleep();
    const { fetch, sent } = scripted(
      problem(503, 'OVERLOADED'),
      problem(503, 'OVERLOADED'),
      problem(503, 'OVERLOADED'),
      problem(503, 'OVERLOADED'),
    );
    const api = createGroundworkClient({
      baseUrl: BASE,
      fetch,
      retry: { sleep: clock.sleep, retries: 3, baseDelayMs: 300, maxDelayMs: 1000 },
    });
    const error = await api.GET('/api/v1/users/me').catch((e: unknown) => e);
    assert.ok(isApiError(error, 'OVERLOADED'));
    assert.deepEqual(clock.waits, [300, 600, 1000]);
    assert.equal(sent.length, 4, 'the first attempt and three retries');
  });

  test('503 on a POST is retried only with an Idempotency-Key; 429 always (it did not run); the body is resent', async () => {
    const body = { name: 'editors', permissions: [] };
    const clock = fakeSleep();
    const plain = scripted(problem(503, 'HANDLER_TIMEOUT'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch: plain.fetch, retry: clock });
    const error = await api.POST('/api/v1/admin/roles', { body }).catch((e: unknown) => e);
    assert.ok(isApiError(error, 'HANDLER_TIMEOUT'));
    assert.equal(plain.sent.length, 1);

    const keyed = scripted(problem(503, 'HANDLER_TIMEOUT'), json({}, 201));
    const api2 = createGroundworkClient({ baseUrl: BASE, fetch: keyed.fetch, retry: clock });
    await api2.POST('/api/v1/admin/roles', { body, headers: { 'idempotency-key': 'k-1' } });
    assert.equal(keyed.sent.length, 2);
    assert.equal(keyed.sent[1]?.body, JSON.stringify(body));

    const limited = scripted(problem(429, 'RATE_LIMITED', { 'retry-after': '1' }), json({}, 201));
    const api3 = createGroundworkClient({ baseUrl: BASE, fetch: limited.fetch, retry: clock });
    await api3.POST('/api/v1/admin/roles', { body });
    assert.equal(limited.sent.length, 2);
    assert.equal(limited.sent[1]?.body, JSON.stringify(body));
  });

  test('other errors are not retried', async () => {
    const clock = fakeSleep();
    const { fetch, sent } = scripted(problem(500, 'INTERNAL_ERROR'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch, retry: { sleep: clock.sleep } });
    await assert.rejects(api.GET('/api/v1/users/me'), ApiError);
    assert.equal(sent.length, 1);
  });

  test('an abort during the wait stops retrying', async () => {
    const controller = new AbortController();
    const { fetch } = scripted(problem(429, 'RATE_LIMITED', { 'retry-after': '5' }));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    setTimeout(() => controller.abort(new Error('stop')), 20);
    const started = Date.now();
    await assert.rejects(api.GET('/api/v1/users/me', { signal: controller.signal }), /stop/);
    assert.ok(Date.now() - started < 2000);
  });
});

describe('sdk client: keyset pagination', () => {
  const user = (n: number) => ({ id: `u${String(n)}` });
  const page = (ids: number[], nextCursor: string | null) =>
    json({ items: ids.map(user), page: { limit: 2, nextCursor, hasMore: nextCursor !== null } });

  test('paginate yields every item across pages, passing the cursor and keeping the other parameters', async () => {
    const { fetch, sent } = scripted(page([1, 2], 'c1'), page([3, 4], 'c2'), page([5], null));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    const ids: string[] = [];
    for await (const item of api.paginate('/api/v1/admin/users', {
      params: { query: { limit: '2', role: 'admin' } },
    }))
      ids.push(item.id);
    assert.deepEqual(ids, ['u1', 'u2', 'u3', 'u4', 'u5']);
    const queries = sent.map((s) => new URL(s.url).searchParams);
    assert.deepEqual(
      queries.map((q) => q.get('cursor')),
      [null, 'c1', 'c2'],
    );
    assert.ok(queries.every((q) => q.get('role') === 'admin' && q.get('limit') === '2'));
  });

  test('pages yields whole pages; break stops fetching', async () => {
    const { fetch, sent } = scripted(page([1, 2], 'c1'), page([3, 4], 'c2'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    for await (const p of api.pages('/api/v1/admin/users')) {
      assert.equal(p.items.length, 2);
      break;
    }
    assert.equal(sent.length, 1);
  });

  test('a repeated cursor stops with an error instead of looping forever', async () => {
    const { fetch } = scripted(page([1], 'same'), page([2], 'same'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    const items: unknown[] = [];
    await assert.rejects(async () => {
      for await (const item of api.paginate('/api/v1/admin/users')) items.push(item);
    }, /repeated the cursor same/);
    assert.equal(items.length, 2);
  });

  test('an error on a later page throws the ApiError after the earlier items', async () => {
    const { fetch } = scripted(page([1], 'c1'), problem(400, 'INVALID_CURSOR'));
    const api = createGroundworkClient({ baseUrl: BASE, fetch });
    const items: unknown[] = [];
    const error = await (async () => {
      for await (const item of api.paginate('/api/v1/admin/users')) items.push(item);
    })().catch((e: unknown) => e);
    assert.equal(items.length, 1);
    assert.ok(isApiError(error, 'INVALID_CURSOR'));
  });
});

describe('sdk client: types (checked by tsc, never run)', () => {
  test('paths, parameters, bodies and answers are typed from the document', () => {
    const api = createGroundworkClient({ baseUrl: BASE });
    const typed = async () => {
      // @ts-expect-error -- not a path of the API
      await api.GET('/api/v1/nope');
      // @ts-expect-error -- the path parameter is required
      await api.GET('/api/v1/admin/users/{id}');
      // @ts-expect-error -- a role needs its permissions
      await api.POST('/api/v1/admin/roles', { body: { name: 'x' } });
      const user = await api.GET('/api/v1/users/me');
      const email: string = user.email;
      // @ts-expect-error -- no such property in the answer
      const nothing: unknown = user.nope;
      for await (const account of api.paginate('/api/v1/admin/users')) {
        const locked: boolean = account.locked;
        void locked;
      }
      // @ts-expect-error -- not a keyset list
      api.paginate('/api/v1/users/me');
      return [email, nothing];
    };
    assert.equal(typeof typed, 'function');
  });
});
