// Webhook deliveries end to end: events published through platform.events, fanned out by the
// webhooks subscriber, delivered by the worker to real receivers on 127.0.0.1, signatures checked
// by the Standard Webhooks spec (and the standardwebhooks package when installed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { newId, withTransaction } from '../../src/platform/db/index.ts';
import type { JobContext } from '../../src/platform/jobs/index.ts';
import { fanOut, purgeJob, sweepJob } from '../../src/platform/webhooks/index.ts';
import { bearer, mailsTo, signIn, type TestUser } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import {
  createMember,
  loadStandardWebhooks,
  Receiver,
  secretHappened,
  startWebhooksHarness,
  thingHappened,
  verifyBySpec,
  type Received,
  type WebhooksHarness,
} from '../helpers/webhooks.ts';

interface Attempt {
  attemptedAt: string;
  outcome: string;
  statusCode: number | null;
  durationMs: number;
  responseBody: string;
  errorClass: string | null;
}
interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  status: string;
  attemptCount: number;
  lastErrorClass: string | null;
  attempts: Attempt[];
}
interface DeliveryPage {
  items: Delivery[];
  page: { nextCursor: string | null };
}

describe('webhooks: deliveries', () => {
  let h: WebhooksHarness;
  let app: FastifyInstance;
  const receivers: Receiver[] = [];

  before(async () => {
    h = await startWebhooksHarness({
      WEBHOOKS_CONCURRENCY_PER_ENDPOINT: '2',
      WEBHOOKS_MAX_RETRY_AFTER: '2s',
      WEBHOOKS_PAYLOAD_MAX_BYTES: '1024',
    });
    app = h.app;
  });
  after(async () => {
    await h?.close();
    for (const r of receivers) await r.close();
  });

  const mailbox = () => h as unknown as Parameters<typeof mailsTo>[0];

  async function member(...roles: string[]) {
    const user = await createMember(h, ...roles);
    return { user, headers: bearer((await signIn(app, user)).accessToken) };
  }

  /**
   * An endpoint on its own receiver (its own port: the delivery agent keeps a circuit breaker per
   * host and port, so one test's failing receiver does not open another's), answering as
   * `behaviour` says (200 by default).
   */
  async function endpoint(
    owner: { headers: Record<string, string> },
    extra: Record<string, unknown> = {},
    behaviour?: (
      r: Received,
      n: number,
    ) => { status: number; headers?: Record<string, string>; delayMs?: number },
  ) {
    const receiver = await new Receiver().listen();
    receivers.push(receiver);
    if (behaviour) {
      let n = 0;
      receiver.behaviour = async (_req, res, received) => {
        const answer = behaviour(received, n++);
        if (answer.delayMs) await sleep(answer.delayMs);
        res.writeHead(answer.status, answer.headers ?? {}).end(`answer ${answer.status}`);
      };
    }
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/endpoints',
      headers: owner.headers,
      payload: { url: receiver.url('/hook'), ...extra },
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<{ endpoint: { id: string }; secret: string }>();
    return { id: body.endpoint.id, secret: body.secret, receiver, got: () => receiver.requests };
  }

  const publish = (owner: TestUser | null, n: number, note = `note ${n}`) =>
    withTransaction(h.tdb.database.db, (trx) =>
      h.platform.events.publish(trx, thingHappened, {
        data: { n, note },
        ownerId: owner?.id ?? null,
        subject: { type: 'thing', id: String(n) },
      }),
    );

  const deliveries = async (
    headers: Record<string, string>,
    endpointId: string,
    query = '',
  ): Promise<DeliveryPage> => {
    const res = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints/${endpointId}/deliveries${query}`,
      headers,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<DeliveryPage>();
  };

  const endpointRow = async (id: string) =>
    (
      await h.tdb.database.pool.query<{
        enabled: boolean;
        disabled_reason: string | null;
        failing_since: Date | null;
      }>('select enabled, disabled_reason, failing_since from gw_webhook_endpoint where id = $1', [
        id,
      ])
    ).rows[0];

  test('a published event reaches its owner’s endpoint, signed by the Standard Webhooks spec', async () => {
    const alice = await member();
    const ep = await endpoint(alice);
    const { id: eventId } = await publish(alice.user, 1);
    const [got] = await eventually('the delivery', async () => {
      const l = ep.got();
      return l.length > 0 ? l : null;
    });
    assert.ok(got);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.match(String(got.headers['user-agent']), /^Groundwork-Webhooks\//);
    assert.match(String(got.headers['webhook-id']), /^[0-9a-f-]{36}$/);
    const ts = Number(got.headers['webhook-timestamp']);
    assert.ok(Math.abs(ts - Date.now() / 1000) < 30);
    assert.match(String(got.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
    assert.ok(verifyBySpec(ep.secret, got));
    const body = JSON.parse(got.body) as { type: string; timestamp: string; data: unknown };
    assert.equal(body.type, 'whtest.thing.happened');
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
    assert.deepEqual(body.data, { n: 1, note: 'note 1' });
    const Webhook = await loadStandardWebhooks();
    if (Webhook) {
      const headers = Object.fromEntries(
        ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((k) => [
          k,
          String(got.headers[k]),
        ]),
      );
      assert.deepEqual(new Webhook(ep.secret).verify(got.body, headers), body);
    }
    const page = await eventually('the logged success', async () => {
      const p = await deliveries(alice.headers, ep.id);
      return p.items[0]?.status === 'succeeded' ? p : null;
    });
    const [delivery] = page.items;
    assert.ok(delivery);
    assert.equal(delivery.eventId, eventId);
    assert.equal(delivery.id, got.headers['webhook-id']);
    assert.equal(delivery.attempts.length, 1);
    assert.equal(delivery.attempts[0]?.statusCode, 200);
    assert.equal(delivery.attempts[0]?.outcome, 'success');
    assert.equal(delivery.attempts[0]?.responseBody, 'ok');
    assert.equal(delivery.attempts[0]?.errorClass, null);
    const attempts = await h.platform.metrics.getSingleMetricAsString('webhook_attempts_total');
    assert.match(attempts, /webhook_attempts_total\{outcome="success"\} [1-9]/);
    const lag = await h.platform.metrics.getSingleMetricAsString('webhook_delivery_lag_seconds');
    assert.match(lag, /webhook_delivery_lag_seconds_count [1-9]/);
  });

  test('visibility: not to other users; to holders of the permission; eventTypes filter; owner-hidden types', async () => {
    const alice = await member();
    const bob = await member();
    const carol = await member('moderator'); // moderator holds whtest:read (the test module's default)
    const aliceEp = await endpoint(alice);
    const bobEp = await endpoint(bob);
    const carolAll = await endpoint(carol, {
      eventTypes: ['whtest.thing.happened', 'whtest.secret.happened'],
    });
    const carolSecret = await endpoint(carol, { eventTypes: ['whtest.secret.happened'] });
    await publish(alice.user, 2);
    await withTransaction(h.tdb.database.db, (trx) =>
      h.platform.events.publish(trx, secretHappened, { data: { n: 3 }, ownerId: alice.user.id }),
    );
    await eventually('carol’s two deliveries', async () => carolAll.got().length >= 2);
    await eventually('carol’s secret delivery', async () => carolSecret.got().length >= 1);
    await eventually('alice’s delivery', async () => aliceEp.got().length >= 1);
    await sleep(1_000);
    assert.deepEqual(
      aliceEp.got().map((r) => (JSON.parse(r.body) as { type: string }).type),
      ['whtest.thing.happened'],
      'the owner does not see an owner-hidden type',
    );
    assert.equal(bobEp.got().length, 0, 'another user sees nothing');
    assert.deepEqual(
      carolSecret.got().map((r) => (JSON.parse(r.body) as { type: string }).type),
      ['whtest.secret.happened'],
    );
    for (const id of [carolAll.id, carolSecret.id])
      await app.inject({
        method: 'DELETE',
        url: `/api/v1/webhooks/endpoints/${id}`,
        headers: carol.headers,
      });
  });

  test('fan-out is idempotent by event id: one message per endpoint however often it runs', async () => {
    const dave = await member();
    const ep = await endpoint(dave);
    const event = {
      id: newId(),
      type: 'whtest.thing.happened',
      version: 1,
      occurredAt: new Date(),
      subject: null,
      actorId: null,
      ownerId: dave.user.id,
      requestId: null,
      data: { n: 4, note: 'twice' },
    };
    const counts = await Promise.all([fanOut(h.platform, event), fanOut(h.platform, event)]);
    assert.equal(counts[0] + counts[1], 1);
    assert.equal(await fanOut(h.platform, event), 0);
    await eventually('the delivery', async () => ep.got().length >= 1);
    await sleep(500);
    assert.equal(ep.got().length, 1);
  });

  test('a failed attempt is retried on the schedule, then succeeds', async () => {
    const erin = await member();
    const ep = await endpoint(erin, {}, (_r, n) => ({ status: n === 0 ? 500 : 200 }));
    await publish(erin.user, 5);
    const page = await eventually('the success after a retry', async () => {
      const p = await deliveries(erin.headers, ep.id);
      return p.items[0]?.status === 'succeeded' ? p : null;
    });
    const attempts = page.items[0]?.attempts ?? [];
    assert.deepEqual(
      attempts.map((a) => [a.outcome, a.statusCode, a.errorClass]),
      [
        ['retry', 500, 'http-5xx'],
        ['success', 200, null],
      ],
    );
    const [first, second] = ep.got();
    assert.ok(first && second);
    const gap = second.at - first.at;
    // WEBHOOKS_RETRY_SCHEDULE=1s,1s with ±20 % jitter (and the worker's poll interval).
    assert.ok(gap >= 750 && gap < 5_000, `retry after ${gap} ms`);
    assert.equal(first.headers['webhook-id'], second.headers['webhook-id']);
    assert.equal(
      (await endpointRow(ep.id))?.failing_since,
      null,
      'a success clears the failure clock',
    );
  });

  test('410 Gone disables the endpoint at once and mails its owner', async () => {
    const frank = await member();
    const ep = await endpoint(frank, {}, () => ({ status: 410 }));
    const before = await h.platform.metrics.getSingleMetricAsString(
      'webhook_endpoints_disabled_total',
    );
    await publish(frank.user, 6);
    await eventually(
      'the endpoint disabled',
      async () => (await endpointRow(ep.id))?.enabled === false,
    );
    assert.equal((await endpointRow(ep.id))?.disabled_reason, 'gone');
    await eventually('the owner’s mail', async () =>
      (await mailsTo(mailbox(), frank.user.email)).includes('webhooks.endpoint-disabled'),
    );
    const after = await h.platform.metrics.getSingleMetricAsString(
      'webhook_endpoints_disabled_total',
    );
    assert.notEqual(after, before);
    assert.match(after, /reason="gone"/);
    await publish(frank.user, 7);
    await sleep(1_500);
    assert.equal(ep.got().length, 1, 'nothing more is sent to a disabled endpoint');
    const page = await deliveries(frank.headers, ep.id, '?status=failed');
    assert.equal(page.items[0]?.lastErrorClass, 'http-410');
  });

  test('429 with Retry-After: 3600 waits the cap (WEBHOOKS_MAX_RETRY_AFTER=2s); garbage falls back to the schedule', async () => {
    const gina = await member();
    const capped = await endpoint(gina, {}, (_r, n) =>
      n === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 },
    );
    const garbage = await endpoint(gina, {}, (_r, n) =>
      n === 0 ? { status: 503, headers: { 'retry-after': 'soon-ish' } } : { status: 200 },
    );
    await publish(gina.user, 8);
    await eventually(
      'both retried',
      async () => capped.got().length >= 2 && garbage.got().length >= 2,
      20_000,
    );
    const [c1, c2] = capped.got();
    const [g1, g2] = garbage.got();
    assert.ok(c1 && c2 && g1 && g2);
    const cappedGap = c2.at - c1.at;
    const garbageGap = g2.at - g1.at;
    assert.ok(cappedGap >= 1_900 && cappedGap < 6_000, `capped Retry-After waited ${cappedGap} ms`);
    assert.ok(
      garbageGap >= 750 && garbageGap < 5_000,
      `garbage Retry-After waited ${garbageGap} ms`,
    );
  });

  test('a secret rotated while deliveries are in flight: both secrets sign during the overlap', async () => {
    const hank = await member();
    const ep = await endpoint(hank, {}, () => ({ status: 200, delayMs: 700 }));
    const first = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${ep.id}/test`,
      headers: hank.headers,
      payload: {},
    });
    assert.equal(first.statusCode, 202, first.body);
    await eventually('the first request in flight', async () => ep.got().length >= 1);
    const rotated = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${ep.id}/secrets/rotate`,
      headers: hank.headers,
    });
    const { secret: next } = rotated.json<{ secret: string }>();
    const second = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${ep.id}/test`,
      headers: hank.headers,
      payload: { eventType: 'whtest.thing.happened' },
    });
    const { messageId } = second.json<{ messageId: string }>();
    await eventually('the second request', async () => ep.got().length >= 2);
    const [inFlight, after] = ep.got();
    assert.ok(inFlight && after);
    assert.ok(verifyBySpec(ep.secret, inFlight), 'the in-flight one carries the old signature');
    assert.equal(after.headers['webhook-id'], messageId);
    assert.equal(String(after.headers['webhook-signature']).split(' ').length, 2);
    assert.ok(verifyBySpec(ep.secret, after), 'the previous secret still signs');
    assert.ok(verifyBySpec(next, after), 'the new secret signs');
    const body = JSON.parse(after.body) as { type: string; data: { example: unknown } };
    assert.equal(body.type, 'webhook.test');
    assert.deepEqual(body.data.example, { n: 1, note: 'one' });
    const Webhook = await loadStandardWebhooks();
    if (Webhook) {
      const headers = Object.fromEntries(
        ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((k) => [
          k,
          String(after.headers[k]),
        ]),
      );
      new Webhook(ep.secret).verify(after.body, headers);
      new Webhook(next).verify(after.body, headers);
    }
  });

  test('an ordered endpoint gets its messages one at a time, in order, a retry holding the rest back', async () => {
    const ivan = await member();
    const ep = await endpoint(ivan, { ordered: true }, (_r, n) => ({
      status: n === 0 ? 500 : 200,
      delayMs: 50,
    }));
    for (let n = 0; n < 5; n++) {
      await fanOut(h.platform, {
        id: newId(),
        type: 'whtest.thing.happened',
        version: 1,
        occurredAt: new Date(),
        subject: null,
        actorId: null,
        ownerId: ivan.user.id,
        requestId: null,
        data: { n, note: 'ordered' },
      });
    }
    await eventually('all five delivered', async () => ep.got().length >= 6, 20_000);
    assert.deepEqual(
      ep.got().map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n),
      [0, 0, 1, 2, 3, 4],
    );
    assert.equal(ep.receiver.maxInFlight, 1);
  });

  test('the per-endpoint concurrency cap (2) holds; every message still goes', async () => {
    const judy = await member();
    const ep = await endpoint(judy, {}, () => ({ status: 200, delayMs: 300 }));
    for (let n = 0; n < 8; n++) await publish(judy.user, 100 + n);
    await eventually('all eight delivered', async () => ep.got().length >= 8, 20_000);
    assert.equal(ep.receiver.maxInFlight, 2, 'at most 2 at once, and 2 used');
  });

  test('replay one message and recover every failed one since a time', async () => {
    const kate = await member();
    let healthy = false;
    // 400, not 500: a 4xx does not count towards the host's circuit breaker, which nine 5xx
    // answers in a row would open (the replay would then fail as circuit-open for 30 s).
    const ep = await endpoint(kate, {}, () => ({ status: healthy ? 200 : 400 }));
    const since = new Date(Date.now() - 1_000).toISOString();
    await publish(kate.user, 200);
    await publish(kate.user, 201);
    await publish(kate.user, 202);
    const failed = await eventually(
      'three failed (1 attempt + 2 retries each)',
      async () => {
        const p = await deliveries(kate.headers, ep.id, '?status=failed');
        return p.items.length === 3 ? p : null;
      },
      20_000,
    );
    assert.ok(failed.items.every((m) => m.attemptCount === 3 && m.attempts.length === 3));
    healthy = true;
    const [one] = failed.items;
    assert.ok(one);
    const replay = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/messages/${one.id}/replay`,
      headers: kate.headers,
    });
    assert.equal(replay.statusCode, 202, replay.body);
    await eventually('the replayed message delivered', async () => {
      const p = await deliveries(kate.headers, ep.id, '?status=succeeded');
      return p.items.some((m) => m.id === one.id);
    });
    const again = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/messages/${one.id}/replay`,
      headers: kate.headers,
    });
    assert.equal(again.statusCode, 202, 'a delivered message can be replayed too');
    const other = await member();
    const foreign = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/messages/${one.id}/replay`,
      headers: other.headers,
    });
    assert.equal(foreign.statusCode, 404);
    const recover = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${ep.id}/recover`,
      headers: kate.headers,
      payload: { since },
    });
    assert.equal(recover.statusCode, 202, recover.body);
    assert.equal(recover.json<{ requeued: number }>().requeued, 2);
    await eventually('every message delivered', async () => {
      const p = await deliveries(kate.headers, ep.id, '?status=succeeded');
      return p.items.length === 3;
    });
  });

  test('the delivery log pages by cursor and filters by status and event type', async () => {
    const leo = await member();
    const ep = await endpoint(leo, {}, (r) => ({
      status: (JSON.parse(r.body) as { data: { n?: number } }).data.n === 301 ? 400 : 200,
    }));
    for (const n of [300, 301, 302, 303]) await publish(leo.user, n);
    await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${ep.id}/test`,
      headers: leo.headers,
      payload: {},
    });
    await eventually('five finished or retrying', async () => ep.got().length >= 5);
    const first = await deliveries(leo.headers, ep.id, '?limit=2');
    assert.equal(first.items.length, 2);
    assert.ok(first.page.nextCursor);
    const second = await deliveries(
      leo.headers,
      ep.id,
      `?limit=2&cursor=${encodeURIComponent(first.page.nextCursor)}`,
    );
    const third = await deliveries(
      leo.headers,
      ep.id,
      `?limit=2&cursor=${encodeURIComponent(second.page.nextCursor ?? '')}`,
    );
    const ids = [...first.items, ...second.items, ...third.items].map((m) => m.id);
    assert.equal(ids.length, 5);
    assert.equal(new Set(ids).size, 5);
    assert.equal(third.page.nextCursor, null);
    const tests = await deliveries(leo.headers, ep.id, '?eventType=webhook.test');
    assert.deepEqual(
      tests.items.map((m) => m.eventType),
      ['webhook.test'],
    );
    const pending = await deliveries(leo.headers, ep.id, '?status=pending');
    assert.ok(pending.items.every((m) => m.status === 'pending'));
    assert.ok(pending.items.length <= 1);
    const bad = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints/${ep.id}/deliveries?cursor=forged`,
      headers: leo.headers,
    });
    assert.equal(bad.statusCode, 400);
    const badFilter = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints/${ep.id}/deliveries?limit=0`,
      headers: leo.headers,
    });
    assert.equal(badFilter.statusCode, 422);
  });

  test('an event body over WEBHOOKS_PAYLOAD_MAX_BYTES is recorded as failed, never sent', async () => {
    const max = await member();
    const ep = await endpoint(max);
    await publish(max.user, 400, 'x'.repeat(2_000));
    const page = await eventually('the failed message', async () => {
      const p = await deliveries(max.headers, ep.id);
      return p.items.length > 0 ? p : null;
    });
    assert.equal(page.items[0]?.status, 'failed');
    assert.equal(page.items[0]?.lastErrorClass, 'payload-too-large');
    await sleep(500);
    assert.equal(ep.got().length, 0);
    const replay = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/messages/${page.items[0]?.id ?? ''}/replay`,
      headers: max.headers,
    });
    assert.equal(replay.statusCode, 409);
    assert.equal(replay.json<{ code: string }>().code, 'WEBHOOK_MESSAGE_TOO_LARGE');
  });

  test('an endpoint failing continuously for WEBHOOKS_DISABLE_AFTER is disabled and its owner mailed', async () => {
    const nina = await member();
    const ep = await endpoint(nina, {}, () => ({ status: 500 }));
    // Failing since long ago, as if five days had passed: the next failure disables it.
    await h.tdb.database.pool.query(
      `update gw_webhook_endpoint set failing_since = now() - interval '6 days' where id = $1`,
      [ep.id],
    );
    await publish(nina.user, 500);
    await eventually('disabled', async () => (await endpointRow(ep.id))?.enabled === false);
    assert.equal((await endpointRow(ep.id))?.disabled_reason, 'failing');
    await eventually('the owner’s mail', async () =>
      (await mailsTo(mailbox(), nina.user.email)).includes('webhooks.endpoint-disabled'),
    );
    // Enabled again by its owner: the failure clock restarts.
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/webhooks/endpoints/${ep.id}`,
      headers: nina.headers,
      payload: { enabled: true },
    });
    assert.equal(res.json<{ enabled: boolean; failingSince: string | null }>().failingSince, null);
  });

  test('rateLimitPerSecond spaces an endpoint’s requests', async () => {
    const olga = await member();
    const ep = await endpoint(olga, { rateLimitPerSecond: 2 });
    for (let n = 0; n < 4; n++) await publish(olga.user, 600 + n);
    await eventually('four delivered', async () => ep.got().length >= 4, 20_000);
    const at = ep.got().map((r) => r.at);
    const span = Math.max(...at) - Math.min(...at);
    assert.ok(span >= 1_300, `4 requests at 2/s took ${span} ms`);
  });

  test('the purge job removes delivery logs older than WEBHOOKS_RETENTION, keeps recent ones', async () => {
    const paul = await member();
    const ep = await endpoint(paul);
    await publish(paul.user, 700);
    await publish(paul.user, 701);
    await eventually('two delivered', async () => {
      const p = await deliveries(paul.headers, ep.id, '?status=succeeded');
      return p.items.length === 2 ? p : null;
    });
    const [old] = (await deliveries(paul.headers, ep.id)).items;
    assert.ok(old);
    await h.tdb.database.pool.query(
      `update gw_webhook_message set created_at = now() - interval '31 days' where id = $1`,
      [old.id],
    );
    await h.tdb.database.pool.query(
      `update gw_webhook_attempt set attempted_at = now() - interval '31 days' where message_id = $1`,
      [old.id],
    );
    const ctx = { platform: h.platform } as unknown as JobContext;
    const result = await purgeJob.handler({}, ctx);
    assert.ok(result.removed >= 2);
    const left = await deliveries(paul.headers, ep.id);
    assert.equal(left.items.length, 1);
    assert.notEqual(left.items[0]?.id, old.id);
  });

  test('the sweep wakes due messages nobody delivers (a process died after the commit, or mid-attempt)', async () => {
    const quinn = await member();
    const ep = await endpoint(quinn);
    const body = (n: number) =>
      JSON.stringify({
        type: 'whtest.thing.happened',
        timestamp: new Date().toISOString(),
        data: { n, note: 'stranded' },
      });
    // As a fan-out leaves a message when its process dies right after the commit (due, no job),
    // and as a process that died during the attempt leaves one (its lease run out).
    await h.tdb.database.pool.query(
      `insert into gw_webhook_message
         (id, endpoint_id, event_id, event_type, event_time, body, status, next_attempt_at,
          attempts, locked_until)
       values ($1, $2, $3, 'whtest.thing.happened', now(), $4, 'pending', now() - interval '1 minute', 0, null),
              ($5, $2, $6, 'whtest.thing.happened', now(), $7, 'pending', now() - interval '2 minutes', 1,
               now() - interval '1 second')`,
      [newId(), ep.id, newId(), body(800), newId(), newId(), body(801)],
    );
    const ctx = { platform: h.platform } as unknown as JobContext;
    const result = await sweepJob.handler({}, ctx);
    assert.ok(result.woken >= 2, JSON.stringify(result));
    await eventually('both delivered', async () => ep.got().length >= 2);
    assert.deepEqual(
      ep
        .got()
        .map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n)
        .sort(),
      [800, 801],
    );
  });

  test('an endpoint deleted while its attempt runs: the other endpoints’ results are still written', async () => {
    const rita = await member();
    const doomed = await endpoint(rita, {}, () => ({ status: 200, delayMs: 600 }));
    const kept = await endpoint(rita, {}, () => ({ status: 200, delayMs: 600 }));
    await publish(rita.user, 900);
    await eventually(
      'both in flight',
      async () => doomed.got().length > 0 && kept.got().length > 0,
    );
    const gone = await app.inject({
      method: 'DELETE',
      url: `/api/v1/webhooks/endpoints/${doomed.id}`,
      headers: rita.headers,
    });
    assert.equal(gone.statusCode, 204);
    const page = await eventually('the kept endpoint’s success logged', async () => {
      const p = await deliveries(rita.headers, kept.id);
      return p.items[0]?.status === 'succeeded' ? p : null;
    });
    assert.equal(page.items[0]?.attempts.length, 1);
    await sleep(300);
    assert.equal(kept.got().length, 1, 'not delivered twice');
  });
});
