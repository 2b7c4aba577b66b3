import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { connectRedis, closeRedis } from '../../src/platform/redis/index.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { freePort } from '../helpers/process.ts';
import { assertProblem } from '../helpers/problem.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

const redisOk = await needsRedis();

describe('traffic and resilience wiring in buildApp', () => {
  test('an open circuit shows on /health and /metrics and fails calls fast with 503', async () => {
    const port = await freePort(); // nothing listens there
    const { app } = await buildTestApp(
      {
        BREAKER_FAILURE_THRESHOLD: '1',
        UPSTREAM_RETRIES: '0',
        BREAKER_HALF_OPEN_AFTER_MS: '60000',
      },
      {
        setup: (a) => {
          const partner = a.platform.upstream.target('partner', {
            baseUrl: `http://127.0.0.1:${String(port)}`,
          });
          a.get('/api/v1/partner', async () => (await partner.request({ path: '/ping' })).json());
        },
      },
    );
    try {
      assertProblem(await app.inject({ url: '/api/v1/partner' }), 503, 'UPSTREAM_UNAVAILABLE');
      const open = await app.inject({ url: '/api/v1/partner' });
      assertProblem(open, 503, 'UPSTREAM_UNAVAILABLE');
      assert.ok(Number(open.headers['retry-after']) > 0);
      const health = await app.inject({ url: '/health' });
      assert.equal(health.json<{ circuits: Record<string, string> }>().circuits.partner, 'open');
      assert.equal(health.statusCode, 200, 'an open breaker does not fail readiness');
      const metrics = await app.inject({ url: '/metrics' });
      assert.match(metrics.body, /^circuit_state\{target="partner"\} 1$/m);
    } finally {
      await app.close();
    }
  });

  test('the cache and HTTP caching are on every app', async () => {
    const { app } = await buildTestApp(
      {},
      {
        setup: (a) => {
          a.get('/api/v1/public', { config: { cache: { maxAge: 60 } } }, async () => {
            const key = a.platform.cache.key('public', 'greeting');
            return a.platform.cache.getOrSet(key, async () => ({ hello: 'world' }), {
              ttlSeconds: 30,
            });
          });
        },
      },
    );
    try {
      const first = await app.inject({ url: '/api/v1/public' });
      assert.equal(first.statusCode, 200);
      assert.match(String(first.headers['cache-control']), /max-age=60/);
      const etag = String(first.headers.etag);
      assert.match(etag, /^"[^"]+"$/);
      const again = await app.inject({ url: '/api/v1/public', headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304);
      assert.equal(again.body, '');
      // OpenAPI documents the 304 of a cached route.
      const doc = (await app.inject({ url: '/openapi.json' })).json<{
        paths: Record<string, { get: { responses: Record<string, unknown> } }>;
      }>();
      assert.ok(doc.paths['/api/v1/public']?.get.responses['304']);
    } finally {
      await app.close();
    }
  });

  test('with Redis: a redis readiness check', redisOk, async () => {
    const redis = await connectRedis(
      testConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `gwtest:${randomUUID()}:` }),
      pino({ level: 'silent' }),
    );
    assert.ok(redis);
    const { app } = await buildTestApp({}, { redis });
    try {
      const ready = await app.inject({ url: '/health/ready' });
      assert.equal(ready.statusCode, 200);
      assert.equal(
        ready.json<{ checks: { redis: { status: string } } }>().checks.redis.status,
        'up',
      );
    } finally {
      await app.close();
      await closeRedis(redis);
    }
  });
});
