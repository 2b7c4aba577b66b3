import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import {
  fastCounter,
  HTTP_DURATION_BUCKETS,
  instrumentHttp,
} from '../../src/platform/observability/metrics.ts';

/** The same requests recorded by instrumentHttp and by prom-client's own Counter and Histogram. */
function recordBoth(requests: readonly [string, string, number, number][]) {
  const ours = new Registry();
  const record = instrumentHttp(ours);
  const theirs = new Registry();
  const labelNames = ['method', 'route', 'status_code'] as const;
  const counter = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests completed',
    labelNames,
    registers: [theirs],
  });
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration from arrival to response',
    labelNames,
    buckets: [...HTTP_DURATION_BUCKETS],
    registers: [theirs],
  });
  for (const [method, route, status, seconds] of requests) {
    record(method, route, status, seconds);
    const labels = { method, route, status_code: String(status) };
    counter.inc(labels);
    histogram.observe(labels, seconds);
  }
  return { ours, theirs };
}

const REQUESTS: [string, string, number, number][] = [
  ['GET', '/api/v1/things', 200, 0.0004],
  ['GET', '/api/v1/things', 200, 0.001], // on a bound: counted in that bucket
  ['GET', '/api/v1/things', 200, 0.3],
  ['POST', '/api/v1/things', 201, 0.02],
  ['GET', '/api/v1/things', 404, 12], // above every bound: +Inf only
  ['GET', '__unmatched__', 404, 0.0001],
  ['GET', '/api/v1/things/:id', 200, 5],
];

test("the HTTP metrics expose exactly what prom-client's Counter and Histogram would", async () => {
  const { ours, theirs } = recordBoth(REQUESTS);
  assert.equal(await ours.metrics(), await theirs.metrics());
  // As JSON (prom-client's sum and count values carry an `exemplar: undefined` ours leave out).
  const json = async (registry: Registry) =>
    JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as unknown;
  assert.deepEqual(await json(ours), await json(theirs));
  const text = await ours.metrics();
  assert.match(
    text,
    /http_request_duration_seconds_bucket\{le="0.001",method="GET",route="\/api\/v1\/things",status_code="200"\} 2/,
  );
  assert.match(
    text,
    /http_requests_total\{method="GET",route="\/api\/v1\/things",status_code="200"\} 3/,
  );
});

test('resetting the registry zeroes the HTTP series, as it does prom-client metrics', async () => {
  const { ours, theirs } = recordBoth(REQUESTS);
  ours.resetMetrics();
  theirs.resetMetrics();
  const zeroes = (await ours.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => v.value));
  assert.ok(zeroes.length > 0);
  assert.ok(zeroes.every((v) => v === 0));
  // prom-client drops its series on reset; ours keep them at zero, so only values are compared.
  assert.ok((await theirs.getMetricsAsJSON()).every((m) => m.values.every((v) => v.value === 0)));
});

test("a fast counter exposes what prom-client's Counter would, and is shared by name", async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const a = fastCounter<'namespace' | 'result'>(ours, 'cache_requests_total', 'Lookups');
  const b = fastCounter<'namespace' | 'result'>(ours, 'cache_requests_total', 'Lookups');
  assert.equal(a, b, 'the second registration returns the first');
  const counter = new Counter({
    name: 'cache_requests_total',
    help: 'Lookups',
    labelNames: ['namespace', 'result'],
    registers: [theirs],
  });
  const hit = a.child({ namespace: 'posts', result: 'hit' });
  const miss = b.child({ namespace: 'posts', result: 'miss' });
  for (let i = 0; i < 2; i++) hit.inc();
  // A child asked again for the same labels (another cache on the registry): the same series.
  b.child({ result: 'hit', namespace: 'posts' }).inc();
  miss.inc(2);
  counter.inc({ namespace: 'posts', result: 'hit' }, 3);
  counter.inc({ namespace: 'posts', result: 'miss' }, 2);
  assert.equal(await ours.metrics(), await theirs.metrics());
  ours.resetMetrics();
  assert.match(await ours.metrics(), /cache_requests_total\{namespace="posts",result="hit"\} 0/);
});
