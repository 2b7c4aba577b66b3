import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '@openfeature/server-sdk';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp, enabledModules } from '../../src/app.ts';
import { ConfigError, type Config } from '../../src/platform/config/index.ts';
import { openDatabase, type Database } from '../../src/platform/db/index.ts';
import {
  DatabaseFlagProvider,
  evaluateFlag,
  featureFlags,
  FlagStore,
  flagSettings,
  inRollout,
  rolloutBucket,
  type FlagDefinition,
} from '../../src/platform/flags/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { closeRedis, connectRedis, type Redis } from '../../src/platform/redis/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, createUser, grantRoles, signIn, signInAdmin } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

const URL = '/api/v1/admin/flags';
const silent = pino({ level: 'silent' });
const redisOk = await needsRedis();

interface Instance {
  config: Config;
  platform: Platform;
  app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * One process's worth of Groundwork on the test database: its own pool, its own Redis client
 * under `redisPrefix` (or none: in-process cache), the platform and the app.
 */
async function startInstance(
  tdb: TestDatabase,
  overrides: Record<string, string> = {},
  redisPrefix: string | null = null,
): Promise<Instance> {
  const config = testConfig(
    redisPrefix === null
      ? overrides
      : { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: redisPrefix, ...overrides },
  );
  const database: Database = await openDatabase(config, { logger: silent, url: tdb.url });
  const redis: Redis | null = redisPrefix === null ? null : await connectRedis(config, silent);
  const platform = await createPlatform(config, {
    modules: enabledModules(config, []),
    database,
    redis,
    work: false,
    logDestination: new LogCapture(),
  });
  const app = await buildApp(config, { platform, apps: [] });
  await app.ready();
  return {
    config,
    platform,
    app,
    async close() {
      await app.close();
      await platform.close();
      if (redis) await closeRedis(redis);
      await database.close();
    },
  };
}

/** Polls `check` until it holds; the time it took, in ms. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) assert.fail(`${what} not within ${String(ms)} ms`);
    await sleep(20);
  }
  return performance.now() - start;
}

const uuids = (n: number) => Array.from({ length: n }, () => randomUUID());

describe('feature flags: the admin API', () => {
  let tdb: TestDatabase;
  let a: Instance;
  let admin: Record<string, string>;
  let member: Record<string, string>;
  before(async () => {
    tdb = await createTestDatabase();
    a = await startInstance(tdb);
    admin = (await signInAdmin(a.app, { tdb, config: a.config })).headers;
    const user = await createUser({ tdb, config: a.config });
    await grantRoles({ tdb }, user.id, 'user');
    member = bearer((await signIn(a.app, user)).accessToken);
  });
  after(async () => {
    await a.close();
    await tdb.drop();
  });

  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
    headers = admin,
  ) =>
    a.app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  test('create, read, list, change and delete a flag, each audited', async () => {
    const created = await call('POST', URL, { key: 'checkout.new-flow', description: 'New' });
    assert.equal(created.statusCode, 201, created.body);
    const flag = created.json<FlagDefinition & { createdAt: string }>();
    assert.deepEqual(
      {
        key: flag.key,
        type: flag.type,
        enabled: flag.enabled,
        variants: flag.variants,
        defaultVariant: flag.defaultVariant,
        environments: flag.environments,
        overrides: flag.overrides,
      },
      {
        key: 'checkout.new-flow',
        type: 'boolean',
        enabled: true,
        variants: { on: true, off: false },
        defaultVariant: 'off',
        environments: {},
        overrides: [],
      },
    );
    assert.equal(
      (await call('GET', `${URL}/checkout.new-flow`)).json<{ key: string }>().key,
      flag.key,
    );

    const colour = await call('POST', URL, {
      key: 'ui.colour',
      type: 'string',
      variants: { blue: 'blue', green: 'green' },
      defaultVariant: 'blue',
      environments: { production: { rollout: { variant: 'green', percentage: 12.5 } } },
    });
    assert.equal(colour.statusCode, 201, colour.body);

    const first = await call('GET', `${URL}?limit=1`);
    assert.equal(first.statusCode, 200, first.body);
    const page1 = first.json<{ items: { key: string }[]; page: { nextCursor: string | null } }>();
    assert.deepEqual(
      page1.items.map((f) => f.key),
      ['checkout.new-flow'],
    );
    const next = await call('GET', `${URL}?limit=1&cursor=${String(page1.page.nextCursor)}`);
    assert.deepEqual(
      next.json<{ items: { key: string }[] }>().items.map((f) => f.key),
      ['ui.colour'],
    );
    const strings = await call('GET', `${URL}?type=string`);
    assert.deepEqual(
      strings.json<{ items: { key: string }[] }>().items.map((f) => f.key),
      ['ui.colour'],
    );

    const changed = await call('PATCH', `${URL}/checkout.new-flow`, {
      environments: { test: { defaultVariant: 'on' } },
      enabled: false,
    });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.deepEqual(changed.json<FlagDefinition>().environments, {
      test: { defaultVariant: 'on' },
    });
    assert.equal(changed.json<FlagDefinition>().enabled, false);
    assert.equal(changed.json<FlagDefinition>().description, 'New', 'fields not given are kept');

    const deleted = await call('DELETE', `${URL}/checkout.new-flow`);
    assert.equal(deleted.statusCode, 204);
    assertProblem(await call('GET', `${URL}/checkout.new-flow`), 404, 'FLAG_NOT_FOUND');
    assertProblem(await call('DELETE', `${URL}/checkout.new-flow`), 404, 'FLAG_NOT_FOUND');
    assertProblem(await call('PATCH', `${URL}/nope`, { enabled: true }), 404, 'FLAG_NOT_FOUND');

    const { rows } = await tdb.database.pool.query<{
      action: string;
      data: Record<string, unknown>;
    }>(
      `select action, data from gw_audit_event where subject_type = 'feature_flag'
        and subject_id = 'checkout.new-flow' order by seq`,
    );
    assert.deepEqual(
      rows.map((r) => r.action),
      ['admin.flag.create', 'admin.flag.update', 'admin.flag.delete'],
    );
    assert.deepEqual(Object.keys(rows[1]?.data.changes ?? {}).sort(), ['enabled', 'environments']);
  });

  test('bad input is refused with 4xx problems and nothing is stored', async () => {
    for (const key of ['Bad Key', '1abc', 'a..b', 'ends-', '', 'x'.repeat(101), 'ü']) {
      assertProblem(await call('POST', URL, { key }), 422, 'VALIDATION_FAILED');
    }
    for (const percentage of [-1, 100.01, 1000, '50']) {
      assertProblem(
        await call('POST', URL, {
          key: 'bad.pct',
          environments: { production: { rollout: { variant: 'on', percentage } } },
        }),
        422,
        'VALIDATION_FAILED',
      );
    }
    const wrongTypes: Record<string, unknown>[] = [
      { key: 'bad.types', enabled: 'yes' },
      { key: 'bad.types', type: 'date' },
      { key: 'bad.types', overrides: [{ userId: 'not-a-uuid', variant: 'on' }] },
      { key: 'bad.types', variants: [] },
      { key: 'bad.types', description: 42 },
      { key: 42 },
    ];
    for (const body of wrongTypes)
      assertProblem(await call('POST', URL, body), 422, 'VALIDATION_FAILED');
    const inconsistent: [Record<string, unknown>, string][] = [
      [{ key: 'bad.env', environments: { qa: { defaultVariant: 'on' } } }, '/body/environments/qa'],
      [{ key: 'bad.variant', defaultVariant: 'maybe' }, '/body/defaultVariant'],
      [
        { key: 'bad.value', type: 'string', variants: { a: true }, defaultVariant: 'a' },
        '/body/variants/a',
      ],
      [
        { key: 'bad.number', type: 'number', variants: { a: '1' }, defaultVariant: 'a' },
        '/body/variants/a',
      ],
      [{ key: 'bad.nodefault', type: 'string', variants: { a: 'a' } }, '/body/defaultVariant'],
      [
        {
          key: 'bad.rollout',
          environments: { staging: { rollout: { variant: 'x', percentage: 5 } } },
        },
        '/body/environments/staging/rollout/variant',
      ],
      [
        {
          key: 'bad.twice',
          overrides: [
            { userId: '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b', variant: 'on' },
            { userId: '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b', variant: 'off' },
          ],
        },
        '/body/overrides/1/userId',
      ],
      [{ key: 'bad.name', variants: { On: true, off: false } }, '/body/variants/On'],
    ];
    for (const [body, path] of inconsistent) {
      const problem = assertProblem(await call('POST', URL, body), 422, 'FLAG_DEFINITION_INVALID');
      assert.ok(
        problem.errors?.some((e) => e.path === path),
        `${JSON.stringify(body)}: ${JSON.stringify(problem.errors)}`,
      );
    }
    assert.equal((await call('POST', URL, { key: 'dup.key' })).statusCode, 201);
    assertProblem(await call('POST', URL, { key: 'dup.key' }), 409, 'FLAG_KEY_TAKEN');
    assertProblem(await call('PATCH', `${URL}/dup.key`, {}), 422, 'VALIDATION_FAILED');
    assertProblem(
      await call('PATCH', `${URL}/dup.key`, { type: 'number' }),
      422,
      'FLAG_DEFINITION_INVALID',
    );
    assertProblem(
      await call('PATCH', `${URL}/dup.key`, { environments: { prod: {} } }),
      422,
      'FLAG_DEFINITION_INVALID',
    );
    assertProblem(await call('GET', `${URL}?sort=colour`), 422, 'INVALID_LIST_QUERY');
    assertProblem(await call('GET', `${URL}?cursor=forged`), 400, 'INVALID_CURSOR');
    const { rows } = await tdb.database.pool.query<{ key: string; type: string }>(
      `select key, type from gw_feature_flag where key like 'bad.%' or key = 'dup.key'`,
    );
    assert.deepEqual(rows, [{ key: 'dup.key', type: 'boolean' }], 'only the valid flag, unchanged');
  });

  test('only holders of flags:admin: 401 anonymous, 403 for a user', async () => {
    const routes: ['GET' | 'POST' | 'PATCH' | 'DELETE', string, unknown][] = [
      ['GET', URL, undefined],
      ['GET', `${URL}/dup.key`, undefined],
      ['POST', URL, { key: 'sneaky' }],
      ['PATCH', `${URL}/dup.key`, { enabled: false }],
      ['DELETE', `${URL}/dup.key`, undefined],
    ];
    for (const [method, url, body] of routes) {
      assertProblem(await call(method, url, body, {}), 401, 'UNAUTHORIZED');
      assertProblem(await call(method, url, body, member), 403, 'FORBIDDEN');
    }
    assert.equal((await call('GET', `${URL}/dup.key`)).json<{ enabled: boolean }>().enabled, true);
    assertProblem(await call('GET', `${URL}/sneaky`), 404, 'FLAG_NOT_FOUND');
  });
});

describe('feature flags: evaluation', () => {
  const flag = (over: Partial<FlagDefinition> = {}): FlagDefinition => ({
    key: 'eval.flag',
    description: '',
    type: 'boolean',
    enabled: true,
    variants: { on: true, off: false },
    defaultVariant: 'off',
    environments: {},
    overrides: [],
    ...over,
  });

  test('rollouts are stable per user, follow the percentage, grow monotonically and differ per flag', () => {
    const users = uuids(20_000);
    for (const u of users.slice(0, 100))
      assert.equal(
        rolloutBucket('a.flag', u),
        rolloutBucket('a.flag', u),
        'the same user, the same bucket',
      );
    for (const pct of [0, 1, 25, 50, 99.5, 100]) {
      const hits = users.filter((u) => inRollout('a.flag', u, pct)).length;
      const n = users.length;
      const p = pct / 100;
      // Within 4.5 standard deviations of a binomial draw (the test fails about once in 150,000 runs).
      const sigma = Math.sqrt(n * p * (1 - p));
      assert.ok(
        Math.abs(hits - n * p) <= 4.5 * sigma + 1e-9,
        `${String(pct)} %: ${String(hits)} of ${String(n)}`,
      );
    }
    const at10 = users.filter((u) => inRollout('a.flag', u, 10));
    assert.ok(
      at10.every((u) => inRollout('a.flag', u, 20)),
      'raising the percentage keeps everyone in',
    );
    // Two flags at 50 %: independent populations overlap on about a quarter of the users.
    const both = users.filter(
      (u) => inRollout('a.flag', u, 50) && inRollout('b.flag', u, 50),
    ).length;
    const sigma = Math.sqrt(users.length * 0.25 * 0.75);
    assert.ok(Math.abs(both - users.length / 4) <= 4.5 * sigma, `overlap ${String(both)}`);
    // Buckets cover the whole range evenly (chi-square over 10 deciles, 9 degrees of freedom:
    // above 33.7 once in 10,000 runs).
    const deciles = new Array<number>(10).fill(0);
    for (const u of users) deciles[Math.floor(rolloutBucket('a.flag', u) / 1_000)]! += 1;
    const expected = users.length / 10;
    const chi2 = deciles.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    assert.ok(chi2 < 33.7, `chi2 ${chi2.toFixed(1)} over ${JSON.stringify(deciles)}`);
  });

  test('settings: FLAGS_CACHE_TTL at most 1h, FLAGS_LOCAL_TTL_MS within 0–60000, both listed at once', () => {
    assert.throws(
      () => testConfig({ FLAGS_CACHE_TTL: '2h', FLAGS_LOCAL_TTL_MS: '-1' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        ['FLAGS_LOCAL_TTL_MS'].every((k) => error.issues.some((i) => i.key === k)),
    );
    assert.throws(
      () => testConfig({ FLAGS_CACHE_TTL: '2h' }),
      (error: unknown) =>
        error instanceof ConfigError && error.issues.some((i) => i.key === 'FLAGS_CACHE_TTL'),
    );
    assert.deepEqual(flagSettings(testConfig({ FLAGS_CACHE_TTL: '5m' }).modules.flags), {
      localTtlMs: 1_000,
      cacheTtlSeconds: 300,
    });
  });

  test('per-environment defaults, rollouts, overrides and the disabled switch', () => {
    const user = randomUUID();
    const f = flag({
      environments: {
        development: { defaultVariant: 'on' },
        staging: { rollout: { variant: 'on', percentage: 100 } },
        production: { defaultVariant: 'off', rollout: { variant: 'on', percentage: 0 } },
      },
      overrides: [{ userId: user, variant: 'on' }],
    });
    const other = randomUUID();
    assert.deepEqual(evaluateFlag(f, 'development', other), {
      reason: 'DEFAULT',
      variant: 'on',
      value: true,
    });
    assert.deepEqual(evaluateFlag(f, 'test', other), {
      reason: 'DEFAULT',
      variant: 'off',
      value: false,
    });
    assert.deepEqual(evaluateFlag(f, 'staging', other), {
      reason: 'SPLIT',
      variant: 'on',
      value: true,
    });
    assert.deepEqual(
      evaluateFlag(f, 'staging', null),
      { reason: 'DEFAULT', variant: 'off', value: false },
      'anonymous: no rollout',
    );
    assert.deepEqual(evaluateFlag(f, 'production', other), {
      reason: 'SPLIT',
      variant: 'off',
      value: false,
    });
    assert.deepEqual(evaluateFlag(f, 'production', user), {
      reason: 'TARGETING_MATCH',
      variant: 'on',
      value: true,
    });
    assert.equal(evaluateFlag({ ...f, enabled: false }, 'development', user).reason, 'DISABLED');
  });

  describe('through the platform (OpenFeature provider on the database)', () => {
    let tdb: TestDatabase;
    let a: Instance;
    before(async () => {
      tdb = await createTestDatabase();
      a = await startInstance(tdb, { FLAGS_LOCAL_TTL_MS: '60000' });
      const insert = (f: FlagDefinition) =>
        tdb.database.pool.query(
          `insert into gw_feature_flag (key, type, enabled, variants, default_variant, environments, overrides)
           values ($1, $2, $3, $4, $5, $6, $7)`,
          [
            f.key,
            f.type,
            f.enabled,
            JSON.stringify(f.variants),
            f.defaultVariant,
            JSON.stringify(f.environments),
            JSON.stringify(f.overrides),
          ],
        );
      await insert(
        flag({
          key: 'env.flag',
          environments: { test: { defaultVariant: 'on' }, production: { defaultVariant: 'off' } },
        }),
      );
      await insert(
        flag({
          key: 'half.flag',
          environments: { test: { rollout: { variant: 'on', percentage: 50 } } },
        }),
      );
      await insert(flag({ key: 'off.flag', enabled: false, defaultVariant: 'on' }));
      await insert(
        flag({
          key: 'ui.limit',
          type: 'number',
          variants: { low: 10, high: 100 },
          defaultVariant: 'low',
          environments: { test: { defaultVariant: 'high' } },
        }),
      );
    });
    after(async () => {
      await a.close();
      await tdb.drop();
    });

    test('isEnabled, getValue and details: env defaults, rollout per user, and the caller’s default on errors', async () => {
      const flags = featureFlags(a.platform);
      assert.equal(await flags.isEnabled('env.flag'), true, 'APP_ENV=test: its default is on');
      assert.equal(await flags.isEnabled('env.flag', { userId: randomUUID() }), true);
      assert.equal(await flags.isEnabled('off.flag', randomUUID()), false, 'disabled: the default');
      assert.equal((await flags.details('off.flag', true)).reason, 'DISABLED');
      assert.equal(await flags.getValue('ui.limit', 1), 100);
      const missing = await flags.details('no.such.flag', false);
      assert.equal(missing.value, false);
      assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
      const mismatch = await flags.details('ui.limit', 'x');
      assert.equal(mismatch.value, 'x');
      assert.equal(mismatch.errorCode, 'TYPE_MISMATCH');
      assert.equal(await flags.isEnabled('ui.limit'), false);
      // The OpenFeature client itself, with the user as targeting key.
      const users = uuids(400);
      const answers = await Promise.all(
        users.map((u) => flags.client.getBooleanValue('half.flag', false, { targetingKey: u })),
      );
      assert.deepEqual(
        answers,
        users.map((u) => inRollout('half.flag', u, 50)),
      );
      const on = answers.filter(Boolean).length;
      assert.ok(on > 120 && on < 280, `${String(on)} of 400 at 50 %`);
      assert.deepEqual(
        await Promise.all(users.map((u) => flags.isEnabled('half.flag', u))),
        answers,
        'the same user gets the same answer every time',
      );
    });

    test('the provider answers for its own APP_ENV (production here, test in the app)', async () => {
      const store = new FlagStore({
        db: tdb.database.db,
        cache: a.platform.cache,
        logger: silent,
        settings: flagSettings(undefined),
      });
      const production = new DatabaseFlagProvider(store, 'production');
      const resolved = await production.resolveBooleanEvaluation('env.flag', true, {});
      assert.deepEqual(resolved, { value: false, variant: 'off', reason: 'DEFAULT' });
      const development = new DatabaseFlagProvider(store, 'development');
      assert.equal(
        (await development.resolveBooleanEvaluation('env.flag', true, {})).value,
        false,
        'no rule: the flag’s default',
      );
      assert.equal(await featureFlags(a.platform).isEnabled('env.flag'), true);
    });
  });
});

describe('feature flags: a change reaches every process', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  const setDefault = async (
    app: FastifyInstance,
    headers: Record<string, string>,
    key: string,
    variant: string,
  ) => {
    const res = await app.inject({
      method: 'PATCH',
      url: `${URL}/${key}`,
      headers,
      payload: { environments: { test: { defaultVariant: variant } } },
    });
    assert.equal(res.statusCode, 200, res.body);
  };

  test(
    'two instances sharing PostgreSQL and Redis: a change on one is seen by the other within FLAGS_LOCAL_TTL_MS',
    { ...redisOk },
    async () => {
      const prefix = `gw-flags-${randomBytes(4).toString('hex')}:`;
      const settings = { FLAGS_LOCAL_TTL_MS: '300', FLAGS_CACHE_TTL: '1h' };
      const a = await startInstance(tdb, settings, prefix);
      const b = await startInstance(tdb, settings, prefix);
      try {
        assert.equal(a.platform.cache.backend, 'redis');
        const { headers } = await signInAdmin(a.app, { tdb, config: a.config });
        const created = await a.app.inject({
          method: 'POST',
          url: URL,
          headers,
          payload: { key: 'shared.flag' },
        });
        assert.equal(created.statusCode, 201, created.body);
        const user = randomUUID();
        assert.equal(await featureFlags(b.platform).isEnabled('shared.flag', user), false);
        await setDefault(a.app, headers, 'shared.flag', 'on');
        assert.equal(
          await featureFlags(a.platform).isEnabled('shared.flag', user),
          true,
          'at once where it changed',
        );
        const tookOn = await within(5_000, 'b sees on', () =>
          featureFlags(b.platform).isEnabled('shared.flag', user),
        );
        // And back: the other direction, through the other instance's admin API.
        const { headers: other } = await signInAdmin(b.app, { tdb, config: b.config });
        await setDefault(b.app, other, 'shared.flag', 'off');
        const tookOff = await within(
          5_000,
          'a sees off',
          async () => !(await featureFlags(a.platform).isEnabled('shared.flag', user)),
        );
        // With a 1 h cache TTL only the invalidation explains it (the bound is the local TTL).
        process.stdout.write(
          `# seen by the other instance after ${tookOn.toFixed(0)} and ${tookOff.toFixed(0)} ms\n`,
        );
        const deleted = await b.app.inject({
          method: 'DELETE',
          url: `${URL}/shared.flag`,
          headers: other,
        });
        assert.equal(deleted.statusCode, 204);
        await within(
          3_000,
          'a sees it gone',
          async () =>
            (await featureFlags(a.platform).details('shared.flag', true)).errorCode ===
            ErrorCode.FLAG_NOT_FOUND,
        );
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  test('without Redis: a change is seen at once by its own process, by others after FLAGS_CACHE_TTL', async () => {
    const settings = { FLAGS_LOCAL_TTL_MS: '60000', FLAGS_CACHE_TTL: '2s' };
    const a = await startInstance(tdb, settings);
    const b = await startInstance(tdb, settings);
    try {
      assert.equal(a.platform.cache.backend, 'memory');
      const { headers } = await signInAdmin(a.app, { tdb, config: a.config });
      const created = await a.app.inject({
        method: 'POST',
        url: URL,
        headers,
        payload: { key: 'local.flag' },
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(await featureFlags(a.platform).isEnabled('local.flag'), false);
      assert.equal(await featureFlags(b.platform).isEnabled('local.flag'), false);
      await setDefault(a.app, headers, 'local.flag', 'on');
      assert.equal(
        await featureFlags(a.platform).isEnabled('local.flag'),
        true,
        'its own process: at once, whatever the local TTL',
      );
      assert.equal(
        await featureFlags(b.platform).isEnabled('local.flag'),
        false,
        'the other still has its copy',
      );
    } finally {
      await a.close();
      await b.close();
    }
    // Each process's local copy outlives the cache TTL here (60 s), so the bound shown is with
    // FLAGS_LOCAL_TTL_MS below it: a fresh pair, local TTL 200 ms, cache TTL 1 s.
    const c = await startInstance(tdb, { FLAGS_LOCAL_TTL_MS: '200', FLAGS_CACHE_TTL: '1s' });
    const d = await startInstance(tdb, { FLAGS_LOCAL_TTL_MS: '200', FLAGS_CACHE_TTL: '1s' });
    try {
      assert.equal(await featureFlags(d.platform).isEnabled('local.flag'), true);
      const { headers } = await signInAdmin(c.app, { tdb, config: c.config });
      await setDefault(c.app, headers, 'local.flag', 'off');
      assert.equal(await featureFlags(c.platform).isEnabled('local.flag'), false);
      const took = await within(
        4_000,
        'd sees off',
        async () => !(await featureFlags(d.platform).isEnabled('local.flag')),
      );
      process.stdout.write(
        `# seen without Redis after ${took.toFixed(0)} ms (cache TTL 1 s + local 200 ms)\n`,
      );
    } finally {
      await c.close();
      await d.close();
    }
  });
});
