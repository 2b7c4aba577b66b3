import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Type } from 'typebox';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';
import { purgeIdempotencyKeys } from '../../src/platform/traffic/index.ts';
import { buildTestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { assertProblem } from '../helpers/problem.ts';

let executions = 0;
let failNext = false;
let gate: Promise<void> | null = null;

const orders = defineApp({
  name: 'orders-fixture',
  description: 'A POST route that honours Idempotency-Key',
  routes: async (app) => {
    app.post(
      '/orders',
      {
        config: { idempotency: true },
        schema: {
          body: Type.Object({ item: Type.String(), quantity: Type.Integer({ minimum: 1 }) }),
        },
      },
      async (request, reply) => {
        executions++;
        if (gate) await gate;
        if (failNext) {
          failNext = false;
          throw new Error('database hiccup');
        }
        const id = randomUUID();
        reply.code(201).header('location', `/api/v1/orders/${id}`);
        return { id, execution: executions, body: request.body };
      },
    );
    app.post(
      '/payments',
      {
        config: { idempotency: 'required' },
        schema: { body: Type.Object({ amount: Type.Integer({ minimum: 1 }) }) },
      },
      async (request, reply) => {
        executions++;
        return reply.code(201).send({ id: randomUUID(), amount: request.body.amount });
      },
    );
  },
});

async function appOn(tdb: TestDatabase): Promise<FastifyInstance> {
  const { app } = await buildTestApp(
    {},
    {
      database: tdb.database,
      apps: [orders],
      setup: (a) => {
        a.addHook('onRequest', (request, _reply, done) => {
          const user = request.headers['x-test-user'];
          if (typeof user === 'string') request.userId = user;
          done();
        });
      },
    },
  );
  return app;
}

describe('idempotency keys', () => {
  let tdb: TestDatabase;
  let app: FastifyInstance;
  before(async () => {
    tdb = await createTestDatabase();
    app = await appOn(tdb);
  });
  after(async () => {
    await app.close();
    await tdb.drop();
  });

  const post = (key: string | undefined, payload: object, user = 'alice') =>
    app.inject({
      method: 'POST',
      url: '/api/v1/orders',
      headers: { 'x-test-user': user, ...(key === undefined ? {} : { 'idempotency-key': key }) },
      payload,
    });

  test('without a key every request runs', async () => {
    const before = executions;
    assert.equal((await post(undefined, { item: 'a', quantity: 1 })).statusCode, 201);
    assert.equal((await post(undefined, { item: 'a', quantity: 1 })).statusCode, 201);
    assert.equal(executions, before + 2);
  });

  test("a route with idempotency 'required' refuses a request without a key, and replays one with it", async () => {
    const pay = (key: string | undefined) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/payments',
        headers: {
          'x-test-user': 'alice',
          ...(key === undefined ? {} : { 'idempotency-key': key }),
        },
        payload: { amount: 5 },
      });
    const before = executions;
    assertProblem(await pay(undefined), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    assert.equal(executions, before, 'the handler did not run');
    assertProblem(await pay(''), 400, 'INVALID_IDEMPOTENCY_KEY');
    const key = randomUUID();
    const first = await pay(key);
    assert.equal(first.statusCode, 201);
    const again = await pay(key);
    assert.equal(again.statusCode, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), first.json());
    assert.equal(executions, before + 1);
  });

  test('the same key and body replay the stored response', async () => {
    const key = randomUUID();
    const first = await post(key, { item: 'book', quantity: 2 });
    assert.equal(first.statusCode, 201);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    const before = executions;
    const again = await post(key, { item: 'book', quantity: 2 });
    assert.equal(again.statusCode, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body, first.body);
    assert.equal(again.headers['content-type'], first.headers['content-type']);
    assert.equal(again.headers.location, first.headers.location);
    assert.equal(executions, before, 'the handler did not run again');
  });

  test('the same key with another body is refused', async () => {
    const key = randomUUID();
    assert.equal((await post(key, { item: 'pen', quantity: 1 })).statusCode, 201);
    const res = await post(key, { item: 'pen', quantity: 5 });
    assertProblem(res, 422, 'IDEMPOTENCY_KEY_REUSED');
  });

  test('a duplicate while the first still runs gets 409, then the stored answer', async () => {
    const key = randomUUID();
    let open = () => undefined as void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const first = post(key, { item: 'slow', quantity: 1 });
    // Wait until the first request holds the key.
    for (let i = 0; i < 100; i++) {
      const { rows } = await tdb.database.pool.query(
        'select 1 from gw_idempotency_key where key = $1',
        [key],
      );
      if (rows.length > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const duplicate = await post(key, { item: 'slow', quantity: 1 });
    assertProblem(duplicate, 409, 'IDEMPOTENCY_IN_PROGRESS');
    assert.equal(duplicate.headers['retry-after'], '1');
    gate = null;
    open();
    const done = await first;
    assert.equal(done.statusCode, 201);
    const replay = await post(key, { item: 'slow', quantity: 1 });
    assert.equal(replay.body, done.body);
  });

  test('malformed keys are refused with 400', async () => {
    for (const key of ['', 'x'.repeat(256), 'tab\there', 'clé-unicode']) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: { 'idempotency-key': Buffer.from(key, 'utf8').toString('latin1') },
        payload: { item: 'x', quantity: 1 },
      });
      assertProblem(res, 400, 'INVALID_IDEMPOTENCY_KEY');
    }
    assert.equal((await post('x'.repeat(255), { item: 'x', quantity: 1 })).statusCode, 201);
    assert.equal((await post(' !~printable~! ', { item: 'x', quantity: 1 })).statusCode, 201);
  });

  test('keys are scoped to the caller', async () => {
    const key = randomUUID();
    const alice = await post(key, { item: 'shared', quantity: 1 }, 'alice');
    const bob = await post(key, { item: 'other', quantity: 3 }, 'bob');
    assert.equal(alice.statusCode, 201);
    assert.equal(bob.statusCode, 201, 'bob’s key is his own');
    assert.notEqual(bob.json<{ id: string }>().id, alice.json<{ id: string }>().id);
    assert.equal(bob.headers['idempotent-replayed'], undefined);
  });

  test('a failed (5xx) first attempt is not stored, so the retry runs', async () => {
    const key = randomUUID();
    failNext = true;
    assertProblem(await post(key, { item: 'retry', quantity: 1 }), 500, 'INTERNAL_ERROR');
    const retry = await post(key, { item: 'retry', quantity: 1 });
    assert.equal(retry.statusCode, 201);
    assert.equal(retry.headers['idempotent-replayed'], undefined);
  });

  test('a request refused by validation does not claim the key', async () => {
    const key = randomUUID();
    const first = await post(key, { item: 'bad', quantity: 0 });
    assertProblem(first, 422, 'VALIDATION_FAILED');
    // Validation runs before the key is claimed, so nothing is stored and a fixed body can use it.
    assert.equal((await post(key, { item: 'bad', quantity: 1 })).statusCode, 201);
  });

  test('stored responses survive a restart and expire after 24 hours', async () => {
    const key = randomUUID();
    const first = await post(key, { item: 'durable', quantity: 1 });
    const restarted = await appOn(tdb);
    try {
      const replay = await restarted.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: { 'x-test-user': 'alice', 'idempotency-key': key },
        payload: { item: 'durable', quantity: 1 },
      });
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(replay.body, first.body);
    } finally {
      await restarted.close();
    }
    const { rows } = await tdb.database.pool.query<{ hours: number }>(
      `select extract(epoch from expires_at - created_at) / 3600 as hours from gw_idempotency_key where key = $1`,
      [key],
    );
    assert.equal(Math.round(Number(rows[0]?.hours)), 24);
    await tdb.database.pool.query(
      `update gw_idempotency_key set expires_at = now() - interval '1 second' where key = $1`,
      [key],
    );
    const fresh = await post(key, { item: 'durable', quantity: 1 });
    assert.equal(fresh.statusCode, 201);
    assert.equal(fresh.headers['idempotent-replayed'], undefined);
    assert.notEqual(fresh.body, first.body);

    // The purge job removes expired keys only.
    await tdb.database.pool.query(
      `update gw_idempotency_key set expires_at = now() - interval '1 second' where key = $1`,
      [key],
    );
    const result = await purgeIdempotencyKeys.handler({}, {
      db: tdb.database.db,
      log: pino({ level: 'silent' }),
    } as unknown as JobContext);
    assert.equal(result.deleted, 1);
    const left = await tdb.database.pool.query('select count(*)::int as n from gw_idempotency_key');
    assert.ok((left.rows[0] as { n: number }).n > 0, 'unexpired keys stay');
  });
});
