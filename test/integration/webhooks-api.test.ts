// The webhooks API through HTTP: endpoints (ownership, admin), URL checks, secrets shown once,
// the event catalog, bad input. Deliveries are in webhooks-delivery.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, enabledModules } from '../../src/app.ts';
import { ConfigError } from '../../src/platform/config/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { webhookSettings } from '../../src/platform/webhooks/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { bearer, signIn, signInAdmin, type TestUser } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  createMember as createUser,
  startWebhooksHarness,
  whtestModule,
  type WebhooksHarness,
} from '../helpers/webhooks.ts';

interface Endpoint {
  id: string;
  ownerId: string;
  url: string;
  description: string;
  eventTypes: string[];
  enabled: boolean;
  ordered: boolean;
  rateLimitPerSecond: number | null;
}

describe('webhooks: settings', () => {
  test('defaults: 15 s timeout, the 7-step retry schedule, 24 h overlap, 256 KB, 30 days, 5 days', () => {
    const config = testConfig();
    const s = webhookSettings(config, config.modules.webhooks as never);
    assert.equal(s.timeoutMs, 15_000);
    assert.deepEqual(s.retryScheduleS, [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]);
    assert.equal(s.secretOverlapS, 86_400);
    assert.equal(s.payloadMaxBytes, 262_144);
    assert.equal(s.retentionS, 30 * 86_400);
    assert.equal(s.disableAfterS, 5 * 86_400);
    assert.equal(s.allowPrivateNetworks, false);
    assert.equal(s.requireHttps, false);
  });

  test('WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true is refused in production; https is required there', () => {
    const production = testConfig({
      APP_ENV: 'production',
      APP_SECRET: 'a-long-production-secret-for-the-tests-0123456789',
      DATABASE_URL: 'postgres://u:p@db.example.com/app',
      PUBLIC_URL: 'https://app.example.com',
      SMTP_URL: 'smtp://mail.example.com:587',
      MAIL_FROM: 'Groundwork <no-reply@example.com>',
    });
    const slice = production.modules.webhooks as never;
    assert.equal(webhookSettings(production, slice).requireHttps, true);
    assert.throws(
      () =>
        webhookSettings(production, {
          ...(slice as object),
          WEBHOOKS_ALLOW_PRIVATE_NETWORKS: true,
        } as never),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.some((i) => i.key === 'WEBHOOKS_ALLOW_PRIVATE_NETWORKS'),
    );
    // At start: listed by the configuration error with every other problem.
    assert.throws(
      () =>
        testConfig({
          APP_ENV: 'production',
          APP_SECRET: 'a-long-production-secret-for-the-tests-0123456789',
          DATABASE_URL: 'postgres://u:p@db.example.com/app',
          PUBLIC_URL: 'https://app.example.com',
          SMTP_URL: 'smtp://mail.example.com:587',
          MAIL_FROM: 'Groundwork <no-reply@example.com>',
          WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true',
          CORS_ORIGINS: '*',
        }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.some((i) => i.key === 'WEBHOOKS_ALLOW_PRIVATE_NETWORKS') &&
        e.issues.some((i) => i.key === 'CORS_ORIGINS'),
    );
  });

  test('bad values are listed by the configuration error', () => {
    for (const [key, value] of [
      ['WEBHOOKS_TIMEOUT', '15'],
      ['WEBHOOKS_RETRY_SCHEDULE', '5s,,5m'],
      ['WEBHOOKS_PAYLOAD_MAX_BYTES', '10'],
      ['WEBHOOKS_CONCURRENCY_PER_ENDPOINT', '0'],
    ] as const) {
      assert.throws(
        () => testConfig({ [key]: value }),
        (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.key === key),
        `${key}=${value}`,
      );
    }
  });
});

describe('webhooks: endpoints API', () => {
  let h: WebhooksHarness;
  let app: FastifyInstance;
  let alice: TestUser;
  let bob: TestUser;
  let aliceH: Record<string, string>;
  let bobH: Record<string, string>;
  let adminH: Record<string, string>;

  before(async () => {
    h = await startWebhooksHarness();
    app = h.app;
    alice = await createUser(h);
    bob = await createUser(h);
    aliceH = bearer((await signIn(app, alice)).accessToken);
    bobH = bearer((await signIn(app, bob)).accessToken);
    adminH = (await signInAdmin(app, h)).headers;
  });
  after(() => h?.close());

  const create = (headers: Record<string, string>, body: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/webhooks/endpoints', headers, payload: body });

  test('create answers 201 with the endpoint and its whsec_ secret, shown only then', async () => {
    const res = await create(aliceH, {
      url: 'http://127.0.0.1:9/hook',
      description: 'mine',
      eventTypes: ['whtest.thing.happened'],
      rateLimitPerSecond: 5,
    });
    assert.equal(res.statusCode, 201, res.body);
    const { endpoint, secret } = res.json<{ endpoint: Endpoint; secret: string }>();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(endpoint.ownerId, alice.id);
    assert.equal(endpoint.enabled, true);
    assert.equal(endpoint.ordered, false);
    assert.equal(endpoint.rateLimitPerSecond, 5);
    assert.deepEqual(endpoint.eventTypes, ['whtest.thing.happened']);
    const shown = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}`,
      headers: aliceH,
    });
    assert.equal(shown.statusCode, 200);
    assert.ok(!shown.body.includes('whsec_'), 'the secret is never shown again');
    // Stored sealed, not in clear.
    const { rows } = await h.tdb.database.pool.query<{ sealed: string }>(
      'select sealed from gw_webhook_secret where endpoint_id = $1',
      [endpoint.id],
    );
    assert.equal(rows.length, 1);
    assert.ok(!rows[0]?.sealed.includes(secret.slice(6)));
  });

  test('another user’s endpoint is 404 for show, change, delete, rotate, test and deliveries', async () => {
    const { endpoint } = (await create(aliceH, { url: 'http://127.0.0.1:9/a' })).json<{
      endpoint: Endpoint;
    }>();
    const base = `/api/v1/webhooks/endpoints/${endpoint.id}`;
    for (const [method, url, payload] of [
      ['GET', base, undefined],
      ['PATCH', base, { description: 'x' }],
      ['DELETE', base, undefined],
      ['POST', `${base}/secrets/rotate`, undefined],
      ['POST', `${base}/test`, {}],
      ['GET', `${base}/deliveries`, undefined],
      ['POST', `${base}/recover`, { since: new Date().toISOString() }],
    ] as const) {
      const res = await app.inject({ method, url, headers: bobH, ...(payload ? { payload } : {}) });
      assertProblem(res, 404, 'WEBHOOK_ENDPOINT_NOT_FOUND');
    }
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/webhooks/endpoints',
      headers: bobH,
    });
    assert.ok(!list.json<{ items: Endpoint[] }>().items.some((e) => e.id === endpoint.id));
  });

  test('an admin lists, changes and deletes anyone’s endpoints', async () => {
    const { endpoint } = (await create(bobH, { url: 'http://127.0.0.1:9/b' })).json<{
      endpoint: Endpoint;
    }>();
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/webhooks/endpoints?limit=100',
      headers: adminH,
    });
    assert.equal(list.statusCode, 200);
    assert.ok(list.json<{ items: Endpoint[] }>().items.some((e) => e.id === endpoint.id));
    const patched = await app.inject({
      method: 'PATCH',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}`,
      headers: adminH,
      payload: { enabled: false, ordered: true },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json<Endpoint>().enabled, false);
    assert.equal(patched.json<Endpoint>().ordered, true);
    const gone = await app.inject({
      method: 'DELETE',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}`,
      headers: adminH,
    });
    assert.equal(gone.statusCode, 204);
    const again = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}`,
      headers: bobH,
    });
    assertProblem(again, 404, 'WEBHOOK_ENDPOINT_NOT_FOUND');
  });

  test('the owner lists theirs with keyset pagination', async () => {
    const carol = await createUser(h);
    const carolH = bearer((await signIn(app, carol)).accessToken);
    for (let i = 0; i < 3; i++) await create(carolH, { url: `http://127.0.0.1:9/c${i}` });
    const first = await app.inject({
      method: 'GET',
      url: '/api/v1/webhooks/endpoints?limit=2',
      headers: carolH,
    });
    const p1 = first.json<{ items: Endpoint[]; page: { nextCursor: string | null } }>();
    assert.equal(p1.items.length, 2);
    assert.ok(p1.page.nextCursor);
    const second = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/endpoints?limit=2&cursor=${encodeURIComponent(p1.page.nextCursor)}`,
      headers: carolH,
    });
    const p2 = second.json<{ items: Endpoint[]; page: { nextCursor: string | null } }>();
    assert.equal(p2.items.length, 1);
    assert.equal(p2.page.nextCursor, null);
    assert.deepEqual(
      [...p1.items, ...p2.items].map((e) => e.url),
      ['http://127.0.0.1:9/c2', 'http://127.0.0.1:9/c1', 'http://127.0.0.1:9/c0'],
    );
  });

  test('rotate answers a new secret and keeps the previous one for the overlap', async () => {
    const { endpoint, secret } = (await create(aliceH, { url: 'http://127.0.0.1:9/r' })).json<{
      endpoint: Endpoint;
      secret: string;
    }>();
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}/secrets/rotate`,
      headers: aliceH,
    });
    assert.equal(res.statusCode, 200, res.body);
    const rotated = res.json<{ secret: string; previousValidUntil: string }>();
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, secret);
    const until = Date.parse(rotated.previousValidUntil) - Date.now();
    assert.ok(until > 86_000_000 && until <= 86_400_000, String(until));
    const { rows } = await h.tdb.database.pool.query<{ current: boolean }>(
      'select expires_at is null as current from gw_webhook_secret where endpoint_id = $1',
      [endpoint.id],
    );
    assert.deepEqual(rows.map((r) => r.current).sort(), [false, true]);
  });

  test('the event catalog lists every declared type with its schema and example', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/webhooks/event-types',
      headers: aliceH,
    });
    assert.equal(res.statusCode, 200, res.body);
    const items = res.json<{
      items: { type: string; version: number; schema: { type: string }; example: unknown }[];
    }>().items;
    const thing = items.find((t) => t.type === 'whtest.thing.happened');
    assert.ok(thing);
    assert.equal(thing.version, 1);
    assert.equal(thing.schema.type, 'object');
    assert.deepEqual(thing.example, { n: 1, note: 'one' });
    assert.ok(items.some((t) => t.type === 'whtest.secret.happened'));
  });

  test('an unknown event type in eventTypes is refused (422)', async () => {
    const res = await create(aliceH, {
      url: 'http://127.0.0.1:9/x',
      eventTypes: ['nobody.declares.this'],
    });
    assertProblem(res, 422, 'WEBHOOK_EVENT_TYPE_UNKNOWN');
  });

  test('anonymous callers get 401', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/webhooks/endpoints' });
    assertProblem(res, 401, 'UNAUTHORIZED');
  });

  test('bad input is a 4xx problem: bad ids, bad bodies, a 10 KB URL, a huge description', async () => {
    const bad = async (
      method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
      url: string,
      payload?: unknown,
    ) => {
      const res = await app.inject({
        method,
        url,
        headers: aliceH,
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
      assert.ok(
        res.statusCode >= 400 && res.statusCode < 500,
        `${method} ${url}: ${res.statusCode}`,
      );
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      return res;
    };
    await bad('GET', '/api/v1/webhooks/endpoints/not-a-uuid');
    await bad('DELETE', '/api/v1/webhooks/endpoints/1');
    await bad('POST', '/api/v1/webhooks/messages/zzz/replay');
    await bad('POST', '/api/v1/webhooks/endpoints', {});
    await bad('POST', '/api/v1/webhooks/endpoints', { url: 42 });
    await bad('POST', '/api/v1/webhooks/endpoints', {
      url: `http://127.0.0.1:9/${'a'.repeat(10_240)}`,
    });
    await bad('POST', '/api/v1/webhooks/endpoints', {
      url: 'http://127.0.0.1:9/',
      description: 'd'.repeat(100_000),
    });
    await bad('POST', '/api/v1/webhooks/endpoints', {
      url: 'http://127.0.0.1:9/',
      rateLimitPerSecond: 0,
    });
    await bad('POST', '/api/v1/webhooks/endpoints', {
      url: 'http://127.0.0.1:9/',
      eventTypes: 'x',
    });
    const { endpoint } = (await create(aliceH, { url: 'http://127.0.0.1:9/z' })).json<{
      endpoint: Endpoint;
    }>();
    await bad('PATCH', `/api/v1/webhooks/endpoints/${endpoint.id}`, {});
    await bad('PATCH', `/api/v1/webhooks/endpoints/${endpoint.id}`, { enabled: 'yes' });
    await bad('POST', `/api/v1/webhooks/endpoints/${endpoint.id}/recover`, { since: 'yesterday' });
    await bad('POST', `/api/v1/webhooks/endpoints/${endpoint.id}/test`, { eventType: 'NOPE' });
    const unknownMessage = await app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/messages/01900000-0000-7000-8000-000000000000/replay',
      headers: aliceH,
    });
    assertProblem(unknownMessage, 404, 'WEBHOOK_MESSAGE_NOT_FOUND');
  });
});

describe('webhooks: URLs refused at creation (private networks not allowed)', () => {
  let platform: Platform;
  let app: FastifyInstance;
  let h: WebhooksHarness;
  let headers: Record<string, string>;
  let harnessHeaders: Record<string, string>;

  before(async () => {
    // The shared database of a harness; a second app on it with the production-like URL policy.
    h = await startWebhooksHarness();
    const config = testConfig(
      { WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'false', JOBS_POLL_INTERVAL_MS: '500' },
      [whtestModule],
    );
    platform = await createPlatform(config, {
      modules: enabledModules(config, [whtestModule]),
      database: h.tdb.database,
      redis: null,
      logDestination: new LogCapture(),
    });
    app = await buildApp(config, { platform, apps: [whtestModule] });
    await app.ready();
    const user = await createUser(h);
    headers = bearer((await signIn(app, user)).accessToken);
    harnessHeaders = bearer((await signIn(h.app, user)).accessToken);
  });
  after(async () => {
    await app?.close();
    await platform?.close();
    await h?.close();
  });

  const refused = [
    'http://127.0.0.1',
    'http://[::1]',
    'http://0x7f000001',
    'http://2130706433',
    'http://0177.0.0.1',
    'http://127.1',
    'http://169.254.169.254/latest/meta-data',
    'http://[fd00:ec2::254]/latest',
    'http://[::ffff:127.0.0.1]',
    'http://[::ffff:7f00:1]',
    'http://10.0.0.1/hook',
    'http://192.168.1.10/hook',
    'http://172.16.0.1/hook',
    'http://100.64.0.1/hook',
    'http://[fc00::1]/hook',
    'http://[fe80::1]/hook',
    'http://224.0.0.1/hook',
    'http://0.0.0.0/hook',
    'http://localhost:8080/hook',
    'file:///etc/passwd',
    'gopher://example.com/',
    'ftp://example.com/',
    'http://user:pass@example.com/hook',
    'https://user@example.com/hook',
    'not a url',
  ];

  for (const url of refused) {
    test(`refused: ${url}`, async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/webhooks/endpoints',
        headers,
        payload: { url },
      });
      const problem = assertProblem(res, 422, 'WEBHOOK_URL_REFUSED');
      assert.match(problem.detail ?? '', /^The URL was refused: .+\.$/);
    });
  }

  test('refused on change too', async () => {
    const created = await h.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/endpoints',
      headers: harnessHeaders,
      payload: { url: 'http://127.0.0.1:9/' },
    });
    const { endpoint } = created.json<{ endpoint: Endpoint }>();
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/webhooks/endpoints/${endpoint.id}`,
      headers,
      payload: { url: 'http://169.254.169.254/' },
    });
    assertProblem(res, 422, 'WEBHOOK_URL_REFUSED');
  });

  test('a 10 KB URL is refused (422)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/endpoints',
      headers,
      payload: { url: `https://example.com/${'a'.repeat(10_240)}` },
    });
    assert.equal(res.statusCode, 422);
  });
});
