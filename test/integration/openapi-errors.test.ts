import type { InjectOptions } from 'fastify';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { registeredRoutes } from '../../src/platform/http/index.ts';
import { MAIL_JOB } from '../../src/platform/mail/index.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import {
  bearer,
  createUser,
  login,
  signIn,
  signInAdmin,
  startIdentityHarness,
} from '../helpers/identity.ts';
import type { MailHarness } from '../helpers/mail.ts';

interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema?: { default?: unknown } }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>> };

/**
 * What each hook the platform attaches to routes can answer, written down here independently of
 * the OpenAPI generator (src/platform/http/route-errors.ts): a new hook fails the walk below
 * until it is listed, and what it answers then has to be documented on every route carrying it.
 */
const HOOK_STATUSES: Record<string, readonly number[]> = {
  'onRequest:authenticate': [401],
  'onRequest:apiLimit': [429],
  'onRequest:requireMetricsToken': [401],
  'preValidation:check': [401, 403],
  'preHandler:ownLimit': [429, 503],
  'preHandler:claim': [400, 409, 422],
  // A route's own hook: what it throws is the route's to declare (`schema.errorCodes`).
  'preHandler:preHandler': [],
};
const REFUSING_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const;
/** What every route can answer: the arrival check, NUL in the user agent, errors, overload. */
const EVERY_ROUTE = [414, 422, 500, 503];
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const template = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('OpenAPI: every error a route can answer is documented (issue 12)', () => {
  let h: MailHarness;
  let doc: Doc;
  let admin: Record<string, string>;
  let user: Record<string, string>;
  before(async () => {
    h = await startIdentityHarness({
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      APP_ENV: 'development',
      RATE_LIMIT_ENABLED: 'true',
      METRICS_TOKEN: 'metrics-token-for-tests-0123456789',
    });
    doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<Doc>();
    admin = (await signInAdmin(h.app, h)).headers;
    user = bearer((await signIn(h.app, await createUser(h))).accessToken);
  });
  after(() => h.close());

  const documented = (method: string, path: string): string[] =>
    Object.keys(doc.paths[path]?.[method.toLowerCase()]?.responses ?? {});

  /** Sends the request and checks its status is one the document gives for `path`. */
  async function provoke(path: string, options: InjectOptions, expected: number): Promise<void> {
    const method = options.method ?? 'GET';
    const res = await h.app.inject(options);
    assert.equal(res.statusCode, expected, `${method} ${path}: ${res.body}`);
    assert.ok(
      documented(method, path).includes(String(expected)),
      `${method} ${path} answered ${String(expected)}, documented: ${documented(method, path).join(', ')}`,
    );
  }

  test('regression: for every route, each status its hooks can give is documented', () => {
    const routes = registeredRoutes(h.app).filter((r) => r.schema?.hide !== true);
    let walked = 0;
    for (const route of routes) {
      const path = template(route.url);
      for (const method of [route.method].flat()) {
        if (method === 'HEAD' || doc.paths[path]?.[method.toLowerCase()] === undefined) continue;
        walked += 1;
        const statuses = new Set(EVERY_ROUTE);
        if (BODY_METHODS.has(method)) for (const s of [400, 413, 415, 422]) statuses.add(s);
        if (route.url.includes(':')) for (const s of [400, 404]) statuses.add(s);
        for (const phase of REFUSING_HOOKS) {
          for (const hook of [route[phase] ?? []].flat()) {
            const known = HOOK_STATUSES[`${phase}:${hook.name}`];
            assert.ok(
              known,
              `${method} ${route.url}: ${phase} hook "${hook.name}" is not listed in HOOK_STATUSES`,
            );
            for (const s of known) statuses.add(s);
          }
        }
        const have = documented(method, path);
        for (const status of statuses)
          assert.ok(have.includes(String(status)), `${method} ${path} does not document ${status}`);
        for (const status of have.filter((s) => s >= '400')) {
          const content = doc.paths[path]?.[method.toLowerCase()]?.responses[status]?.content;
          assert.ok(
            content?.['application/problem+json'],
            `${method} ${path} ${status} is a problem`,
          );
        }
      }
    }
    assert.ok(walked >= 50, `walked ${String(walked)} operations`);
  });

  test('regression: /metrics and /health document their 200 and their 401', () => {
    for (const path of ['/metrics', '/health']) {
      for (const status of ['200', '401']) assert.ok(documented('GET', path).includes(status));
    }
    assert.ok(documented('GET', '/dev/mailbox/{id}/html').includes('200'));
  });

  test('regression: a parameter with a default is not required in the document', () => {
    const limit = doc.paths['/api/v1/auth/login-history']?.get?.parameters?.find(
      (p) => p.name === 'limit',
    );
    assert.equal(limit?.schema?.default, 20);
    assert.notEqual(limit?.required, true);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const p of operation.parameters ?? []) {
          if (p.schema?.default !== undefined && p.in !== 'path')
            assert.notEqual(p.required, true, `${method} ${path} ${p.name}`);
        }
      }
    }
  });

  test('every integer and number input has a minimum and a maximum', () => {
    const unbounded: string[] = [];
    const walk = (schema: unknown, where: string): void => {
      if (typeof schema !== 'object' || schema === null) return;
      const s = schema as Record<string, unknown>;
      if (
        (s.type === 'integer' || s.type === 'number') &&
        (s.minimum === undefined || s.maximum === undefined)
      )
        unbounded.push(where);
      for (const [key, value] of Object.entries(s)) {
        if (key === 'examples' || key === 'default') continue;
        if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${where}/${key}/${i}`));
        else walk(value, `${where}/${key}`);
      }
    };
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        for (const p of operation.parameters ?? []) walk(p.schema, `${where} ${p.name}`);
        walk((operation as { requestBody?: unknown }).requestBody, `${where} body`);
      }
    }
    assert.deepEqual(unbounded, []);
  });

  test('409 is documented only where a route can answer it', () => {
    const with409 = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, op]) => op.responses['409'] !== undefined)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    assert.ok(with409.includes('POST /api/v1/admin/roles'));
    assert.ok(!with409.includes('GET /api/v1/auth/sessions'));
    assert.ok(!with409.includes('POST /api/v1/auth/login'));
  });

  test('provoked answers are documented: 400, 401, 403, 404, 409, 414, 422', async () => {
    const id = randomUUID();
    await provoke('/api/v1/auth/sessions', { method: 'GET', url: '/api/v1/auth/sessions' }, 401);
    await provoke(
      '/api/v1/auth/sessions',
      { method: 'GET', url: '/api/v1/auth/sessions', headers: bearer('a.b.c') },
      401,
    );
    await provoke('/metrics', { method: 'GET', url: '/metrics' }, 401);
    await provoke('/health', { method: 'GET', url: '/health' }, 401);
    await provoke('/api/v1/admin/users', { method: 'GET', url: '/api/v1/admin/users' }, 401);
    await provoke(
      '/api/v1/admin/users',
      { method: 'GET', url: '/api/v1/admin/users', headers: user },
      403,
    );
    await provoke(
      '/api/v1/admin/users/{id}',
      { method: 'GET', url: `/api/v1/admin/users/${id}`, headers: admin },
      404,
    );
    await provoke(
      '/api/v1/auth/sessions/{id}',
      { method: 'DELETE', url: `/api/v1/auth/sessions/${id}`, headers: user },
      404,
    );
    await provoke(
      '/api/v1/jobs/{id}',
      { method: 'GET', url: `/api/v1/jobs/${id}`, headers: user },
      404,
    );
    await provoke(
      '/api/v1/admin/queues/{queue}/dead/{id}',
      { method: 'GET', url: `/api/v1/admin/queues/${MAIL_JOB}/dead/${id}`, headers: admin },
      404,
    );
    await provoke('/dev/mailbox/{id}', { method: 'GET', url: `/dev/mailbox/${id}` }, 404);
    const role = { name: `r${String(Date.now())}`, permissions: [] };
    await provoke(
      '/api/v1/admin/roles',
      { method: 'POST', url: '/api/v1/admin/roles', headers: admin, payload: role },
      201,
    );
    await provoke(
      '/api/v1/admin/roles',
      { method: 'POST', url: '/api/v1/admin/roles', headers: admin, payload: role },
      409,
    );
    await provoke(
      '/api/v1/admin/users/{id}',
      { method: 'GET', url: '/api/v1/admin/users/%E0%A4%A', headers: admin },
      400,
    );
    await provoke(
      '/api/v1/admin/users/{id}',
      { method: 'GET', url: `/api/v1/admin/users/${'a'.repeat(300)}`, headers: admin },
      414,
    );
    await provoke(
      '/api/v1/auth/login-history',
      { method: 'GET', url: '/api/v1/auth/login-history?limit=Infinity', headers: user },
      422,
    );
    await provoke(
      '/health/live',
      { method: 'GET', url: '/health/live', headers: { 'user-agent': '\u0000' } },
      422,
    );
    await provoke(
      '/api/v1/auth/logout',
      {
        method: 'POST',
        url: '/api/v1/auth/logout',
        headers: { ...user, 'content-type': 'text/plain' },
        payload: 'x',
      },
      415,
    );
  });

  test('provoked answers are documented: 429 (the sign-in limit per address)', async () => {
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) {
      last = (await login(h.app, { login: 'nobody@example.com', password: 'wrong' })).statusCode;
      assert.ok(documented('POST', '/api/v1/auth/login').includes(String(last)), String(last));
    }
    assert.equal(last, 429);
  });
});
