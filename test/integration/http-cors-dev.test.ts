import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

function preflight(origin: string) {
  return {
    method: 'OPTIONS' as const,
    url: '/api/v1/echo',
    headers: { origin, 'access-control-request-method': 'POST' },
  };
}

describe('CORS in development', async () => {
  const { app } = await buildTestApp({ APP_ENV: 'development' }, { apps: [testkitApp] });
  test.after(() => app.close());

  test('regression: local browser origins are allowed with CORS_ORIGINS unset', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:8080', 'http://localhost']) {
      const res = await app.inject(preflight(origin));
      assert.equal(res.statusCode, 204, origin);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      const post = await app.inject({
        method: 'POST',
        url: '/api/v1/echo',
        headers: { origin },
        payload: { name: 'Ada', email: 'ada@example.com' },
      });
      assert.equal(post.statusCode, 200);
      assert.equal(post.headers['access-control-allow-origin'], origin);
    }
  });

  test('other origins are not, nor look-alikes of local ones', async () => {
    for (const origin of [
      'https://localhost:5173',
      'http://localhost.evil.example:5173',
      'http://127.0.0.1.nip.io',
      'https://app.example.com',
    ]) {
      const res = await app.inject(preflight(origin));
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      assert.equal(res.headers['access-control-allow-credentials'], undefined, origin);
    }
  });
});

describe('CORS in development with CORS_ORIGINS set', async () => {
  const { app } = await buildTestApp(
    { APP_ENV: 'development', CORS_ORIGINS: 'https://app.example.com' },
    { apps: [testkitApp] },
  );
  test.after(() => app.close());

  test('only the listed origins are allowed', async () => {
    const listed = await app.inject(preflight('https://app.example.com'));
    assert.equal(listed.headers['access-control-allow-origin'], 'https://app.example.com');
    const local = await app.inject(preflight('http://localhost:5173'));
    assert.equal(local.headers['access-control-allow-origin'], undefined);
  });
});

describe('CORS outside development', async () => {
  const { app } = await buildTestApp({ APP_ENV: 'test' }, { apps: [testkitApp] });
  test.after(() => app.close());

  test('with CORS_ORIGINS unset no origin is allowed, local ones included', async () => {
    const res = await app.inject(preflight('http://localhost:5173'));
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });
});
