import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { buildApp, enabledModules } from '../../src/app.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { withTransaction } from '../../src/platform/db/index.ts';
import {
  defineEvent,
  defineSubscriber,
  InvalidEventPayloadError,
  purgeEventsJob,
  type DomainEvent,
} from '../../src/platform/events/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import pino from 'pino';
import { defineModule, type Platform } from '../../src/platform/modules/index.ts';
import { createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { eventually } from '../helpers/jobs-harness.ts';

const pinged = defineEvent({
  type: 'evtest.thing.pinged',
  description: 'A thing was pinged (test).',
  payload: Type.Object(
    { n: Type.Integer(), label: Type.String() },
    { additionalProperties: false },
  ),
  example: { n: 1, label: 'one' },
  visibility: { permission: 'evtest:read' },
});

/** What each subscriber was handed: event ids in order, with the attempt. */
const seen = new Map<string, { id: string; attempt: number; at: number; event: DomainEvent }[]>();
const record = (name: string, event: DomainEvent, attempt: number) => {
  const list = seen.get(name) ?? [];
  list.push({ id: event.id, attempt, at: Date.now(), event });
  seen.set(name, list);
};
const handed = (name: string, id: string) => (seen.get(name) ?? []).filter((s) => s.id === id);

/** Fails the first two hand-overs of each event. */
const flakyFailures = new Map<string, number>();

const evtestModule = defineModule({
  name: 'evtest',
  description: 'Events test module.',
  events: [pinged],
  subscribers: [
    defineSubscriber({
      name: 'evtest.recorder',
      events: ['evtest.thing.pinged'],
      handle: async (event, ctx) => {
        record('evtest.recorder', event, ctx.attempt);
        await Promise.resolve();
      },
    }),
    defineSubscriber({
      name: 'evtest.everything',
      events: '*',
      handle: async (event, ctx) => {
        record('evtest.everything', event, ctx.attempt);
        await Promise.resolve();
      },
    }),
    defineSubscriber({
      name: 'evtest.flaky',
      events: ['evtest.thing.pinged'],
      handle: async (event, ctx) => {
        record('evtest.flaky', event, ctx.attempt);
        if ((event.data as { label: string }).label !== 'flaky') return;
        const failures = flakyFailures.get(event.id) ?? 0;
        if (failures < 2) {
          flakyFailures.set(event.id, failures + 1);
          throw new Error('flaky subscriber fails');
        }
        await Promise.resolve();
      },
    }),
    defineSubscriber({
      name: 'evtest.broken',
      events: ['evtest.thing.pinged'],
      handle: async (event) => {
        if ((event.data as { label: string }).label === 'broken')
          throw new Error('broken subscriber always fails');
        await Promise.resolve();
      },
    }),
  ],
});

describe('domain events: outbox and dispatcher', () => {
  let config: Config;
  let tdb: TestDatabase;
  const platforms: Platform[] = [];
  const logs = new LogCapture();

  /** A platform on the test database; `work`: it dispatches. */
  async function platform(work: boolean, registry = createMetricsRegistry()): Promise<Platform> {
    const p = await createPlatform(config, {
      modules: enabledModules(config, [evtestModule]),
      database: tdb.database,
      connect: false,
      redis: null,
      work,
      metrics: registry,
      logDestination: logs,
    });
    platforms.push(p);
    return p;
  }

  async function stop(p: Platform): Promise<void> {
    await p.close();
    platforms.splice(platforms.indexOf(p), 1);
  }

  const publish = (p: Platform, data: { n: number; label: string }) =>
    withTransaction(tdb.database.db, (trx) =>
      p.events.publish(trx, pinged, { data, subject: { type: 'thing', id: String(data.n) } }),
    );

  const deliveryStates = async (id: string) =>
    (
      await tdb.database.pool.query<{ subscriber: string; state: string; attempts: number }>(
        `select subscriber, state, attempts from gw_event_delivery
          where event_id = $1 and subscriber like 'evtest.%' order by subscriber`,
        [id],
      )
    ).rows;

  before(async () => {
    config = testConfig({
      EVENTS_POLL_INTERVAL_MS: '200',
      EVENTS_RETRY_INITIAL_MS: '50',
      EVENTS_RETRY_MAX_MS: '100',
      EVENTS_MAX_ATTEMPTS: '3',
    });
    tdb = await createTestDatabase({ config });
  });
  beforeEach(() => seen.clear());
  after(async () => {
    for (const p of [...platforms].reverse()) await p.close();
    await tdb?.drop();
  });

  test('published in a rolled-back transaction: no event, nothing handed over', async () => {
    const p = await platform(true);
    try {
      await assert.rejects(
        withTransaction(tdb.database.db, async (trx) => {
          await p.events.publish(trx, pinged, { data: { n: 1, label: 'rolled back' } });
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await sleep(600);
      const { rows } = await tdb.database.pool.query('select id from gw_event');
      assert.equal(rows.length, 0);
      assert.equal(seen.size, 0);
    } finally {
      await stop(p);
    }
  });

  test('a payload that does not match its schema throws and writes nothing', async () => {
    const p = await platform(false);
    try {
      await assert.rejects(
        withTransaction(tdb.database.db, (trx) =>
          p.events.publish(trx, pinged, { data: { n: 1.5, label: 'x' } }),
        ),
        (error: unknown) => error instanceof InvalidEventPayloadError && /\/n/.test(error.message),
      );
      const { rows } = await tdb.database.pool.query('select id from gw_event');
      assert.equal(rows.length, 0);
    } finally {
      await stop(p);
    }
  });

  test('committed: each subscriber gets the event once, with its envelope; the hand-overs are recorded done', async () => {
    const p = await platform(true);
    try {
      const { id } = await withTransaction(tdb.database.db, (trx) =>
        p.events.publish(trx, pinged, {
          data: { n: 2, label: 'two' },
          subject: { type: 'thing', id: '2' },
          actorId: 'actor-1',
          ownerId: 'owner-1',
          requestId: 'req-1',
        }),
      );
      await eventually('every subscriber handed the event', async () => {
        const states = await deliveryStates(id);
        return states.length === 4 && states.every((s) => s.state === 'done');
      });
      for (const name of ['evtest.recorder', 'evtest.everything', 'evtest.flaky']) {
        assert.equal(handed(name, id).length, 1, name);
      }
      const event = handed('evtest.recorder', id)[0]?.event;
      assert.ok(event);
      assert.equal(event.type, 'evtest.thing.pinged');
      assert.equal(event.version, 1);
      assert.deepEqual(event.subject, { type: 'thing', id: '2' });
      assert.equal(event.actorId, 'actor-1');
      assert.equal(event.ownerId, 'owner-1');
      assert.equal(event.requestId, 'req-1');
      assert.deepEqual(event.data, { n: 2, label: 'two' });
      assert.ok(event.occurredAt instanceof Date);
      await sleep(500);
      assert.equal(handed('evtest.recorder', id).length, 1, 'not handed over again');
    } finally {
      await stop(p);
    }
  });

  test('two dispatchers on one database: still once per subscriber', async () => {
    const a = await platform(true);
    const b = await platform(true);
    try {
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          for (let i = 0; i < 20; i++) {
            const { id } = await publish(k % 2 === 0 ? a : b, { n: k * 100 + i, label: 'many' });
            ids.push(id);
          }
        }),
      );
      await eventually(
        'all 200 events handed to the recorder',
        async () => new Set((seen.get('evtest.recorder') ?? []).map((s) => s.id)).size === 200,
        30_000,
      );
      await eventually(
        'all 200 events handed to the catch-all',
        async () => new Set((seen.get('evtest.everything') ?? []).map((s) => s.id)).size === 200,
        30_000,
      );
      await sleep(500);
      for (const name of ['evtest.recorder', 'evtest.everything']) {
        const list = seen.get(name) ?? [];
        assert.equal(list.length, 200, `${name}: no event handed over twice`);
      }
      const { rows } = await tdb.database.pool.query<{ n: number }>(
        `select count(*)::int as n from gw_event_delivery where state <> 'done'
            and event_id = any($1::uuid[]) and subscriber like 'evtest.%'`,
        [ids],
      );
      assert.equal(rows[0]?.n, 0);
    } finally {
      await stop(a);
      await stop(b);
    }
  });

  test('a failing subscriber is retried with backoff, the others are not held up; past the maximum it is recorded failed, logged and counted', async () => {
    const p = await platform(true);
    try {
      const { id: flaky } = await publish(p, { n: 3, label: 'flaky' });
      const { id: broken } = await publish(p, { n: 4, label: 'broken' });
      await eventually('the flaky subscriber succeeded on its third attempt', async () => {
        const states = await deliveryStates(flaky);
        return states.find((s) => s.subscriber === 'evtest.flaky' && s.state === 'done');
      });
      const attempts = handed('evtest.flaky', flaky);
      assert.deepEqual(
        attempts.map((a) => a.attempt),
        [1, 2, 3],
      );
      const recorder = handed('evtest.recorder', flaky)[0];
      assert.ok(recorder && recorder.at <= (attempts[2]?.at ?? 0), 'others not held up');
      assert.equal(handed('evtest.recorder', flaky).length, 1);

      const failed = await eventually('the broken subscriber recorded failed', async () => {
        const states = await deliveryStates(broken);
        return states.find((s) => s.subscriber === 'evtest.broken' && s.state === 'failed');
      });
      assert.equal(failed.attempts, 3);
      const { rows } = await tdb.database.pool.query<{ last_error: string }>(
        `select last_error from gw_event_delivery where event_id = $1 and subscriber = 'evtest.broken'`,
        [broken],
      );
      assert.match(rows[0]?.last_error ?? '', /broken subscriber always fails/);
      assert.ok(
        logs.lines.some(
          (l) =>
            l.level === 'error' &&
            l.subscriber === 'evtest.broken' &&
            l.eventId === broken &&
            /last attempt/.test(String(l.msg)),
        ),
        'an error line names the event and the subscriber',
      );
      const text = await p.metrics.metrics();
      assert.match(
        text,
        /events_dispatched_total\{subscriber="evtest.broken",outcome="failed"\} 1/,
      );
      assert.match(
        text,
        /events_dispatched_total\{subscriber="evtest.flaky",outcome="retried"\} 2/,
      );
    } finally {
      await stop(p);
    }
  });

  test('published while no dispatcher runs (a crash between commit and dispatch): a fresh dispatcher delivers it once', async () => {
    const publisher = await platform(false);
    const { id } = await publish(publisher, { n: 5, label: 'while down' });
    await sleep(300);
    assert.equal(handed('evtest.recorder', id).length, 0);
    // The backlog shows on any process's /metrics while no dispatcher runs.
    const scraped = await publisher.metrics.metrics();
    assert.match(scraped, /events_backlog\{stage="undispatched"\} 1/);
    const oldest = Number(/^events_oldest_waiting_seconds (\S+)$/m.exec(scraped)?.[1]);
    assert.ok(oldest > 0, `oldest waiting ${oldest} s`);
    const dispatcher = await platform(true);
    try {
      await eventually('handed over after the restart', async () =>
        handed('evtest.recorder', id).length === 1 ? true : undefined,
      );
      await sleep(500);
      assert.equal(handed('evtest.recorder', id).length, 1);
    } finally {
      await stop(dispatcher);
      await stop(publisher);
    }
  });

  test('a hand-over claimed by a process that died (its lease expired) is handed over again', async () => {
    const publisher = await platform(false);
    const { id } = await publish(publisher, { n: 6, label: 'claimed then crashed' });
    // What a dispatcher that fanned the event out, claimed it and was killed leaves behind.
    await tdb.database.pool.query(`update gw_event set dispatched_at = now() where id = $1`, [id]);
    await tdb.database.pool.query(
      `insert into gw_event_delivery (event_id, subscriber, attempts, due_at)
       values ($1, 'evtest.recorder', 1, now() - interval '1 second')`,
      [id],
    );
    const dispatcher = await platform(true);
    try {
      await eventually('handed over again', async () =>
        handed('evtest.recorder', id).length === 1 ? true : undefined,
      );
      assert.equal(handed('evtest.recorder', id)[0]?.attempt, 2);
      // The other subscribers had no row: the event was already fanned out, they never get it.
      assert.equal(handed('evtest.everything', id).length, 0);
    } finally {
      await stop(dispatcher);
      await stop(publisher);
    }
  });

  test('a hand-over whose last attempt died with its process is recorded failed, not retried forever', async () => {
    const publisher = await platform(false);
    const { id } = await publish(publisher, { n: 8, label: 'last attempt crashed' });
    await tdb.database.pool.query(`update gw_event set dispatched_at = now() where id = $1`, [id]);
    // EVENTS_MAX_ATTEMPTS is 3 here: the third claim's lease expired.
    await tdb.database.pool.query(
      `insert into gw_event_delivery (event_id, subscriber, attempts, due_at)
       values ($1, 'evtest.recorder', 3, now() - interval '1 second')`,
      [id],
    );
    const dispatcher = await platform(true);
    try {
      const failed = await eventually('recorded failed', async () => {
        const states = await deliveryStates(id);
        return states.find((s) => s.state === 'failed');
      });
      assert.equal(failed.attempts, 3);
      assert.equal(handed('evtest.recorder', id).length, 0);
      assert.ok(
        logs.lines.some(
          (l) => l.level === 'error' && l.eventId === id && /abandoned/.test(String(l.msg)),
        ),
      );
    } finally {
      await stop(dispatcher);
      await stop(publisher);
    }
  });

  test('metrics on /metrics: published by type, dispatched by subscriber and outcome, dispatch lag', async () => {
    const registry = createMetricsRegistry();
    const p = await platform(true, registry);
    const app = await buildApp(config, { platform: p, apps: [evtestModule] });
    try {
      await app.ready();
      const { id } = await publish(p, { n: 7, label: 'metrics' });
      await eventually('handed over', async () =>
        handed('evtest.recorder', id).length === 1 ? true : undefined,
      );
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /events_published_total\{type="evtest.thing.pinged"\} 1/);
      assert.match(
        res.body,
        /events_dispatched_total\{subscriber="evtest.recorder",outcome="delivered"\} 1/,
      );
      assert.match(
        res.body,
        /event_dispatch_lag_seconds_bucket\{le="1",subscriber="evtest.recorder"\} 1/,
      );
    } finally {
      await app.close();
      await stop(p);
    }
  });

  test('the purge deletes events older than the retention with their hand-over records, keeping those a subscriber still waits for', async () => {
    const p = await platform(false);
    try {
      const old = await publish(p, { n: 20, label: 'old, done' });
      const waiting = await publish(p, { n: 21, label: 'old, pending' });
      const recent = await publish(p, { n: 22, label: 'recent' });
      await tdb.database.pool.query(
        `update gw_event set occurred_at = now() - interval '31 days', dispatched_at = now()
          where id = any($1::uuid[])`,
        [[old.id, waiting.id]],
      );
      await tdb.database.pool.query(
        `insert into gw_event_delivery (event_id, subscriber, state)
         values ($1, 'evtest.recorder', 'done'), ($2, 'evtest.recorder', 'pending')`,
        [old.id, waiting.id],
      );
      const ctx = {
        db: tdb.database.db,
        signal: new AbortController().signal,
        log: pino({ level: 'silent' }),
      } as unknown as JobContext;
      const result = await purgeEventsJob(30).handler({}, ctx);
      assert.deepEqual(result, { deleted: 1 });
      const { rows } = await tdb.database.pool.query<{ id: string }>(
        'select id from gw_event where id = any($1::uuid[]) order by id',
        [[old.id, waiting.id, recent.id]],
      );
      assert.deepEqual(
        rows.map((r) => r.id),
        [waiting.id, recent.id].sort(),
      );
      const { rows: deliveries } = await tdb.database.pool.query(
        'select 1 from gw_event_delivery where event_id = $1',
        [old.id],
      );
      assert.equal(deliveries.length, 0, 'its hand-over records went with it');
    } finally {
      await stop(p);
    }
  });

  test('latency: commit to first hand-over for a stream of events (figure in the diagnostics; bound loose for a saturated machine)', async (t) => {
    const p = await platform(true);
    try {
      const lags: number[] = [];
      const published = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const { id } = await publish(p, { n: 10_000 + i, label: 'latency' });
        published.set(id, Date.now());
        if (i % 10 === 0) await sleep(5);
      }
      await eventually(
        'all handed over',
        async () =>
          [...published.keys()].every((id) => handed('evtest.recorder', id).length === 1) ||
          undefined,
        30_000,
      );
      for (const [id, at] of published) lags.push((handed('evtest.recorder', id)[0]?.at ?? 0) - at);
      lags.sort((x, y) => x - y);
      const p50 = lags[Math.floor(lags.length * 0.5)] ?? 0;
      const p99 = lags[Math.floor(lags.length * 0.99)] ?? 0;
      t.diagnostic(`commit to hand-over over 300 events: p50 ${p50} ms, p99 ${p99} ms`);
      // The target is 1 s (measured well under it: docs/events.md); the test's bound leaves room
      // for the event-loop stalls of a saturated shared machine and still catches a dispatcher
      // that falls seconds behind a stream of 300 events.
      assert.ok(p99 < 5_000, `p99 ${p99} ms`);
    } finally {
      await stop(p);
    }
  });
});
