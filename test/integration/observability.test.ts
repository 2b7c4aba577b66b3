import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

const TOKEN = 'metrics-token-for-tests-0123456789';

describe('request logs', async () => {
  const { app, logs } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());

  test('one completion line per request with request id, method, route template, status, duration, ip', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/items?limit=5',
      headers: { 'x-request-id': 'log-line-1' },
    });
    assert.equal(res.statusCode, 200);
    const lines = logs.lines.filter(
      (l) => l.requestId === 'log-line-1' && l.msg === 'request completed',
    );
    assert.equal(lines.length, 1);
    const line = lines[0] ?? {};
    assert.equal(line.method, 'GET');
    assert.equal(line.route, '/api/v1/items');
    assert.equal(line.statusCode, 200);
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(line.ip, '127.0.0.1');
    assert.equal(line.level, 'info');
    assert.equal(typeof line.time, 'string');
  });

  test('a password sent in a body never appears in the logs, even when the handler fails', async () => {
    const password = 'Tr0ub4dor&3-very-secret-pw';
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'ada', password },
      headers: { authorization: 'Bearer abc.def.ghi', cookie: 'sid=s3cr3t' },
    });
    assert.equal(res.statusCode, 500);
    const bad = await app.inject({ method: 'POST', url: '/api/v1/login', payload: { password } });
    assert.equal(bad.statusCode, 422);
    assert.ok(logs.raw.length > 0);
    assert.ok(!logs.text.includes(password), 'password leaked into logs');
    assert.ok(!logs.text.includes('abc.def.ghi'), 'authorization leaked into logs');
    assert.ok(!logs.text.includes('s3cr3t'), 'cookie leaked into logs');
  });

  test('redaction covers password, token and secret fields logged by code', async () => {
    app.log.info(
      {
        user: { password: 'p1-leak' },
        token: 't1-leak',
        nested: { deeper: { secret: 's1-leak' } },
        headers: { authorization: 'a1-leak' },
      },
      'audit',
    );
    await new Promise((resolve) => setImmediate(resolve));
    for (const leak of ['p1-leak', 't1-leak', 's1-leak', 'a1-leak'])
      assert.ok(!logs.text.includes(leak), leak);
    assert.ok(logs.text.includes('[REDACTED]'));
  });
});

describe('metrics', async () => {
  const { app } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());

  test('exposes default process metrics and HTTP metrics labelled by route template', async () => {
    await app.inject({ method: 'GET', url: '/api/v1/items?limit=3' });
    await app.inject({ method: 'GET', url: '/api/v1/items?limit=4' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    assert.match(res.body, /process_cpu_user_seconds_total/);
    assert.match(res.body, /nodejs_eventloop_lag_seconds/);
    assert.match(
      res.body,
      /http_requests_total\{method="GET",route="\/api\/v1\/items",status_code="200"\} 2/,
    );
    assert.match(
      res.body,
      /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/api\/v1\/items",status_code="200"\}/,
    );
  });

  test('unknown routes collapse to one label, so cardinality stays bounded', async () => {
    for (let i = 0; i < 25; i++)
      await app.inject({ method: 'GET', url: `/random/${i}/${Math.random()}` });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.match(
      res.body,
      /http_requests_total\{method="GET",route="__unmatched__",status_code="404"\} 25/,
    );
    assert.doesNotMatch(res.body, /random\//);
  });

  test('parametrised routes use the template, not the path', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/static/index.css' });
    assert.equal(res.statusCode, 200);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.doesNotMatch(metrics.body, /index\.css/);
  });
});

describe('metrics and status behind METRICS_TOKEN', async () => {
  const { app } = await buildTestApp({ METRICS_TOKEN: TOKEN });
  test.after(() => app.close());

  test('no or wrong token is 401 problem; the right bearer token is 200', async () => {
    for (const url of ['/metrics', '/health']) {
      for (const authorization of [
        undefined,
        'Bearer wrong',
        `Basic ${TOKEN}`,
        `Bearer ${TOKEN}x`,
        `bearer  ${TOKEN}`,
        'Bearer',
        'x'.repeat(10_000),
      ]) {
        const res = await app.inject({
          method: 'GET',
          url,
          headers: authorization === undefined ? {} : { authorization },
        });
        assert.equal(res.statusCode, 401, `${url} ${String(authorization).slice(0, 30)}`);
        assert.equal(res.json<{ code: string }>().code, 'UNAUTHORIZED');
        assert.equal(res.headers['www-authenticate'], 'Bearer');
      }
      const ok = await app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(ok.statusCode, 200, url);
    }
  });

  test('probes never need the token', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200);
  });
});

describe('health', () => {
  test('live is 200 {"status":"ok"}', async (t) => {
    const { app } = await buildTestApp();
    t.after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/health/live' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  test('ready runs every registered check and reports each', async (t) => {
    const { app } = await buildTestApp(
      {},
      {
        setup: (a) => {
          a.platform.health.register('fast', async () => undefined);
          a.platform.health.register('also', async () => 'fine');
        },
      },
    );
    t.after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{
      status: string;
      checks: Record<string, { status: string; latencyMs: number }>;
    }>();
    assert.equal(body.status, 'ok');
    assert.deepEqual(Object.keys(body.checks).sort(), ['also', 'fast']);
    assert.equal(body.checks.fast?.status, 'up');
    assert.equal(typeof body.checks.fast?.latencyMs, 'number');
  });

  test('a failing or hanging check makes ready 503 with each check reported', async (t) => {
    const { app } = await buildTestApp(
      {},
      {
        setup: (a) => {
          a.platform.health.register('ok', async () => undefined);
          a.platform.health.register('broken', async () => {
            throw new Error('connection refused');
          });
          a.platform.health.register('hung', () => new Promise(() => undefined), { timeoutMs: 50 });
        },
      },
    );
    t.after(() => app.close());
    const started = Date.now();
    const res = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.ok(Date.now() - started < 1_000, 'bounded by the check timeout');
    assert.equal(res.statusCode, 503);
    const body = res.json<{
      status: string;
      checks: Record<string, { status: string; error?: string }>;
    }>();
    assert.equal(body.status, 'unavailable');
    assert.equal(body.checks.ok?.status, 'up');
    assert.deepEqual(body.checks.broken, {
      ...body.checks.broken,
      status: 'down',
      error: 'connection refused',
    });
    assert.equal(body.checks.hung?.status, 'down');
    assert.match(body.checks.hung?.error ?? '', /timed out after 50 ms/);
  });

  test('status adds version, uptime and memory', async (t) => {
    const { app } = await buildTestApp();
    t.after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{
      status: string;
      version: string;
      uptimeSeconds: number;
      memory: { rssBytes: number; heapUsedBytes: number };
    }>();
    assert.equal(body.status, 'ok');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.ok(body.memory.rssBytes > 0 && body.memory.heapUsedBytes > 0);
  });

  test('readiness turns 503 as soon as shutdown begins; responses close the connection once the listener closes', async (t) => {
    const { app, logs } = await buildTestApp();
    t.after(() => app.close());
    assert.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200);
    app.platform.lifecycle.beginShutdown();
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json<{ status: string }>().status, 'unavailable');
    // During the drain delay keep-alive connections stay open (issue 12, defect 7)...
    assert.notEqual(ready.headers.connection, 'close');
    // ...and from the listener's close on, every answer closes its connection.
    app.platform.lifecycle.closeConnections();
    const closing = await app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(closing.statusCode, 503);
    assert.equal(closing.headers.connection, 'close');
    const line = logs.lines.find((l) => l.requestId === ready.headers['x-request-id']);
    assert.equal(line?.level, 'warn', 'an expected 503 is a warning, not an error');
    assert.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
  });
});
