/**
 * The database going away and coming back, seen through HTTP: readiness, 503 problems with
 * `Retry-After` instead of 500s carrying driver messages, `statement_timeout`, and a pool that
 * recovers by itself. Also the data layer's observability: query and pool metrics, slow-query log.
 *
 * The outage is this file's own database made unreachable: `ALLOW_CONNECTIONS false` (new
 * connections are refused, even for superusers) and `pg_terminate_backend` on its backends (the
 * pool's open connections die). Other test files, on their own databases, are not affected.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/platform/db/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';
import { createLogger, createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { LogCapture, buildTestApp, testConfig } from '../helpers/app.ts';
import { adminQuery, createTestDatabase } from '../helpers/db.ts';

const OVERRIDES = { DATABASE_STATEMENT_TIMEOUT_MS: '200', DB_SLOW_QUERY_MS: '50' };
/** A bound parameter of the slow query: it must never reach the logs. */
const SECRET_PARAM = 'param-value-7f3c9e-must-not-be-logged';
/** Anything that would betray a driver message, a host or a statement in a public response. */
const LEAKS =
  /postgres|pg_|127\.0\.0\.1|5432|gw_test|canceling|terminat|accepting connections|ECONN|statement|sqlstate/i;

function dbOf(fastify: FastifyInstance): Database {
  const database = fastify.platform.database;
  return database;
}

/** Routes that need the database, mounted under /api/v1. */
const probeApp = defineApp({
  name: 'db-probe',
  description: 'Routes that query the database (db availability tests).',
  routes: async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get('/probe', async () => {
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_class`.execute(dbOf(app).db);
      return { n: rows[0]?.n ?? 0 };
    });
    // Runs past DATABASE_STATEMENT_TIMEOUT_MS (200 ms): the server cancels it.
    app.get('/sleep', async () => {
      await sql`select pg_sleep(2)`.execute(dbOf(app).db);
      return { slept: true };
    });
    // Holds its connection in a statement for 5 s (the timeout lifted for this transaction only).
    app.get('/hold', async () => {
      await dbOf(app)
        .db.transaction()
        .execute(async (trx) => {
          await sql`set local statement_timeout = 0`.execute(trx);
          await sql`select pg_sleep(5) as held`.execute(trx);
        });
      return { held: true };
    });
    // Below the statement timeout but above DB_SLOW_QUERY_MS, with a bound parameter.
    app.get(
      '/slow',
      { schema: { querystring: Type.Object({ marker: Type.String() }) } },
      async (request) => {
        const { rows } = await sql<{
          marker: string;
        }>`select pg_sleep(0.1), ${request.query.marker}::text as marker`.execute(dbOf(app).db);
        return { marker: rows[0]?.marker };
      },
    );
  },
});

interface Ready {
  status: string;
  checks: Record<string, { status: string; latencyMs: number; error?: string }>;
}

interface Reply {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/** A 503 DEPENDENCY_UNAVAILABLE problem with Retry-After, and nothing of the driver in it. */
function assertUnavailable(res: Reply): void {
  assert.equal(res.statusCode, 503, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = JSON.parse(res.body) as { code: string; status: number; detail: string };
  assert.equal(body.code, 'DEPENDENCY_UNAVAILABLE');
  assert.equal(body.status, 503);
  assert.equal(res.headers['retry-after'], '5');
  assert.doesNotMatch(res.body, LEAKS, 'no driver message, host or SQL in the problem');
}

/** Backends of `name` other than our own admin connection. */
const OTHERS = 'datname = $1 and pid <> pg_backend_pid()';

async function terminateBackends(name: string): Promise<number> {
  // The timeout makes pg_terminate_backend wait until each backend is gone (PostgreSQL 14+).
  const { rows } = await adminQuery(
    `select count(*) filter (where pg_terminate_backend(pid, 5000))::int as n from pg_stat_activity where ${OTHERS}`,
    [name],
  );
  return (rows[0] as { n: number }).n;
}

async function backendCount(name: string): Promise<number> {
  const { rows } = await adminQuery(
    `select count(*)::int as n from pg_stat_activity where ${OTHERS}`,
    [name],
  );
  return (rows[0] as { n: number }).n;
}

async function setAllowConnections(name: string, allowed: boolean): Promise<void> {
  await adminQuery(`alter database "${name}" allow_connections ${allowed}`);
}

describe('database availability', async () => {
  const config = testConfig(OVERRIDES);
  const dbLogs = new LogCapture();
  const logger = createLogger({ level: 'info', destination: dbLogs });
  const metrics = createMetricsRegistry();
  const tdb = await createTestDatabase({ config, logger, metrics });
  const { app } = await buildTestApp(OVERRIDES, {
    apps: [probeApp],
    database: tdb.database,
    metrics,
  });
  test.after(async () => {
    await app.close();
    await tdb.drop();
  });

  const get = (url: string) => app.inject({ method: 'GET', url });
  const ready = async () => {
    const res = await get('/health/ready');
    return { statusCode: res.statusCode, body: res.json<Ready>() };
  };

  test('healthy: ready 200 with the database check up; a route that queries it answers', async () => {
    assert.equal(app.platform.database, tdb.database, 'the app uses the pool it was given');
    const r = await ready();
    assert.equal(r.statusCode, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'ok');
    assert.equal(r.body.checks.database?.status, 'up');
    assert.equal(typeof r.body.checks.database?.latencyMs, 'number');
    const probe = await get('/api/v1/probe');
    assert.equal(probe.statusCode, 200, probe.body);
    assert.ok(probe.json<{ n: number }>().n > 0);
  });

  test('a statement that hits statement_timeout is 503 DEPENDENCY_UNAVAILABLE, not 500', async () => {
    const started = Date.now();
    const res = await get('/api/v1/sleep');
    const elapsed = Date.now() - started;
    assertUnavailable(res);
    assert.ok(elapsed < 1_500, `cancelled by the 200 ms statement_timeout (took ${elapsed} ms)`);
    // The cancelled statement does not poison the connection or the pool.
    assert.equal((await get('/api/v1/probe')).statusCode, 200);
  });

  test('Postgres unavailable: readiness 503 and 503 problems; the same pool recovers when it returns', async (t: TestContext) => {
    // Fill the pool with a few open connections first, so the outage kills live ones too.
    await Promise.all([1, 2, 3].map(() => get('/api/v1/probe')));
    assert.ok(tdb.database.pool.totalCount > 0);
    const pool = tdb.database.pool;

    await setAllowConnections(tdb.name, false);
    t.after(() => setAllowConnections(tdb.name, true));
    assert.ok((await terminateBackends(tdb.name)) > 0, 'the pool had backends to terminate');

    const down = await ready();
    assert.equal(down.statusCode, 503, JSON.stringify(down.body));
    assert.equal(down.body.status, 'unavailable');
    assert.equal(down.body.checks.database?.status, 'down');
    const error = down.body.checks.database?.error ?? '';
    assert.equal(error, 'database unavailable');
    assert.doesNotMatch(error, /127\.0\.0\.1|5432|localhost|gw_test/);

    for (let i = 0; i < 3; i++) assertUnavailable(await get('/api/v1/probe'));
    assertUnavailable(await get('/api/v1/sleep'));
    assert.equal(app.platform.database.pool, pool);

    await setAllowConnections(tdb.name, true);
    const up = await ready();
    assert.equal(up.statusCode, 200, JSON.stringify(up.body));
    assert.equal(up.body.checks.database?.status, 'up');
    for (let i = 0; i < 3; i++) assert.equal((await get('/api/v1/probe')).statusCode, 200);
    assert.equal(app.platform.database.pool, pool, 'recovered without a new pool or restart');
    assert.ok(
      dbLogs.lines.some((l) => l.msg === 'idle database connection lost' && l.level === 'warn'),
      'the idle connections lost in the outage were logged, not thrown',
    );
  });

  test('terminated backends: at most the in-flight request fails (503); the next ones succeed', async () => {
    await Promise.all([1, 2, 3].map(() => get('/api/v1/probe')));
    // A request holding a connection in a statement while its backend is terminated.
    const started = Date.now();
    const inflight = get('/api/v1/hold');
    let running = false;
    while (!running && Date.now() - started < 3_000) {
      const { rows } = await adminQuery(
        `select 1 from pg_stat_activity where ${OTHERS} and query like '%pg_sleep(5) as held%' and state = 'active'`,
        [tdb.name],
      );
      running = rows.length > 0;
      if (!running) await sleep(10);
    }
    assert.ok(running, 'the in-flight statement is running');
    assert.ok((await terminateBackends(tdb.name)) > 0);
    const res = await inflight;
    assert.ok(Date.now() - started < 4_000, 'the in-flight request failed at once');
    assertUnavailable(res);

    assert.equal(await backendCount(tdb.name), 0, 'every backend of the pool is gone');
    for (let i = 0; i < 10; i++) {
      const probe = await get('/api/v1/probe');
      assert.equal(probe.statusCode, 200, `request ${i + 1} after the termination: ${probe.body}`);
    }
    assert.equal((await ready()).statusCode, 200);
  });

  test('metrics show query durations and the pool gauges', async () => {
    await get('/api/v1/probe');
    const res = await get('/metrics');
    assert.equal(res.statusCode, 200);
    const value = (series: string): number => {
      const line = res.body.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} in /metrics`);
      return Number(line.slice(series.length + 1));
    };
    assert.match(res.body, /# TYPE db_query_duration_seconds histogram/);
    assert.ok(value('db_query_duration_seconds_count{operation="raw",outcome="ok"}') > 0);
    // The statement_timeout and outage tests above left failed queries.
    assert.ok(value('db_query_duration_seconds_count{operation="raw",outcome="error"}') > 0);
    assert.match(res.body, /db_query_duration_seconds_bucket\{le="0\.005",operation="raw"/);
    const total = value('db_pool_connections_total');
    const idle = value('db_pool_connections_idle');
    const waiting = value('db_pool_requests_waiting');
    assert.ok(total >= 1, `a connection is open (${total})`);
    assert.ok(idle >= 0 && idle <= total, `idle ${idle} of ${total}`);
    assert.equal(waiting, 0);
    // The scrape itself may open a connection after the pool gauges were read (the events
    // backlog gauges query the outbox), so the pool can only have grown since.
    assert.ok(total <= tdb.database.pool.totalCount, `${total} ≤ ${tdb.database.pool.totalCount}`);
  });

  test('a query above DB_SLOW_QUERY_MS is logged with its SQL text, never its parameters', async () => {
    const before = dbLogs.raw.length;
    await get('/api/v1/probe');
    const res = await get(`/api/v1/slow?marker=${SECRET_PARAM}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ marker: string }>().marker, SECRET_PARAM, 'the parameter was bound');

    const lines = dbLogs.lines.slice(before).filter((l) => l.msg === 'slow query');
    assert.equal(lines.length, 1, `only the slow query is logged:\n${dbLogs.text}`);
    const line = lines[0] ?? {};
    assert.equal(line.level, 'warn');
    assert.match(String(line.sql), /select pg_sleep\(0\.1\), \$1::text as marker/);
    assert.ok(Number(line.durationMs) >= 50, `durationMs ${String(line.durationMs)}`);
    assert.ok(!dbLogs.text.includes(SECRET_PARAM), 'the parameter value is not in the logs');
  });
});
