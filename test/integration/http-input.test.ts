import type { InjectOptions } from 'fastify';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAIL_JOB } from '../../src/platform/mail/index.ts';
import { TEST_JWT_PRIVATE_KEY, buildTestApp } from '../helpers/app.ts';
import { createUser, signIn, signInAdmin, bearer } from '../helpers/identity.ts';
import { startIdentityHarness } from '../helpers/identity.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { assertProblem } from '../helpers/problem.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

type Inject = InjectOptions;

/** The response is 422 VALIDATION_FAILED with an `errors` entry at exactly `path`. */
function assertFieldRefused(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  path: string,
  message: RegExp,
): void {
  const body = assertProblem(res, 422, 'VALIDATION_FAILED');
  const entry = body.errors?.find((e) => e.path === path);
  assert.ok(entry, `an error at ${path} in ${res.body}`);
  assert.match(entry.message, message);
}

const NUL = /NUL \(U\+0000\)/;
const FINITE = /finite/;

describe('HTTP input contract on the real routes (issue 12)', () => {
  let h: MailHarness;
  let admin: Record<string, string>;
  let user: Record<string, string>;
  before(async () => {
    h = await startIdentityHarness({
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      APP_ENV: 'development',
    });
    admin = (await signInAdmin(h.app, h)).headers;
    user = bearer((await signIn(h.app, await createUser(h))).accessToken);
  });
  after(() => h.close());

  const send = (options: Inject) => h.app.inject(options);
  const count = async (sql: string, values: unknown[] = []) =>
    Number((await h.tdb.database.pool.query<{ n: string }>(sql, values)).rows[0]?.n);

  test('regression: NUL in a JSON body is 422 naming the field, not a 500 from PostgreSQL (login)', async () => {
    const res = await send({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"login":"\\u0000","password":"whatever"}',
    });
    assertFieldRefused(res, '/body/login', NUL);
  });

  test('regression: NUL in admin user and audit filters, a role description, the dev mailbox filter and a path parameter is 422', async () => {
    const cases: [Inject, string][] = [
      [{ method: 'GET', url: '/api/v1/admin/users?email=a%00b', headers: admin }, '/query/email'],
      [
        { method: 'GET', url: '/api/v1/admin/users?username[contains]=%00', headers: admin },
        '/query/username[contains]',
      ],
      [
        { method: 'GET', url: '/api/v1/admin/audit-events?action=%00', headers: admin },
        '/query/action',
      ],
      [
        {
          method: 'POST',
          url: '/api/v1/admin/roles',
          headers: admin,
          payload: { name: 'nul-role', description: 'a\u0000b', permissions: [] },
        },
        '/body/description',
      ],
      [{ method: 'GET', url: '/dev/mailbox?to=x%00y', headers: admin }, '/query/to'],
      [{ method: 'GET', url: '/api/v1/admin/users/%00', headers: admin }, '/params/id'],
      [
        {
          method: 'PATCH',
          url: '/api/v1/admin/roles/00000000-0000-7000-8000-000000000000',
          headers: admin,
          payload: { description: '\u0000' },
        },
        '/body/description',
      ],
    ];
    for (const [options, path] of cases) assertFieldRefused(await send(options), path, NUL);
    assert.equal(await count(`select count(*) as n from gw_role where name = 'nul-role'`), 0);
  });

  test('regression: NUL in a property name or in the user agent is 422 too', async () => {
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'content-type': 'application/json' },
        payload: '{"login":"a","password":"b","\\u0000x":1}',
      }),
      '/body/\u0000x',
      NUL,
    );
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'user-agent': 'agent\u0000' },
        payload: { login: 'a', password: 'b' },
      }),
      '/headers/user-agent',
      NUL,
    );
  });

  test('regression: NUL in an unknown property (dropped by validation) or deep in an array is 422, the mail not sent', async () => {
    const jobs = () => count('select count(*) as n from pgboss.job where name = $1', [MAIL_JOB]);
    const { email } = await createUser(h);
    const before = await jobs();
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/auth/password/forgot',
        headers: { 'content-type': 'application/json' },
        payload: `{"email":"${email}","extra":{"deep":["ok","a\\u0000"]}}`,
      }),
      '/body/extra/deep/1',
      NUL,
    );
    assert.equal(await jobs(), before);
  });

  test('a body nested far deeper than the call stack is refused as a problem, not a 500', async () => {
    const depth = 400_000; // within the 1 MiB body limit
    const res = await send({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: `{"login":"a","password":"b","x":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    });
    assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body.slice(0, 200)}`);
  });

  test('a NUL spelled out (an escaped backslash, then "u0000") is text, not a NUL: accepted', async () => {
    const res = await send({
      method: 'GET',
      url: `/api/v1/admin/users?email=${encodeURIComponent('\\u0000')}`,
      headers: admin,
    });
    assert.equal(res.statusCode, 200, res.body);
  });

  test('regression: ?limit=Infinity, -Infinity and 1e309 are 422 on login history, dead letters and the dev mailbox, not a 500', async () => {
    const urls = [
      ['/api/v1/auth/login-history', user],
      [`/api/v1/admin/queues/${MAIL_JOB}/dead`, admin],
      ['/dev/mailbox', admin],
    ] as const;
    for (const [url, headers] of urls) {
      for (const value of ['Infinity', '-Infinity', '1e309', '-1e309']) {
        const res = await send({ method: 'GET', url: `${url}?limit=${value}`, headers });
        assertFieldRefused(res, '/query/limit', FINITE);
      }
      for (const value of ['NaN', '1.5', '0', '1e3', '']) {
        const res = await send({ method: 'GET', url: `${url}?limit=${value}`, headers });
        assertFieldRefused(res, '/query/limit', /./);
      }
      const ok = await send({ method: 'GET', url: `${url}?limit=2`, headers });
      assert.equal(ok.statusCode, 200, ok.body);
    }
  });

  test('regression: JSON bodies are not type-coerced ({"email": true} is 422, {"name": true} creates no role "true")', async () => {
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/auth/verify-email/resend',
        payload: { email: true },
      }),
      '/body/email',
      /string/,
    );
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/admin/roles',
        headers: admin,
        payload: { name: true, permissions: [] },
      }),
      '/body/name',
      /string/,
    );
    assertFieldRefused(
      await send({
        method: 'POST',
        url: '/api/v1/admin/roles',
        headers: admin,
        payload: { name: 'scalar-permissions', permissions: 'users:read' },
      }),
      '/body/permissions',
      /array/,
    );
    assertFieldRefused(
      await send({
        method: 'PATCH',
        url: '/api/v1/admin/users/00000000-0000-7000-8000-000000000000',
        headers: admin,
        payload: { locked: 'true' },
      }),
      '/body/locked',
      /boolean/,
    );
    assert.equal(
      await count(`select count(*) as n from gw_role where name in ('true', 'scalar-permissions')`),
      0,
    );
  });

  test('query strings and path parameters are still coerced from their text', async () => {
    const res = await send({
      method: 'GET',
      url: '/api/v1/auth/login-history?limit=3',
      headers: user,
    });
    assert.equal(res.statusCode, 200, res.body);
    const preview = await send({ method: 'GET', url: '/dev/mail/preview/identity.verify-email' });
    assert.equal(preview.statusCode, 200, preview.body);
  });
});

describe('HTTP input contract on the testkit routes (issue 12)', async () => {
  const { app } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());

  test('regression: body numbers are not coerced from strings, and 1e309 in a body is refused', async () => {
    assertFieldRefused(
      await app.inject({
        method: 'POST',
        url: '/api/v1/echo',
        payload: { name: 'Ada', email: 'ada@example.com', age: '30' },
      }),
      '/body/age',
      /integer/,
    );
    assertFieldRefused(
      await app.inject({
        method: 'POST',
        url: '/api/v1/echo',
        headers: { 'content-type': 'application/json' },
        payload: '{"name":"Ada","email":"ada@example.com","age":1e309}',
      }),
      '/body/age',
      /integer|finite/,
    );
    assertFieldRefused(
      await app.inject({
        method: 'POST',
        url: '/api/v1/echo',
        payload: { name: 12, email: 'ada@example.com' },
      }),
      '/body/name',
      /string/,
    );
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: 'Ada', email: 'ada@example.com', age: 30 },
    });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('a query default still applies and a numeric query is a number', async () => {
    assert.deepEqual((await app.inject({ method: 'GET', url: '/api/v1/items' })).json(), {
      limit: 20,
    });
    assert.deepEqual((await app.inject({ method: 'GET', url: '/api/v1/items?limit=7' })).json(), {
      limit: 7,
    });
    assertFieldRefused(
      await app.inject({ method: 'GET', url: '/api/v1/items?limit=Infinity' }),
      '/query/limit',
      FINITE,
    );
  });

  test('regression: a path that is not valid percent-encoding is a 400 problem, an over-long path parameter a 414 problem', async () => {
    const { app: withParams } = await buildTestApp(
      {},
      {
        setup: (instance) => {
          instance.get('/test/things/:id', async () => ({ ok: true }));
        },
      },
    );
    try {
      const bad = await withParams.inject({ method: 'GET', url: '/test/things/%E0%A4%A' });
      const body = assertProblem(bad, 400, 'BAD_REQUEST');
      assert.doesNotMatch(body.detail, /%E0/);
      assert.equal(bad.headers['x-content-type-options'], 'nosniff');
      const long = await withParams.inject({
        method: 'GET',
        url: `/test/things/${'a'.repeat(300)}`,
      });
      assertProblem(long, 414, 'URI_TOO_LONG');
    } finally {
      await withParams.close();
    }
  });
});
