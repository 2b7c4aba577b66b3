import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helpers/app.ts';
import { assertProblem } from '../helpers/problem.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

describe('a wrong method on an existing path', async () => {
  const { app } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());

  test('regression: is 405 METHOD_NOT_ALLOWED with Allow, not 404', async () => {
    const get = await app.inject({ method: 'GET', url: '/api/v1/echo' });
    const body = assertProblem(get, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(get.headers.allow, 'POST, OPTIONS');
    assert.match(body.detail, /GET is not allowed here; this path allows POST, OPTIONS\./);

    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/api/v1/items?limit=5' });
      assertProblem(res, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, 'GET, HEAD, OPTIONS', method);
    }
    // Operational routes too, and the platform's headers are on the answer.
    const live = await app.inject({ method: 'POST', url: '/health/live' });
    assertProblem(live, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(live.headers.allow, 'GET, HEAD, OPTIONS');
    assert.equal(live.headers['x-content-type-options'], 'nosniff');
  });

  test('HEAD follows GET; HEAD on a path without GET is 405 with no body', async () => {
    const head = await app.inject({ method: 'HEAD', url: '/api/v1/items' });
    assert.equal(head.statusCode, 200);
    const wrong = await app.inject({ method: 'HEAD', url: '/api/v1/echo' });
    assert.equal(wrong.statusCode, 405);
    assert.equal(wrong.headers.allow, 'POST, OPTIONS');
    assert.equal(wrong.body, '');
  });

  test('OPTIONS on an existing path is 204 with Allow; on an unknown path 404', async () => {
    const options = await app.inject({ method: 'OPTIONS', url: '/api/v1/items' });
    assert.equal(options.statusCode, 204);
    assert.equal(options.headers.allow, 'GET, HEAD, OPTIONS');
    assert.equal(options.body, '');
    const unknown = await app.inject({ method: 'OPTIONS', url: '/api/v1/does-not-exist' });
    assertProblem(unknown, 404, 'ROUTE_NOT_FOUND');
  });

  test('a path that does not exist stays 404 ROUTE_NOT_FOUND for every method', async () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/api/v1/echo/extra' });
      assert.equal(res.statusCode, 404, method);
      assert.equal(res.headers.allow, undefined, method);
    }
  });
});

describe('405 with CORS configured', async () => {
  const origin = 'https://app.example.com';
  const { app } = await buildTestApp({ CORS_ORIGINS: origin }, { apps: [testkitApp] });
  test.after(() => app.close());

  test('preflights still answer; the CORS catch-all route does not make every path exist', async () => {
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/echo',
      headers: { origin, 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], origin);

    const wrong = await app.inject({ method: 'DELETE', url: '/api/v1/echo', headers: { origin } });
    assertProblem(wrong, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(wrong.headers.allow, 'POST, OPTIONS');
    assert.equal(wrong.headers['access-control-allow-origin'], origin);

    const unknown = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/does-not-exist',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'GET' },
    });
    assertProblem(unknown, 404, 'ROUTE_NOT_FOUND');
    assertProblem(await app.inject({ method: 'GET', url: '/nope' }), 404, 'ROUTE_NOT_FOUND');
  });
});
