import type { ProblemBody } from '../../src/platform/http/index.ts';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';
import { assertProblem } from '../helpers/problem.ts';

type Problem = ProblemBody;

describe('HTTP contract', async () => {
  const { app, logs } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());

  test('API responses carry API-Version: 1; operational routes do not need it', async () => {
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: 'Ada', email: 'ada@example.com' },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['api-version'], '1');
    const notFound = await app.inject({ method: 'GET', url: '/api/v1/nope' });
    assert.equal(notFound.headers['api-version'], '1');
  });

  test('malformed JSON is 400 MALFORMED_BODY', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "Ada",',
    });
    assertProblem(res, 400, 'MALFORMED_BODY');
  });

  test('an empty body with a JSON content type is 400 MALFORMED_BODY', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    assertProblem(res, 400, 'MALFORMED_BODY');
  });

  test('a JSON body with the wrong content type is 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/echo',
        headers: { 'content-type': type },
        payload: '{"name":"Ada","email":"ada@example.com"}',
      });
      assertProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  test('a body over the default 1 MiB limit is 413', async () => {
    const payload = JSON.stringify({ name: 'x'.repeat(1_048_576), email: 'a@example.com' });
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    assertProblem(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  test('a per-route body limit overrides the default', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/small',
      payload: { text: 'y'.repeat(100) },
    });
    assertProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/small',
      payload: { text: 'short' },
    });
    assert.equal(ok.statusCode, 200);
  });

  test('validation failure is 422 VALIDATION_FAILED listing every field', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: '', email: 'not-an-email', age: 200 },
    });
    const body = assertProblem(res, 422, 'VALIDATION_FAILED');
    const paths = (body.errors ?? []).map((e) => e.path).sort();
    assert.deepEqual(paths, ['/body/age', '/body/email', '/body/name']);
    for (const e of body.errors ?? []) assert.ok(e.message.length > 0);
  });

  test('a missing required field names its path', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { name: 'Ada' } });
    const body = assertProblem(res, 422, 'VALIDATION_FAILED');
    assert.deepEqual(
      body.errors?.map((e) => e.path),
      ['/body/email'],
    );
  });

  test('query validation reports /query paths; unknown body properties are stripped', async () => {
    for (const limit of ['0', '-1', '101', 'abc']) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/items?limit=${limit}` });
      const body = assertProblem(res, 422, 'VALIDATION_FAILED');
      assert.equal(body.errors?.[0]?.path, '/query/limit');
    }
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: 'Ada', email: 'ada@example.com', isAdmin: true },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { name: 'Ada', email: 'ada@example.com' });
  });

  test('unknown route is 404 ROUTE_NOT_FOUND, for any method', async () => {
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/api/v1/does-not-exist' });
      assertProblem(res, 404, 'ROUTE_NOT_FOUND');
    }
    assertProblem(await app.inject({ method: 'GET', url: '/' }), 404, 'ROUTE_NOT_FOUND');
  });

  test('a 100 KB query string is refused with 414 URI_TOO_LONG', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/items?q=${'a'.repeat(100_000)}` });
    assertProblem(res, 414, 'URI_TOO_LONG');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'DENY');
  });

  test('an unexpected error is 500 INTERNAL_ERROR without the internal message or stack', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/boom' });
    const body = assertProblem(res, 500, 'INTERNAL_ERROR');
    assert.doesNotMatch(res.body, /hunter2|postgres|stack|at /);
    assert.match(body.detail, /requestId/);
    const line = logs.lines.find(
      (l) => l.requestId === body.requestId && l.msg === 'unexpected error',
    );
    assert.ok(line, 'the error is logged with the request id');
    assert.match(JSON.stringify(line), /Error/);
  });

  test('a handler that runs past its timeout is answered with 503 HANDLER_TIMEOUT', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/slow?ms=2000' });
    assertProblem(res, 503, 'HANDLER_TIMEOUT');
    const fast = await app.inject({ method: 'GET', url: '/api/v1/slow?ms=1' });
    assert.equal(fast.statusCode, 200);
  });

  test('HANDLER_TIMEOUT_MS answers every route without its own timeout with 503 HANDLER_TIMEOUT, and forgets answered requests', async (t) => {
    const { app: timed } = await buildTestApp(
      { HANDLER_TIMEOUT_MS: '200' },
      {
        setup: (instance) => {
          instance.get('/test/hang', async () => {
            await new Promise((resolve) => setTimeout(resolve, 3_000).unref());
            return { ok: true };
          });
          instance.get('/test/quick', async () => ({ ok: true }));
        },
      },
    );
    t.after(() => timed.close());
    const started = Date.now();
    const res = await timed.inject({ method: 'GET', url: '/test/hang' });
    const took = Date.now() - started;
    assertProblem(res, 503, 'HANDLER_TIMEOUT');
    assert.ok(took >= 200 && took < 1_500, `answered after ${String(took)} ms`);
    const quick = await timed.inject({ method: 'GET', url: '/test/quick' });
    assert.equal(quick.statusCode, 200);
  });

  test('a deprecated route sends Deprecation, Sunset and Link', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/old' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.deprecation, `@${Date.UTC(2026, 0, 1) / 1000}`);
    assert.equal(res.headers.sunset, 'Wed, 30 Jun 2027 00:00:00 GMT');
    assert.equal(
      res.headers.link,
      '<https://docs.example.com/migrate>; rel="deprecation"; type="text/html"',
    );
    const current = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: 'Ada', email: 'ada@example.com' },
    });
    assert.equal(current.headers.deprecation, undefined);
    assert.equal(current.headers.sunset, undefined);
  });
});

describe('request id', async () => {
  const { app, logs } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());
  const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  test('a safe incoming X-Request-Id is kept and echoed in header, problem body and logs', async () => {
    const id = 'client-req_42:abc.def';
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/nope',
      headers: { 'x-request-id': id },
    });
    assert.equal(res.headers['x-request-id'], id);
    assert.equal(res.json<Problem>().requestId, id);
    const lines = logs.lines.filter((l) => l.requestId === id);
    assert.ok(lines.length >= 1);
    assert.ok(lines.some((l) => l.msg === 'request completed'));
  });

  test('a missing id is made as UUID v7', async () => {
    const res = await app.inject({ method: 'GET', url: '/health/live' });
    assert.match(String(res.headers['x-request-id']), UUID_V7);
  });

  test('unsafe ids are replaced, never echoed', async () => {
    const unsafe = [
      'abc\ndef',
      'abc\r\nX-Injected: 1',
      'x'.repeat(10_000),
      'x'.repeat(129),
      'héllo-wörld',
      'id with spaces',
      '<script>',
      '',
    ];
    for (const id of unsafe) {
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/nope',
        headers: { 'x-request-id': id },
      });
      const echoed = String(res.headers['x-request-id']);
      assert.match(echoed, UUID_V7, JSON.stringify(id.slice(0, 20)));
      assert.notEqual(echoed, id);
      assert.equal(res.json<Problem>().requestId, echoed);
      assert.equal(res.headers['x-injected'], undefined);
    }
    assert.ok(!logs.text.includes('x'.repeat(129)));
    assert.ok(!logs.text.includes('héllo'));
  });

  test('exactly 128 safe characters are kept', async () => {
    const id = 'a'.repeat(128);
    const res = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': id },
    });
    assert.equal(res.headers['x-request-id'], id);
  });
});

describe('internal errors in development', async () => {
  const { app } = await buildTestApp({ APP_ENV: 'development' }, { apps: [testkitApp] });
  test.after(() => app.close());

  test('development shows the internal message to help the developer', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/boom' });
    assert.equal(res.statusCode, 500);
    assert.match(res.json<Problem>().detail, /connection to postgres/);
    assert.doesNotMatch(res.body, /at .*\.ts:\d+/);
  });
});
