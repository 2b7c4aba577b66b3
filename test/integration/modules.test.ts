import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from 'typebox';
import { enabledModules, knownModules } from '../../src/app.ts';
import { ConfigError, loadConfig, maskEnv } from '../../src/platform/config/index.ts';
import { defineJob } from '../../src/platform/jobs/index.ts';
import { defineModule, orderModules } from '../../src/platform/modules/index.ts';
import { testConfig } from '../helpers/app.ts';
import {
  startIdentityHarness,
  signInAdmin,
  createUser,
  signIn,
  bearer,
} from '../helpers/identity.ts';
import { eventually, startJobsHarness } from '../helpers/jobs-harness.ts';

const shop = defineModule({
  name: 'shop',
  description: 'A shop.',
  config: Type.Object({
    SHOP_CURRENCY: Type.Enum(['EUR', 'USD'], { default: 'EUR' }),
    SHOP_MAX_ITEMS: Type.Integer({ default: 10, minimum: 1 }),
    SHOP_API_KEY: Object.assign(Type.String({ default: '' }), {
      'x-config': { group: 'Shop', secret: true },
    }),
  }),
});

describe('modules: shape and order', () => {
  test('dependsOn orders registration and refuses unknown dependencies and cycles', () => {
    const a = defineModule({ name: 'a', description: 'a', dependsOn: ['b'] });
    const b = defineModule({ name: 'b', description: 'b' });
    assert.deepEqual(
      orderModules([a, b]).map((m) => m.name),
      ['b', 'a'],
    );
    assert.throws(() => orderModules([a]), /module a depends on b, which is not enabled/);
    const c = defineModule({ name: 'c', description: 'c', dependsOn: ['d'] });
    const d = defineModule({ name: 'd', description: 'd', dependsOn: ['c'] });
    assert.throws(() => orderModules([c, d]), /cycle: c → d → c/);
  });

  test('a module setting must carry its prefix, a permission must be resource:action', () => {
    assert.throws(
      () =>
        defineModule({
          name: 'shop',
          description: 'x',
          config: Type.Object({ CURRENCY: Type.String() }),
        }),
      /must be UPPER_SNAKE and start with SHOP_/,
    );
    assert.throws(
      () =>
        defineModule({
          name: 'shop',
          description: 'x',
          permissions: [{ name: 'orders', description: 'x' }],
        }),
      /not resource:action/,
    );
  });

  test('the platform modules come first, identity before the jobs API and the permission catalogue', () => {
    const names = enabledModules(testConfig(), []).map((m) => m.name);
    assert.deepEqual(names, [
      'identity',
      'jobs',
      'events',
      'audit',
      'webhooks',
      'files',
      'storage',
      'realtime',
      'flags',
      'permissions',
    ]);
    const dev = enabledModules(testConfig({ APP_ENV: 'development' }), []).map((m) => m.name);
    assert.ok(dev.includes('dev-mail'), 'the development mailbox is a module of development');
    assert.ok(knownModules().some((m) => m.name === 'identity'));
  });
});

describe('modules: settings', () => {
  test('a module gets its parsed, frozen slice; its keys are validated with the platform’s', () => {
    const config = loadConfig(
      { APP_ENV: 'test', SHOP_MAX_ITEMS: '25', SHOP_API_KEY: 'k-123' },
      { modules: [shop] },
    );
    assert.deepEqual(config.modules.shop, {
      SHOP_CURRENCY: 'EUR',
      SHOP_MAX_ITEMS: 25,
      SHOP_API_KEY: 'k-123',
    });
    assert.ok(Object.isFrozen(config.modules.shop));
    const masked = maskEnv(config.vars, { vars: config.moduleVars, slices: [shop] });
    assert.equal(masked.SHOP_API_KEY, '********');
    assert.equal(masked.SHOP_MAX_ITEMS, 25);
  });

  test('every problem is listed at once, the platform’s and the modules’', () => {
    try {
      loadConfig(
        { APP_ENV: 'test', PORT: 'x', SHOP_CURRENCY: 'GBP', SHOP_MAX_ITEMS: '0' },
        { modules: [shop] },
      );
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.issues.map((i) => i.key).sort(), [
        'PORT',
        'SHOP_CURRENCY',
        'SHOP_MAX_ITEMS',
      ]);
      assert.match(
        error.issues.find((i) => i.key === 'SHOP_CURRENCY')?.message ?? '',
        /must be one of: EUR, USD/,
      );
    }
  });
});

describe('modules: jobs get the platform', () => {
  test('a handler reaches the platform’s services through ctx.platform', async (t) => {
    const seen: string[] = [];
    const probe = defineJob({
      name: 'test.platform-probe',
      payload: Type.Object({}),
      handler: async (_payload, ctx) => {
        seen.push(
          ctx.platform.cache.backend,
          typeof ctx.platform.mail.send,
          typeof ctx.platform.upstream.target,
          String(ctx.platform.database.db === ctx.db),
        );
        await ctx.platform.cache.set(ctx.platform.cache.key('probe'), 'ok', {
          ttlSeconds: 60,
        });
        return { ok: true };
      },
    });
    const h = await startJobsHarness([probe]);
    t.after(() => h.close());
    await h.jobs.send(probe, {});
    await eventually('the probe job ran', () => Promise.resolve(seen.length > 0));
    assert.deepEqual(seen, ['memory', 'function', 'function', 'true']);
    assert.equal(
      await h.app.platform.cache.get(h.app.platform.cache.key('probe')),
      'ok',
      'the job used the same cache as the app',
    );
  });
});

describe('modules: GET /api/v1/admin/permissions', () => {
  test('lists every declared permission with its module and default roles, for roles:read', async (t) => {
    const h = await startIdentityHarness();
    t.after(() => h.close());
    const anonymous = await h.app.inject({ method: 'GET', url: '/api/v1/admin/permissions' });
    assert.equal(anonymous.statusCode, 401);
    const user = await createUser(h);
    const tokens = await signIn(h.app, user);
    const plain = await h.app.inject({
      method: 'GET',
      url: '/api/v1/admin/permissions',
      headers: bearer(tokens.accessToken),
    });
    assert.equal(plain.statusCode, 403);
    const { headers } = await signInAdmin(h.app, h);
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/admin/permissions', headers });
    assert.equal(res.statusCode, 200);
    const items = res.json<{
      items: { name: string; module: string; defaultRoles: string[] }[];
    }>().items;
    assert.deepEqual(
      items.map((i) => i.name),
      [
        'audit:export',
        'audit:read',
        'files:admin',
        'flags:admin',
        'jobs:admin',
        'roles:admin',
        'roles:read',
        'users:admin',
        'users:read',
        'webhooks:admin',
        'webhooks:manage',
      ],
    );
    assert.deepEqual(
      items.find((i) => i.name === 'jobs:admin'),
      {
        ...items.find((i) => i.name === 'jobs:admin'),
        module: 'jobs',
        defaultRoles: ['admin'],
      },
    );
  });
});
