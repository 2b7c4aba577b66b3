import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_POLICY,
  expandPath,
  isRetryableStatus,
  mayRetry,
  mergePolicy,
  parseRetryAfter,
} from '../../src/platform/resilience/index.ts';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');

  test('delay-seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('1', now), 1_000);
    assert.equal(parseRetryAfter(' 120 ', now), 120_000);
    assert.equal(parseRetryAfter(['3', '9'], now), 3_000);
  });

  test('an HTTP date, in the future or the past', () => {
    assert.equal(parseRetryAfter('Sun, 01 Mar 2026 12:00:05 GMT', now), 5_000);
    assert.equal(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now), 0);
  });

  test('absent or unreadable: undefined (the backoff applies)', () => {
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
    assert.equal(parseRetryAfter('1.5', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
  });
});

describe('what is retried', () => {
  test('idempotent methods, or calls marked idempotent; never a POST or PATCH by default', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
      assert.equal(mayRetry(m, undefined), true, m);
    for (const m of ['POST', 'PATCH']) assert.equal(mayRetry(m, undefined), false, m);
    assert.equal(mayRetry('POST', true), true);
    assert.equal(mayRetry('GET', false), false);
  });

  test('transient statuses only', () => {
    for (const s of [408, 429, 502, 503, 504]) assert.equal(isRetryableStatus(s), true, String(s));
    for (const s of [200, 301, 400, 401, 403, 404, 409, 422, 500, 501])
      assert.equal(isRetryableStatus(s), false, String(s));
  });
});

describe('mergePolicy', () => {
  test('layers override field by field, nested objects merged', () => {
    const p = mergePolicy(
      DEFAULT_POLICY,
      { retries: 4, breaker: { failureThreshold: 2 } },
      { timeoutMs: 250, backoff: { maxDelayMs: 900 }, breaker: { halfOpenAfterMs: undefined } },
    );
    assert.equal(p.retries, 4);
    assert.equal(p.timeoutMs, 250);
    assert.deepEqual(p.backoff, {
      initialDelayMs: DEFAULT_POLICY.backoff.initialDelayMs,
      maxDelayMs: 900,
    });
    assert.deepEqual(p.breaker, {
      failureThreshold: 2,
      halfOpenAfterMs: DEFAULT_POLICY.breaker.halfOpenAfterMs,
    });
    assert.equal(DEFAULT_POLICY.retries, 2, 'the defaults are not changed');
  });

  test('refuses impossible settings', () => {
    assert.throws(() => mergePolicy(DEFAULT_POLICY, { timeoutMs: 0 }), /timeoutMs/);
    assert.throws(() => mergePolicy(DEFAULT_POLICY, { retries: 1.5 }), /retries/);
    assert.throws(
      () => mergePolicy(DEFAULT_POLICY, { breaker: { failureThreshold: 0 } }),
      /failureThreshold/,
    );
    assert.throws(
      () => mergePolicy(DEFAULT_POLICY, { breaker: { failureRatio: 1 } }),
      /failureRatio/,
    );
    assert.throws(
      () => mergePolicy(DEFAULT_POLICY, { breaker: { minimumCalls: 0 } }),
      /minimumCalls/,
    );
  });
});

describe('expandPath', () => {
  test('fills /:name segments, encoding each value as one segment', () => {
    assert.equal(
      expandPath('/users/:id/posts/:postId', { id: 'a/b', postId: 7 }),
      '/users/a%2Fb/posts/7',
    );
    assert.equal(expandPath('/v1/items:batchGet'), '/v1/items:batchGet');
  });

  test('a missing parameter or a relative path is a programming error', () => {
    assert.throws(() => expandPath('/users/:id', {}), /"id" is missing/);
    assert.throws(() => expandPath('users'), /must start with/);
  });
});
