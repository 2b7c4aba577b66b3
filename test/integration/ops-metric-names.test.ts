/**
 * Every metric an alert, a recording rule or a dashboard names (deploy/prometheus,
 * deploy/grafana) is one the server exports: the app is booted as `main.ts` boots an `all` process
 * (every app module, the job workers, the event dispatcher, Redis (skipped when none answers),
 * the log metrics), the webhooks runtime (made at first use) is made, and the registry's names are
 * read, metrics with no sample yet included. Histogram series (`_bucket`, `_sum`, `_count`) and
 * recording-rule outputs count as known.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { buildApp, enabledModules } from '../../src/app.ts';
import { allApps } from '../../src/apps/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import {
  createLogger,
  createMetricsRegistry,
  registerLogMetrics,
} from '../../src/platform/observability/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { webhooksRuntime } from '../../src/platform/webhooks/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  dashboardQueries,
  exportedSeriesNames,
  ruleQueries,
  unknownNames,
} from '../helpers/metric-names.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

// With Redis, as deployed: the Redis circuit metrics exist only on a process that has it.
describe('operations artefacts name only metrics the server exports', await needsRedis(), () => {
  let tdb: TestDatabase;
  let platform: Platform;
  let app: FastifyInstance;
  let metrics: Registry;
  let known: Set<string>;

  before(async () => {
    const config = testConfig({
      APPS: 'all',
      PUBLIC_URL: 'https://app.example.test',
      MAIL_FROM: 'Groundwork <no-reply@example.test>',
      REDIS_URL: TEST_REDIS_URL,
    });
    const logs = new LogCapture();
    const logger = createLogger({ level: 'warn', destination: logs });
    metrics = createMetricsRegistry();
    // As main.ts does for every process.
    registerLogMetrics(logger, metrics);
    tdb = await createTestDatabase({ config, metrics, migrations: allMigrations(allApps) });
    platform = await createPlatform(config, {
      logger,
      metrics,
      modules: enabledModules(config, allApps),
      database: tdb.database,
      work: true,
    });
    app = await buildApp(config, { platform, apps: allApps });
    await app.ready();
    // Metrics made at first use: the webhooks runtime (its deliveries), a request (HTTP series).
    webhooksRuntime(platform);
    const res = await app.inject({ url: '/health/ready' });
    assert.equal(res.statusCode, 200, res.body);
    known = await exportedSeriesNames(metrics);
  });

  after(async () => {
    await app?.close();
    await platform?.close();
    await tdb?.drop();
  });

  test('the booted app exports the platform and app metrics (the check is not vacuous)', () => {
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'jobs_total',
      'queue_oldest_age_seconds',
      'mail_messages_total',
      'webhook_endpoints_disabled_total',
      'audit_events_dropped_total',
      'ratelimit_store_errors_total',
      'db_pool_connections_max',
      'health_ready',
      'disk_free_bytes',
      'realtime_connections',
      'publishing_posts_due',
      'log_lines_dropped_total',
      'redis_circuit_state',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      assert.ok(known.has(name), `${name} is not exported`);
  });

  test('every metric an alert or a recording rule names is exported', () => {
    const queries = ruleQueries();
    assert.ok(queries.length > 40);
    assert.deepEqual(unknownNames(queries, known), []);
  });

  test('every metric a dashboard names is exported', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length > 80);
    assert.deepEqual(unknownNames(queries, known), []);
  });

  test('a name the server does not export is reported', () => {
    assert.deepEqual(
      unknownNames(
        [{ where: 'made up', expr: 'sum(rate(mail_failures_total[5m])) > 0 and up == 0' }],
        known,
      ),
      [{ where: 'made up', name: 'mail_failures_total' }],
    );
  });

  test('the readiness and pool gauges carry values at scrape time', async () => {
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /^health_ready 1$/m);
    assert.match(res.body, /^health_check_up\{check="database"\} 1$/m);
    assert.match(res.body, /^health_check_up\{check="queue"\} 1$/m);
    assert.match(res.body, /^health_check_up\{check="redis"\} 1$/m);
    assert.match(res.body, /^db_pool_connections_max 10$/m);
    assert.match(res.body, /^http_request_duration_seconds_bucket\{le="2",/m);
  });
});
