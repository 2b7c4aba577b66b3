import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { HttpError } from '../../src/platform/http/index.ts';
import { createLogger } from '../../src/platform/observability/index.ts';
import {
  createHttpClient,
  ResilienceCodes,
  type HttpClient,
  type PolicyOverrides,
} from '../../src/platform/resilience/index.ts';
import { LogCapture, buildTestApp } from '../helpers/app.ts';
import { assertProblem } from '../helpers/problem.ts';

interface Hit {
  method: string;
  url: string;
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A scripted upstream on a free loopback port: `respond` answers hit number `n` (1-based). */
interface FakeUpstream {
  url: string;
  hits: Hit[];
  respond: (res: ServerResponse, n: number, hit: Hit) => void;
}

async function startUpstream(t: TestContext): Promise<FakeUpstream> {
  const upstream: FakeUpstream = {
    url: '',
    hits: [],
    respond: (res) => json(res, 200, { ok: true }),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit: Hit = {
        method: req.method ?? '',
        url: req.url ?? '',
        at: performance.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      upstream.hits.push(hit);
      upstream.respond(res, upstream.hits.length, hit);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return upstream;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Fast policies for tests: short backoff, small thresholds. */
const FAST: PolicyOverrides = {
  timeoutMs: 1_000,
  retries: 2,
  backoff: { initialDelayMs: 10, maxDelayMs: 50 },
  breaker: { failureThreshold: 5, halfOpenAfterMs: 300 },
};

function makeClient(t: TestContext, defaults: PolicyOverrides = FAST) {
  const logs = new LogCapture();
  const registry = new Registry();
  const client = createHttpClient({
    logger: createLogger({ level: 'debug', destination: logs }),
    metrics: registry,
    defaults,
  });
  t.after(() => client.close());
  return { client, logs, registry };
}

async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
    ?.value;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<HttpError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof HttpError, `expected an HttpError, got ${String(error)}`);
  assert.equal(error.code, code);
  return error;
}

describe('retries', () => {
  test('a GET answered 503 twice is retried and succeeds on the third attempt', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) =>
      n <= 2 ? json(res, 503, { error: 'busy' }) : json(res, 200, { value: 42 });
    const { client, registry } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url });

    const res = await api.request({ path: '/items/:id', params: { id: 'a b' } });
    assert.equal(res.status, 200);
    assert.equal(res.ok, true);
    assert.equal(res.attempts, 3);
    assert.deepEqual(res.json(), { value: 42 });
    assert.equal(upstream.hits.length, 3);
    assert.ok(upstream.hits.every((h) => h.url === '/items/a%20b'));
    const labels = { target: 'inventory' };
    assert.equal(
      await metricValue(registry, 'upstream_requests_total', {
        ...labels,
        outcome: 'server_error',
      }),
      2,
    );
    assert.equal(
      await metricValue(registry, 'upstream_requests_total', { ...labels, outcome: 'success' }),
      1,
    );
    assert.equal(api.state(), 'closed');
  });

  test('retries stop after the configured count: a 5xx then becomes UPSTREAM_ERROR', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 502, {});
    const { client } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url, retries: 3 });
    const error = await rejectsWith(
      api.request({ path: '/items' }),
      ResilienceCodes.UPSTREAM_ERROR,
    );
    assert.equal(error.status, 503);
    assert.equal(upstream.hits.length, 4);
  });

  test('a 500 is not retried (counted by the breaker, but not a transient status)', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 500, {});
    const { client } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url });
    await rejectsWith(api.request({ path: '/items' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal(upstream.hits.length, 1);
  });

  test('a POST is sent once unless marked idempotent', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 503, {});
    const { client } = makeClient(t);
    const api = client.target('payments', { baseUrl: upstream.url });

    await rejectsWith(
      api.request({ method: 'POST', path: '/charges', json: { amount: 5 } }),
      ResilienceCodes.UPSTREAM_ERROR,
    );
    assert.equal(upstream.hits.length, 1);
    assert.equal(upstream.hits[0]?.body, '{"amount":5}');
    assert.equal(upstream.hits[0]?.headers['content-type'], 'application/json');

    await rejectsWith(
      api.request({
        method: 'POST',
        path: '/charges',
        json: { amount: 5 },
        headers: { 'Idempotency-Key': 'k-1' },
        idempotent: true,
      }),
      ResilienceCodes.UPSTREAM_ERROR,
    );
    assert.equal(upstream.hits.length, 4);
    assert.ok(upstream.hits.slice(1).every((h) => h.headers['idempotency-key'] === 'k-1'));
  });

  test('a POST is not retried after a timeout either', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = () => undefined; // never answers
    const { client } = makeClient(t);
    const api = client.target('payments', { baseUrl: upstream.url, timeoutMs: 100 });
    await rejectsWith(
      api.request({ method: 'POST', path: '/charges', json: {} }),
      ResilienceCodes.UPSTREAM_TIMEOUT,
    );
    assert.equal(upstream.hits.length, 1);
  });

  test('Retry-After (seconds) is waited instead of the backoff', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) =>
      n === 1 ? json(res, 503, {}, { 'retry-after': '1' }) : json(res, 200, { ok: true });
    const { client } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url });
    const res = await api.request({ path: '/items' });
    assert.equal(res.status, 200);
    const [first, second] = upstream.hits;
    assert.ok(first && second);
    const gap = second.at - first.at;
    assert.ok(gap >= 950, `waited ${gap} ms, expected about 1 s`);
    assert.ok(gap < 2_000, `waited ${gap} ms`);
  });

  test('Retry-After as an HTTP date on a 429 is honoured', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) =>
      n === 1
        ? json(res, 429, {}, { 'retry-after': new Date(Date.now() + 2_000).toUTCString() })
        : json(res, 200, {});
    const { client } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url });
    const res = await api.request({ path: '/items' });
    assert.equal(res.status, 200);
    const [first, second] = upstream.hits;
    assert.ok(first && second);
    // HTTP dates have one-second precision: the wait is between 1 and 2 s.
    assert.ok(second.at - first.at >= 950, `waited ${second.at - first.at} ms`);
  });

  test('a Retry-After beyond the cap ends the call at once; a final 429 is returned to the app', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 429, { slow: 'down' }, { 'retry-after': '120' });
    const { client } = makeClient(t);
    const api = client.target('inventory', { baseUrl: upstream.url, maxRetryAfterMs: 5_000 });
    const started = performance.now();
    const res = await api.request({ path: '/items' });
    assert.ok(performance.now() - started < 500);
    assert.equal(res.status, 429);
    assert.equal(res.ok, false);
    assert.equal(upstream.hits.length, 1);
  });

  test('4xx answers are returned, not retried, and never open the breaker', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) => json(res, n % 2 ? 404 : 400, { error: 'nope' });
    const { client, registry } = makeClient(t, {
      ...FAST,
      breaker: { failureThreshold: 2, halfOpenAfterMs: 300 },
    });
    const api = client.target('inventory', { baseUrl: upstream.url });
    for (let i = 0; i < 6; i++) {
      const res = await api.request({ path: '/items/:id', params: { id: i } });
      assert.equal(res.status, i % 2 ? 400 : 404);
      assert.equal(res.attempts, 1);
    }
    assert.equal(upstream.hits.length, 6);
    assert.equal(api.state(), 'closed');
    assert.equal(
      await metricValue(registry, 'upstream_requests_total', {
        target: 'inventory',
        outcome: 'client_error',
      }),
      6,
    );
    assert.equal(await metricValue(registry, 'circuit_state', { target: 'inventory' }), 0);
  });
  test('an oversized body or unreadable JSON is UPSTREAM_ERROR, not retried and not counted by the breaker', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) => {
      if (n === 1) return json(res, 200, { big: 'x'.repeat(1_000) }); // declared content-length
      res.writeHead(200, { 'content-type': 'application/json' });
      if (n === 2) {
        // chunked, no content-length: the limit is counted while streaming
        res.write('x'.repeat(60));
        res.end('x'.repeat(60));
      } else res.end('{not json');
    };
    const { client } = makeClient(t, {
      ...FAST,
      breaker: { failureThreshold: 1, halfOpenAfterMs: 300 },
    });
    const api = client.target('feed', { baseUrl: upstream.url, maxResponseBytes: 100 });
    const big = await rejectsWith(api.request({ path: '/a' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal(big.detail, 'The feed service sent a response that could not be read.');
    await rejectsWith(api.request({ path: '/b' }), ResilienceCodes.UPSTREAM_ERROR);
    const res = await api.request({ path: '/c' });
    assert.equal(res.text(), '{not json');
    assert.throws(
      () => res.json(),
      (e) => e instanceof HttpError && e.code === ResilienceCodes.UPSTREAM_ERROR,
    );
    assert.equal(upstream.hits.length, 3);
    assert.equal(api.state(), 'closed');
  });
});

describe('timeouts', () => {
  test('each attempt has its own time limit; a hung attempt is retried', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) => {
      if (n === 1) return; // hangs: the client must give up on it
      json(res, 200, { ok: true });
    };
    const { client, registry } = makeClient(t);
    const api = client.target('search', { baseUrl: upstream.url, timeoutMs: 200 });
    const started = performance.now();
    const res = await api.request({ path: '/q' });
    const elapsed = performance.now() - started;
    assert.equal(res.status, 200);
    assert.equal(res.attempts, 2);
    assert.ok(elapsed >= 190 && elapsed < 1_000, `took ${elapsed} ms`);
    assert.equal(
      await metricValue(registry, 'upstream_requests_total', {
        target: 'search',
        outcome: 'timeout',
      }),
      1,
    );
  });

  test('a slow body counts against the attempt too; every attempt timing out is UPSTREAM_TIMEOUT', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":'); // the rest never comes
    };
    const { client } = makeClient(t);
    const api = client.target('search', { baseUrl: upstream.url, timeoutMs: 150, retries: 1 });
    const started = performance.now();
    const error = await rejectsWith(api.request({ path: '/q' }), ResilienceCodes.UPSTREAM_TIMEOUT);
    assert.equal(error.status, 503);
    assert.equal(upstream.hits.length, 2);
    assert.ok(performance.now() - started < 1_000);
  });

  test('the per-call timeout overrides the target; deadlineMs bounds the whole call', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = () => undefined;
    const { client } = makeClient(t);
    const api = client.target('search', { baseUrl: upstream.url, timeoutMs: 5_000, retries: 5 });
    let started = performance.now();
    await rejectsWith(
      api.request({ path: '/q', timeoutMs: 100, deadlineMs: 350 }),
      ResilienceCodes.UPSTREAM_TIMEOUT,
    );
    let elapsed = performance.now() - started;
    assert.ok(elapsed < 800, `took ${elapsed} ms`);
    assert.ok(
      upstream.hits.length >= 2 && upstream.hits.length <= 4,
      `${upstream.hits.length} attempts`,
    );

    started = performance.now();
    await rejectsWith(
      api.request({ path: '/q', deadlineMs: 200 }),
      ResilienceCodes.UPSTREAM_TIMEOUT,
    );
    elapsed = performance.now() - started;
    assert.ok(elapsed < 700, `deadline cut the 5 s attempt: took ${elapsed} ms`);
  });

  test("the caller's signal aborts the call with its reason, and the breaker does not count it", async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = () => undefined;
    const { client } = makeClient(t, {
      ...FAST,
      breaker: { failureThreshold: 1, halfOpenAfterMs: 300 },
    });
    const api = client.target('search', { baseUrl: upstream.url });
    const controller = new AbortController();
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(
      api.request({ path: '/q', signal: controller.signal }),
      (e) => e === reason,
    );
    assert.equal(upstream.hits.length, 1);
    assert.equal(api.state(), 'closed');
  });

  test('an unreachable target is UPSTREAM_UNAVAILABLE after the retries', async (t) => {
    const upstream = await startUpstream(t);
    const { client } = makeClient(t);
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const api = client.target('gone', { baseUrl: `http://127.0.0.1:${port}` });
    const error = await rejectsWith(
      api.request({ path: '/x' }),
      ResilienceCodes.UPSTREAM_UNAVAILABLE,
    );
    assert.equal(error.detail, 'The gone service could not be reached.');
    assert.equal(upstream.hits.length, 0);
  });
});

describe('circuit breaker', () => {
  const flapping = (t: TestContext) => {
    const { client, registry, logs } = makeClient(t, {
      ...FAST,
      retries: 0,
      breaker: { failureThreshold: 3, halfOpenAfterMs: 300 },
    });
    return { client, registry, logs };
  };

  test('a flapping upstream: opens after the threshold, fails fast, half-opens, reopens on a failed trial, closes on success', async (t) => {
    const upstream = await startUpstream(t);
    let down = true;
    upstream.respond = (res) => (down ? json(res, 500, {}) : json(res, 200, { up: true }));
    const { client, registry, logs } = flapping(t);
    const api = client.target('shipping', { baseUrl: upstream.url });
    const gauge = () => metricValue(registry, 'circuit_state', { target: 'shipping' });

    assert.equal(await gauge(), 0);
    for (let i = 0; i < 3; i++)
      await rejectsWith(api.request({ path: '/rates' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal(upstream.hits.length, 3);
    assert.equal(api.state(), 'open');
    assert.deepEqual(client.breakerStates(), { shipping: 'open' });
    assert.equal(await gauge(), 1);

    // Open: refused without touching the network, with Retry-After until the trial.
    const refused = await rejectsWith(
      api.request({ path: '/rates' }),
      ResilienceCodes.UPSTREAM_UNAVAILABLE,
    );
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.detail, 'The shipping service is unavailable.');
    assert.equal(upstream.hits.length, 3);
    assert.equal(
      await metricValue(registry, 'upstream_requests_total', {
        target: 'shipping',
        outcome: 'circuit_open',
      }),
      1,
    );

    // After halfOpenAfterMs: half-open; the trial call fails, so it opens again.
    await sleep(350);
    assert.equal(api.state(), 'half-open');
    assert.equal(await gauge(), 2);
    await rejectsWith(api.request({ path: '/rates' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal(upstream.hits.length, 4);
    assert.equal(api.state(), 'open');
    assert.equal(await gauge(), 1);
    await rejectsWith(api.request({ path: '/rates' }), ResilienceCodes.UPSTREAM_UNAVAILABLE);
    assert.equal(upstream.hits.length, 4);

    // The upstream recovers: the next trial succeeds and closes the circuit.
    down = false;
    await sleep(350);
    assert.deepEqual(client.breakerStates(), { shipping: 'half-open' });
    const ok = await api.request({ path: '/rates' });
    assert.equal(ok.status, 200);
    assert.equal(api.state(), 'closed');
    assert.equal(await gauge(), 0);
    for (let i = 0; i < 3; i++) assert.equal((await api.request({ path: '/rates' })).status, 200);
    assert.equal(upstream.hits.length, 8);

    // And it fails again: the count starts over and opens the circuit once more.
    down = true;
    for (let i = 0; i < 3; i++)
      await rejectsWith(api.request({ path: '/rates' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal(api.state(), 'open');
    await rejectsWith(api.request({ path: '/rates' }), ResilienceCodes.UPSTREAM_UNAVAILABLE);
    assert.equal(upstream.hits.length, 11);

    const messages = logs.lines.filter((l) => l.component === 'upstream').map((l) => l.msg);
    assert.equal(messages.filter((m) => m === 'circuit opened').length, 3);
    assert.equal(messages.filter((m) => m === 'circuit closed').length, 1);
  });

  test('timeouts and connection failures count; a success in between resets the count', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) => {
      if (n === 1 || n === 2) return; // hang
      if (n === 3) return json(res, 200, {});
      res.socket?.destroy(); // connection reset
    };
    const { client } = flapping(t);
    const api = client.target('shipping', { baseUrl: upstream.url, timeoutMs: 100 });
    await rejectsWith(api.request({ path: '/a' }), ResilienceCodes.UPSTREAM_TIMEOUT);
    await rejectsWith(api.request({ path: '/a' }), ResilienceCodes.UPSTREAM_TIMEOUT);
    assert.equal((await api.request({ path: '/a' })).status, 200);
    await rejectsWith(api.request({ path: '/a' }), ResilienceCodes.UPSTREAM_UNAVAILABLE);
    await rejectsWith(api.request({ path: '/a' }), ResilienceCodes.UPSTREAM_UNAVAILABLE);
    assert.equal(api.state(), 'closed');
    const third = await rejectsWith(
      api.request({ path: '/a' }),
      ResilienceCodes.UPSTREAM_UNAVAILABLE,
    );
    assert.equal(api.state(), 'open');
    // The call that opened the circuit already says when to come back.
    assert.equal(third.headers['retry-after'], '1');
    assert.equal(upstream.hits.length, 6);
  });

  test('retries stop at an open circuit instead of hammering the upstream', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 503, {});
    const { client } = makeClient(t, {
      ...FAST,
      retries: 5,
      breaker: { failureThreshold: 2, halfOpenAfterMs: 5_000 },
    });
    const api = client.target('shipping', { baseUrl: upstream.url });
    const error = await rejectsWith(
      api.request({ path: '/rates' }),
      ResilienceCodes.UPSTREAM_UNAVAILABLE,
    );
    assert.equal(upstream.hits.length, 2);
    assert.equal(error.headers['retry-after'], '5');
  });

  test('each target has its own breaker', async (t) => {
    const bad = await startUpstream(t);
    bad.respond = (res) => json(res, 500, {});
    const good = await startUpstream(t);
    const { client } = flapping(t);
    const a = client.target('bad', { baseUrl: bad.url });
    const b = client.target('good', { baseUrl: good.url, breaker: { failureThreshold: 1 } });
    for (let i = 0; i < 3; i++)
      await rejectsWith(a.request({ path: '/' }), ResilienceCodes.UPSTREAM_ERROR);
    assert.equal((await b.request({ path: '/' })).status, 200);
    assert.deepEqual(client.breakerStates(), { bad: 'open', good: 'closed' });
    assert.equal(b.policy.breaker.failureThreshold, 1);
    assert.equal(b.policy.breaker.halfOpenAfterMs, 300);
  });

  test('a failure-ratio breaker opens on the share of failed attempts in its window', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) => (n % 2 ? json(res, 500, {}) : json(res, 200, {}));
    const { client } = makeClient(t, {
      ...FAST,
      retries: 0,
      breaker: { failureRatio: 0.4, windowMs: 5_000, minimumCalls: 6, halfOpenAfterMs: 1_000 },
    });
    const api = client.target('ratio', { baseUrl: upstream.url });
    const states: string[] = [];
    for (let i = 0; i < 7; i++) {
      await api.request({ path: '/' }).catch(() => undefined);
      states.push(api.state());
    }
    // Calls 1-6 alternate failure and success: under the 6-call minimum when the failures come.
    // Call 7 fails with 4 of 7 failed (57% > 40%): open.
    assert.deepEqual(states, [...Array<string>(6).fill('closed'), 'open']);
    await rejectsWith(api.request({ path: '/' }), ResilienceCodes.UPSTREAM_UNAVAILABLE);
    assert.equal(upstream.hits.length, 7);
  });
});

describe('through the platform', () => {
  test('an open circuit becomes a 503 UPSTREAM_UNAVAILABLE problem with Retry-After; /metrics shows the state', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res) => json(res, 503, {});
    let client: HttpClient | undefined;
    const { app } = await buildTestApp(
      {},
      {
        setup: (a) => {
          client = createHttpClient({
            logger: createLogger({ level: 'silent' }),
            metrics: a.platform.metrics,
            defaults: {
              ...FAST,
              retries: 0,
              breaker: { failureThreshold: 2, halfOpenAfterMs: 4_000 },
            },
          });
          const rates = client.target('shipping', { baseUrl: upstream.url });
          a.get('/shipping-quote', async () => (await rates.request({ path: '/rates' })).json());
          a.addHook('onClose', () => client?.close());
        },
      },
    );
    t.after(() => app.close());

    const first = await app.inject({ method: 'GET', url: '/shipping-quote' });
    const body = assertProblem(first, 503, 'UPSTREAM_ERROR');
    assert.equal(body.detail, 'The shipping service failed to answer the request.');
    await app.inject({ method: 'GET', url: '/shipping-quote' });
    assert.deepEqual(client?.breakerStates(), { shipping: 'open' });

    const refused = await app.inject({ method: 'GET', url: '/shipping-quote' });
    const problem = assertProblem(refused, 503, 'UPSTREAM_UNAVAILABLE');
    assert.equal(problem.detail, 'The shipping service is unavailable.');
    assert.equal(refused.headers['retry-after'], '4');
    assert.equal(upstream.hits.length, 2);
    assert.ok(!refused.body.includes('127.0.0.1'), 'no upstream address in the problem');

    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /^circuit_state\{target="shipping"\} 1$/m);
    assert.match(
      metrics.body,
      /^upstream_requests_total\{target="shipping",outcome="circuit_open"\} 1$/m,
    );
    assert.match(metrics.body, /^upstream_request_duration_seconds_count\{target="shipping"\} 2$/m);
  });

  test('a timed-out upstream becomes a 503 UPSTREAM_TIMEOUT problem', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = () => undefined;
    const { app } = await buildTestApp(
      {},
      {
        setup: (a) => {
          const client = createHttpClient({
            logger: createLogger({ level: 'silent' }),
            defaults: { ...FAST, timeoutMs: 100, retries: 0 },
          });
          const search = client.target('search', { baseUrl: upstream.url });
          a.get('/search', async () => (await search.request({ path: '/q' })).json());
          a.addHook('onClose', () => client.close());
        },
      },
    );
    t.after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/search' });
    const body = assertProblem(res, 503, 'UPSTREAM_TIMEOUT');
    assert.equal(body.detail, 'The search service did not answer in time.');
  });
});

describe('logs', () => {
  test('log lines name target, method, path template, status and attempt; never headers, query or bodies', async (t) => {
    const upstream = await startUpstream(t);
    upstream.respond = (res, n) =>
      n === 1 ? json(res, 503, { leak: 'upstream-body-secret' }) : json(res, 200, {});
    const { client, logs } = makeClient(t);
    const api = client.target('crm', {
      baseUrl: `${upstream.url}/v2/`,
      headers: { Authorization: 'Bearer target-token-secret' },
    });
    await api.request({
      method: 'PUT',
      path: '/contacts/:id',
      params: { id: 'person-secret-id' },
      query: { token: 'query-secret', tags: ['a', 'b'], skip: undefined },
      headers: { 'x-api-key': 'call-key-secret' },
      json: { password: 'body-secret' },
    });
    const hit = upstream.hits[0];
    assert.equal(hit?.url, '/v2/contacts/person-secret-id?token=query-secret&tags=a&tags=b');
    assert.equal(hit?.headers.authorization, 'Bearer target-token-secret');
    assert.equal(hit?.headers['x-api-key'], 'call-key-secret');

    const line = logs.lines.find((l) => l.msg === 'upstream attempt failed, retrying');
    assert.ok(line, logs.text);
    assert.equal(line.target, 'crm');
    assert.equal(line.method, 'PUT');
    assert.equal(line.path, '/contacts/:id');
    assert.equal(line.status, 503);
    assert.equal(line.attempt, 1);
    assert.equal(typeof line.retryInMs, 'number');
    for (const secret of [
      'target-token-secret',
      'query-secret',
      'call-key-secret',
      'body-secret',
      'upstream-body-secret',
      'person-secret-id',
    ])
      assert.ok(!logs.text.includes(secret), `${secret} leaked into the logs`);
  });

  test('target names and base URLs are checked when declared', async (t) => {
    const { client } = makeClient(t);
    assert.throws(
      () => client.target('Bad Name', { baseUrl: 'http://127.0.0.1:1' }),
      /not \[a-z0-9_-\]/,
    );
    assert.throws(() => client.target('ftp', { baseUrl: 'ftp://example.com' }), /http\(s\)/);
    client.target('once', { baseUrl: 'http://127.0.0.1:1' });
    assert.throws(
      () => client.target('once', { baseUrl: 'http://127.0.0.1:1' }),
      /already declared/,
    );
    assert.throws(
      () => client.target('neg', { baseUrl: 'http://127.0.0.1:1', retries: -1 }),
      /retries/,
    );
  });
});
