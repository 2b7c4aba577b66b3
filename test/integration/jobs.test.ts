import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import {
  DEAD_SUFFIX,
  InvalidJobPayloadError,
  defineJob,
  type JobContext,
} from '../../src/platform/jobs/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';
import { bearer, createUser, signIn, signInAdmin } from '../helpers/identity.ts';
import { eventually, startJobsHarness, type JobsHarness } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';

const echo = defineJob({
  name: 'test.echo',
  payload: Type.Object({ value: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
  handler: async (payload, ctx) => {
    ctx.log.info({ value: payload.value }, 'echo handled');
    return { echoed: payload.value, attempt: ctx.attempt };
  },
  options: { concurrency: 4 },
});

let failing = true;
const flaky = defineJob({
  name: 'test.flaky',
  payload: Type.Object({ n: Type.Integer() }),
  handler: async () => {
    if (failing) throw new Error('boom: the dependency said no');
    return { ok: true };
  },
  options: { retries: 1, backoff: { initialSeconds: 1, maxSeconds: 1 } },
});

const aborted: string[] = [];
const hangs = defineJob({
  name: 'test.hangs',
  payload: Type.Object({}),
  handler: (_payload, ctx: JobContext) =>
    new Promise<never>(() => {
      ctx.signal.addEventListener('abort', () => aborted.push(ctx.id), { once: true });
    }),
  options: { timeoutSeconds: 1, retries: 0 },
});

let gate: { open: () => void; opened: Promise<void> } | null = null;
function newGate() {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  gate = { open, opened };
}
const deduped = defineJob({
  name: 'test.deduped',
  payload: Type.Object({ key: Type.String() }),
  handler: async () => {
    await gate?.opened;
    return {};
  },
  options: { singletonKey: (p) => p.key },
});

const ranAt = new Map<string, number>();
const delayed = defineJob({
  name: 'test.delayed',
  payload: Type.Object({ tag: Type.String() }),
  handler: async (p) => {
    ranAt.set(p.tag, Date.now());
    return {};
  },
});

let inFlight = 0;
let maxInFlight = 0;
const parallel = defineJob({
  name: 'test.parallel',
  payload: Type.Object({ i: Type.Integer() }),
  handler: async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(300);
    inFlight--;
    return {};
  },
  options: { concurrency: 3 },
});

let cronRuns = 0;
const ticker = defineJob({
  name: 'test.ticker',
  payload: Type.Object({ source: Type.Literal('cron') }),
  handler: async (p) => {
    if (p.source === 'cron') cronRuns++;
    return {};
  },
  options: { cron: { expression: '* * * * * *', payload: { source: 'cron' } } },
});

/** A route that enqueues an echo job for the calling user, like an app would. */
const fixture = defineApp({
  name: 'jobs-fixture',
  description: 'Enqueues test jobs',
  routes: async (app) => {
    app.post('/fixture/echo', async (request, reply) => {
      const jobs = app.platform.jobs;
      const { id } = await jobs.send(echo, request.body as { value: string }, {
        userId: request.userId ?? null,
        requestId: request.id,
      });
      reply.code(202);
      return { jobId: id };
    });
  },
});

describe('jobs', () => {
  let h: JobsHarness;
  /** A signed-in administrator (role `admin`, session with MFA): holds `jobs:admin`. */
  let admin: Record<string, string>;
  before(async () => {
    h = await startJobsHarness([echo, flaky, hangs, deduped, delayed, parallel, ticker], {
      apps: [fixture],
    });
    admin = (await signInAdmin(h.app, h)).headers;
  });
  after(() => h.close());

  const completed = (queue: string, id: string) =>
    eventually(`${queue} ${id} completed`, async () => {
      const row = (await h.rows(queue)).find((r) => r.id === id);
      return row?.state === 'completed' ? row : undefined;
    });

  test('a job enqueued inside a transaction exists only if the transaction commits', async () => {
    const db = h.tdb.database.db;
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await h.jobs.send(echo, { value: 'rolled back' }, { trx });
        throw new Error('business write failed');
      }),
      /business write failed/,
    );
    const committed = await db
      .transaction()
      .execute((trx) => h.jobs.send(echo, { value: 'committed' }, { trx }));
    assert.equal(committed.created, true);
    await completed('test.echo', committed.id);
    const rows = await h.tdb.database.pool.query(
      `select data->'payload'->>'value' as value from pgboss.job where name = 'test.echo'`,
    );
    const values = rows.rows.map((r: { value: string }) => r.value);
    assert.ok(values.includes('committed'));
    assert.ok(!values.includes('rolled back'), 'the rolled-back job must not exist');
  });

  test('a payload that fails its schema is rejected at enqueue and never stored', async () => {
    const before = (await h.rows('test.echo')).length;
    for (const bad of [
      { value: 42 },
      {},
      { value: 'x'.repeat(101) },
      { value: 'ok', extra: true },
      null,
    ]) {
      await assert.rejects(
        h.jobs.send(echo, bad as never),
        (error: unknown) => error instanceof InvalidJobPayloadError && error.errors.length > 0,
      );
    }
    assert.equal((await h.rows('test.echo')).length, before);
  });

  test('sendMany enqueues a batch in one statement, or nothing when one payload is bad', async () => {
    const before = (await h.rows('test.echo')).length;
    await assert.rejects(
      h.jobs.sendMany(echo, [{ value: 'a' }, { value: 7 } as never]),
      InvalidJobPayloadError,
    );
    assert.equal((await h.rows('test.echo')).length, before);
    const created = await h.jobs.sendMany(echo, [
      { value: 'b1' },
      { value: 'b2' },
      { value: 'b3' },
    ]);
    assert.equal(created, 3);
    await eventually('batch completed', async () => {
      const rows = await h.rows('test.echo');
      return rows.length === before + 3 && rows.every((r) => r.state === 'completed');
    });
  });

  test('the triggering user sees the job status and result; others and unknown ids get 404', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/fixture/echo',
      headers: { 'x-test-user': 'user-1' },
      payload: { value: 'hello' },
    });
    assert.equal(res.statusCode, 202, res.body);
    const { jobId } = res.json<{ jobId: string }>();
    const requestId = res.headers['x-request-id'];

    const status = await eventually('completed status', async () => {
      const r = await h.app.inject({
        url: `/api/v1/jobs/${jobId}`,
        headers: { 'x-test-user': 'user-1' },
      });
      assert.equal(r.statusCode, 200, r.body);
      const body = r.json<{ state: string }>();
      return body.state === 'completed' ? body : undefined;
    });
    assert.deepEqual(
      {
        ...status,
        createdAt: undefined,
        startAfter: undefined,
        startedAt: undefined,
        completedAt: undefined,
      },
      {
        id: jobId,
        queue: 'test.echo',
        state: 'completed',
        attempts: 1,
        maxAttempts: 4,
        createdAt: undefined,
        startAfter: undefined,
        startedAt: undefined,
        completedAt: undefined,
        result: { echoed: 'hello', attempt: 1 },
      },
    );

    // The handler's log lines carry the job id and the request id of the request that enqueued it.
    const lines = h.logs.lines.filter((l) => l.jobId === jobId);
    assert.ok(lines.some((l) => l.msg === 'echo handled' && l.requestId === requestId));
    assert.ok(lines.some((l) => l.msg === 'job completed' && l.requestId === requestId));

    for (const [user, id] of [
      ['user-2', jobId],
      ['user-1', randomUUID()],
      ['user-1', 'not-a-uuid'],
      ['user-1', '1; drop table pgboss.job'],
    ] as const) {
      const r = await h.app.inject({
        url: `/api/v1/jobs/${encodeURIComponent(id)}`,
        headers: { 'x-test-user': user },
      });
      assertProblem(r, 404, 'JOB_NOT_FOUND');
    }
    assertProblem(await h.app.inject({ url: `/api/v1/jobs/${jobId}` }), 401, 'UNAUTHORIZED');
  });

  test('a handler that always throws is retried, then dead-lettered, while other jobs keep flowing', async () => {
    failing = true;
    const { id } = await h.jobs.send(flaky, { n: 1 }, { userId: 'user-1' });
    const echoes = await Promise.all(
      [1, 2, 3].map((i) => h.jobs.send(echo, { value: `flowing ${i}` })),
    );
    for (const e of echoes) await completed('test.echo', e.id);

    const failed = await eventually('flaky failed for good', async () => {
      const row = (await h.rows('test.flaky')).find((r) => r.id === id);
      return row?.state === 'failed' ? row : undefined;
    });
    assert.equal(failed.retry_count, 1);

    const dead = await eventually('dead letter', async () => {
      const res = await h.app.inject({
        url: '/api/v1/admin/queues/test.flaky/dead',
        headers: admin,
      });
      assert.equal(res.statusCode, 200, res.body);
      const page = res.json<{
        items: { id: string; originalId: string; error: { message: string } }[];
      }>();
      return page.items.find((d) => d.originalId === id);
    });
    assert.match(dead.error.message, /boom/);

    const one = await h.app.inject({
      url: `/api/v1/admin/queues/test.flaky/dead/${dead.id}`,
      headers: admin,
    });
    assert.equal(one.statusCode, 200);
    const detail = one.json<{
      payload: unknown;
      attempts: number;
      userId: string;
      error: { stack: string };
    }>();
    assert.deepEqual(detail.payload, { n: 1 });
    assert.equal(detail.attempts, 2);
    assert.equal(detail.userId, 'user-1');
    assert.match(detail.error.stack, /boom/);

    // The owner sees a failed job with the message only.
    const status = await h.app.inject({
      url: `/api/v1/jobs/${id}`,
      headers: { 'x-test-user': 'user-1' },
    });
    assert.equal(status.json<{ state: string }>().state, 'failed');
    assert.deepEqual(status.json<{ error: unknown }>().error, {
      message: 'boom: the dependency said no',
    });

    const queues = await h.app.inject({ url: '/api/v1/admin/queues', headers: admin });
    const flakyCounts = queues
      .json<{ items: { queue: string; dead: number; failed: number }[] }>()
      .items.find((q) => q.queue === 'test.flaky');
    assert.ok(flakyCounts && flakyCounts.dead >= 1 && flakyCounts.failed >= 1);

    // Replay once the dependency is back: a new job, fresh attempts, and the dead letter is gone.
    failing = false;
    const replay = await h.app.inject({
      method: 'POST',
      url: `/api/v1/admin/queues/test.flaky/dead/${dead.id}/replay`,
      headers: admin,
    });
    assert.equal(replay.statusCode, 202, replay.body);
    const { jobId } = replay.json<{ jobId: string }>();
    assert.notEqual(jobId, id);
    await completed('test.flaky', jobId);
    assertProblem(
      await h.app.inject({
        url: `/api/v1/admin/queues/test.flaky/dead/${dead.id}`,
        headers: admin,
      }),
      404,
      'DEAD_JOB_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: `/api/v1/admin/queues/test.flaky/dead/${dead.id}/replay`,
        headers: admin,
      }),
      404,
      'DEAD_JOB_NOT_FOUND',
    );
  });

  test('deleting a dead letter removes it', async () => {
    failing = true;
    const { id } = await h.jobs.send(flaky, { n: 2 });
    const dead = await eventually('second dead letter', async () => {
      const res = await h.app.inject({
        url: '/api/v1/admin/queues/test.flaky/dead?limit=100',
        headers: admin,
      });
      return res
        .json<{ items: { id: string; originalId: string }[] }>()
        .items.find((d) => d.originalId === id);
    });
    const url = `/api/v1/admin/queues/test.flaky/dead/${dead.id}`;
    const res = await h.app.inject({ method: 'DELETE', url, headers: admin });
    assert.equal(res.statusCode, 204);
    assertProblem(
      await h.app.inject({ method: 'DELETE', url, headers: admin }),
      404,
      'DEAD_JOB_NOT_FOUND',
    );
    failing = false;
  });

  test('the admin API refuses anonymous callers, bad tokens, users without jobs:admin, unknown queues and bad input', async () => {
    const anonymous = await h.app.inject({ url: '/api/v1/admin/queues' });
    assertProblem(anonymous, 401, 'UNAUTHORIZED');
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer/);
    for (const authorization of ['Bearer wrong', 'not-a-bearer-header']) {
      const res = await h.app.inject({ url: '/api/v1/admin/queues', headers: { authorization } });
      assertProblem(res, 401, 'INVALID_ACCESS_TOKEN');
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
    // Signed in, but without the permission.
    const plain = await signIn(h.app, await createUser(h));
    assertProblem(
      await h.app.inject({ url: '/api/v1/admin/queues', headers: bearer(plain.accessToken) }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await h.app.inject({ url: '/api/v1/admin/queues/nope/dead', headers: admin }),
      404,
      'QUEUE_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        url: `/api/v1/admin/queues/test.flaky${DEAD_SUFFIX}/dead`,
        headers: admin,
      }),
      404,
      'QUEUE_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({
        url: '/api/v1/admin/queues/test.flaky/dead/not-a-uuid',
        headers: admin,
      }),
      404,
      'DEAD_JOB_NOT_FOUND',
    );
    assertProblem(
      await h.app.inject({ url: '/api/v1/admin/queues/test.flaky/dead?limit=0', headers: admin }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await h.app.inject({
        url: '/api/v1/admin/queues/test.flaky/dead?cursor=abc.def',
        headers: admin,
      }),
      400,
      'INVALID_CURSOR',
    );
  });

  test('dead letters page with a signed cursor', async () => {
    failing = true;
    const ids = await Promise.all(
      [10, 11, 12].map(async (n) => (await h.jobs.send(flaky, { n })).id),
    );
    await eventually(
      'three dead letters',
      async () => {
        const res = await h.app.inject({
          url: '/api/v1/admin/queues/test.flaky/dead?limit=100',
          headers: admin,
        });
        const items = res.json<{ items: { originalId: string }[] }>().items;
        return ids.every((id) => items.some((d) => d.originalId === id));
      },
      30_000,
    );
    failing = false;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await h.app.inject({
        url: `/api/v1/admin/queues/test.flaky/dead?limit=1${q}`,
        headers: admin,
      });
      assert.equal(res.statusCode, 200, res.body);
      const page = res.json<{ items: { id: string }[]; page: { nextCursor: string | null } }>();
      seen.push(...page.items.map((i) => i.id));
      cursor = page.page.nextCursor;
    } while (cursor);
    assert.ok(seen.length >= 3);
    assert.equal(new Set(seen).size, seen.length, 'no dead letter twice');
    // A cursor of another queue's listing is refused.
    const other = await h.app.inject({
      url: `/api/v1/admin/queues/test.echo/dead?cursor=${encodeURIComponent(cursor ?? 'x.y')}`,
      headers: admin,
    });
    assertProblem(other, 400, 'INVALID_CURSOR');
  });

  test('a handler that hangs past its timeout is failed, its signal aborted, and dead-lettered', async () => {
    const { id } = await h.jobs.send(hangs, {});
    const row = await eventually('timed-out job failed', async () => {
      const r = (await h.rows('test.hangs')).find((x) => x.id === id);
      return r?.state === 'failed' ? r : undefined;
    });
    assert.match(JSON.stringify(row.output), /timed out after 1s/);
    assert.ok(aborted.includes(id), 'the handler signal was aborted');
    // Other work still flows after the hang.
    const e = await h.jobs.send(echo, { value: 'after the hang' });
    await completed('test.echo', e.id);
  });

  test('a singleton key deduplicates a repeated trigger while the first job waits', async () => {
    newGate();
    // Holds the worker on a first job, so the next two with one key wait in the queue.
    const first = await h.jobs.send(deduped, { key: 'holder' });
    await eventually('holder active', async () =>
      (await h.rows('test.deduped')).find((r) => r.id === first.id && r.state === 'active'),
    );
    const a = await h.jobs.send(deduped, { key: 'spot-42' });
    const b = await h.jobs.send(deduped, { key: 'spot-42' });
    const c = await h.jobs.send(deduped, { key: 'spot-43' });
    assert.equal(a.created, true);
    assert.deepEqual(b, { id: a.id, created: false });
    assert.equal(c.created, true);
    assert.notEqual(c.id, a.id);
    gate?.open();
    await completed('test.deduped', a.id);
    // Once the first is done, the same key makes a new job.
    const d = await h.jobs.send(deduped, { key: 'spot-42' });
    assert.equal(d.created, true);
    await completed('test.deduped', d.id);
  });

  test('a delayed job does not start before its time', async () => {
    const enqueued = Date.now();
    const { id } = await h.jobs.send(delayed, { tag: 'later' }, { startAfter: 2 });
    await sleep(1_000);
    assert.equal(ranAt.has('later'), false, 'ran too early');
    await completed('test.delayed', id);
    assert.ok((ranAt.get('later') ?? 0) - enqueued >= 1_900);
  });

  test('concurrency bounds the jobs of a queue running at once in a process', async () => {
    const sent = await Promise.all(
      Array.from({ length: 9 }, (_, i) => h.jobs.send(parallel, { i })),
    );
    for (const s of sent) await completed('test.parallel', s.id);
    assert.equal(maxInFlight, 3);
  });

  test('a cron schedule creates jobs on its own', async () => {
    await eventually('cron runs', async () => cronRuns >= 1, 20_000);
    const schedules = await h.tdb.database.pool.query(
      `select name, cron from pgboss.schedule where name = 'test.ticker'`,
    );
    assert.equal(schedules.rowCount, 1);
  });

  test('metrics and readiness cover the queue', async () => {
    const ready = await h.app.inject({ url: '/health/ready' });
    assert.equal(ready.statusCode, 200);
    assert.equal(ready.json<{ checks: { queue: { status: string } } }>().checks.queue.status, 'up');

    await h.jobs.send(delayed, { tag: 'waiting' }, { startAfter: 3_600 });
    const text = (await h.app.inject({ url: '/metrics' })).body;
    assert.match(text, /^jobs_total\{queue="test.echo",outcome="completed"\} \d+/m);
    assert.match(text, /^jobs_total\{queue="test.flaky",outcome="dead"\} \d+/m);
    assert.match(text, /^jobs_total\{queue="test.flaky",outcome="retried"\} \d+/m);
    assert.match(text, /^job_duration_seconds_count\{queue="test.echo"\} \d+/m);
    assert.match(text, /^queue_depth\{queue="test.delayed",state="queued"\} [1-9]/m);
    assert.match(text, /^queue_depth\{queue="test.flaky",state="dead"\} \d+/m);
    assert.match(text, /^queue_oldest_age_seconds\{queue="test.echo"\} [\d.]+/m);
  });
});

describe('jobs: priority', () => {
  const order: number[] = [];
  const prioritized = defineJob({
    name: 'test.prioritized',
    payload: Type.Object({ p: Type.Integer() }),
    handler: async (payload) => {
      order.push(payload.p);
      return {};
    },
  });

  test('higher priority jobs run first among due jobs', async () => {
    const h = await startJobsHarness([prioritized], { work: false });
    try {
      for (const p of [0, 5, 1, 10]) await h.jobs.send(prioritized, { p }, { priority: p });
      await h.jobs.startWorkers();
      await eventually('all four ran', async () => order.length === 4);
      assert.deepEqual(order, [10, 5, 1, 0]);
    } finally {
      await h.close();
    }
  });

  test('the queue readiness check fails once the queue is stopped', async () => {
    const h = await startJobsHarness([prioritized], { work: false });
    try {
      await h.jobs.stop(1_000);
      const res = await h.app.inject({ url: '/health/ready' });
      assert.equal(res.statusCode, 503);
      assert.equal(
        res.json<{ checks: { queue: { status: string } } }>().checks.queue.status,
        'down',
      );
      await assert.rejects(h.jobs.send(prioritized, { p: 1 }));
    } finally {
      await h.close();
    }
  });
});

describe('jobs: admin API under the rate limit', () => {
  test('anonymous calls to the admin API count against the anonymous API limit', async () => {
    const h = await startJobsHarness([], {
      work: false,
      overrides: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANONYMOUS_PER_MIN: '3' },
    });
    try {
      const guess = () =>
        h.app.inject({ url: '/api/v1/admin/queues', remoteAddress: '203.0.113.66' });
      for (let i = 0; i < 3; i++) assertProblem(await guess(), 401, 'UNAUTHORIZED');
      assertProblem(await guess(), 429, 'RATE_LIMITED');
      // Without a token a bad query is still 401, not a validation answer.
      assertProblem(
        await h.app.inject({
          url: '/api/v1/admin/queues/x/dead?limit=0',
          remoteAddress: '203.0.113.67',
        }),
        401,
        'UNAUTHORIZED',
      );
    } finally {
      await h.close();
    }
  });
});
