import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { registerHttpCaching } from '../../src/platform/cache/index.ts';
import { HttpCodes, HttpError } from '../../src/platform/http/index.ts';
import { buildTestApp } from '../helpers/app.ts';

const Things = Type.Object({ items: Type.Array(Type.String()) });

describe('HTTP caching of public GET routes', () => {
  let app: FastifyInstance;
  const items = ['a', 'b'];

  before(async () => {
    ({ app } = await buildTestApp(
      {},
      {
        setup: (scope) => {
          registerHttpCaching(scope);
          scope.get(
            '/things',
            {
              config: { cache: { maxAge: 60, sMaxAge: 300, staleWhileRevalidate: 30 } },
              schema: { response: { 200: Things } },
            },
            async () => ({ items }),
          );
          scope.get<{ Params: { id: string } }>(
            '/things/:id',
            { config: { cache: { maxAge: 60 } } },
            async (request) => {
              if (request.params.id === 'missing')
                throw new HttpError(HttpCodes.ROUTE_NOT_FOUND, { detail: 'no such thing' });
              return { id: request.params.id };
            },
          );
          scope.post('/things', async () => ({ ok: true }));
          scope.get('/plain', async () => ({ ok: true }));
          scope.get('/me', { config: { cache: 'private' } }, async () => ({ user: 1 }));
          scope.get('/cookie', { config: { cache: { maxAge: 60 } } }, async (_request, reply) => {
            reply.header('set-cookie', 'session=abc; HttpOnly');
            return { ok: true };
          });
          scope.get('/versioned', { config: { cache: { maxAge: 5 } } }, async (_request, reply) => {
            reply.header('etag', '"v7"');
            return { version: 7 };
          });
          // Apps register their routes in an encapsulated plugin under /api/v1.
          void scope.register(
            async (child) => {
              child.get('/spots', { config: { cache: { maxAge: 30 } } }, async () => ({ n: 1 }));
            },
            { prefix: '/api/v1' },
          );
          scope.get('/stream', { config: { cache: { maxAge: 5 } } }, async (_request, reply) => {
            reply.type('text/plain');
            return Readable.from(['streamed']);
          });
        },
      },
    ));
  });
  after(() => app.close());

  test('a 200 carries Cache-Control from the route and a strong ETag of the body', async () => {
    const res = await app.inject({ method: 'GET', url: '/things' });
    assert.equal(res.statusCode, 200);
    assert.equal(
      res.headers['cache-control'],
      'public, max-age=60, s-maxage=300, stale-while-revalidate=30',
    );
    const etag = String(res.headers.etag);
    assert.match(etag, /^"[A-Za-z0-9_-]{32}"$/, 'strong: quoted, no W/');
    const again = await app.inject({ method: 'GET', url: '/things' });
    assert.equal(again.headers.etag, etag, 'same bytes, same tag');
  });

  test('If-None-Match with the tag, in a list, weak, or * answers 304 with no body', async () => {
    const { headers } = await app.inject({ method: 'GET', url: '/things' });
    const etag = String(headers.etag);
    for (const ifNoneMatch of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
      const res = await app.inject({
        method: 'GET',
        url: '/things',
        headers: { 'if-none-match': ifNoneMatch },
      });
      assert.equal(res.statusCode, 304, ifNoneMatch);
      assert.equal(res.body, '');
      assert.equal(res.headers.etag, etag);
      assert.equal(
        res.headers['cache-control'],
        'public, max-age=60, s-maxage=300, stale-while-revalidate=30',
      );
      assert.equal(res.headers['content-type'], undefined);
      assert.equal(res.headers['content-length'], undefined);
      assert.ok(res.headers['x-request-id'], 'platform headers still set');
    }
  });

  test('another tag, or a changed body, answers 200 with the full body', async () => {
    const first = await app.inject({ method: 'GET', url: '/things' });
    const other = await app.inject({
      method: 'GET',
      url: '/things',
      headers: { 'if-none-match': '"something-else"' },
    });
    assert.equal(other.statusCode, 200);
    assert.deepEqual(other.json(), { items: ['a', 'b'] });
    items.push('c');
    try {
      const changed = await app.inject({
        method: 'GET',
        url: '/things',
        headers: { 'if-none-match': String(first.headers.etag) },
      });
      assert.equal(changed.statusCode, 200);
      assert.notEqual(changed.headers.etag, first.headers.etag);
      assert.deepEqual(changed.json(), { items: ['a', 'b', 'c'] });
    } finally {
      items.pop();
    }
  });

  test('HEAD gets the same ETag and the same 304', async () => {
    const get = await app.inject({ method: 'GET', url: '/things' });
    const head = await app.inject({ method: 'HEAD', url: '/things' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers.etag, get.headers.etag);
    assert.equal(head.body, '');
    const notModified = await app.inject({
      method: 'HEAD',
      url: '/things',
      headers: { 'if-none-match': String(get.headers.etag) },
    });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.body, '');
  });

  test('errors, POST and routes without a policy get no caching headers', async () => {
    const missing = await app.inject({
      method: 'GET',
      url: '/things/missing',
      headers: { 'if-none-match': '*' },
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers['cache-control'], undefined);
    assert.equal(missing.headers.etag, undefined);

    const found = await app.inject({ method: 'GET', url: '/things/x' });
    assert.equal(found.statusCode, 200);
    assert.equal(found.headers['cache-control'], 'public, max-age=60');

    const post = await app.inject({ method: 'POST', url: '/things', payload: {} });
    assert.equal(post.statusCode, 200);
    assert.equal(post.headers['cache-control'], undefined);
    assert.equal(post.headers.etag, undefined);

    const plain = await app.inject({
      method: 'GET',
      url: '/plain',
      headers: { 'if-none-match': '*' },
    });
    assert.equal(plain.statusCode, 200);
    assert.equal(plain.headers['cache-control'], undefined);
    assert.equal(plain.headers.etag, undefined);
  });

  test('a private route is private, no-store, with no ETag and never 304', async () => {
    const res = await app.inject({ method: 'GET', url: '/me', headers: { 'if-none-match': '*' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'private, no-store');
    assert.equal(res.headers.etag, undefined);
  });

  test('a response that sets a cookie is never publicly cached', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/cookie',
      headers: { 'if-none-match': '*' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'private, no-store');
    assert.equal(res.headers.etag, undefined);
  });

  test("a handler's own ETag is kept and matched", async () => {
    const res = await app.inject({ method: 'GET', url: '/versioned' });
    assert.equal(res.headers.etag, '"v7"');
    const again = await app.inject({
      method: 'GET',
      url: '/versioned',
      headers: { 'if-none-match': '"v7"' },
    });
    assert.equal(again.statusCode, 304);
  });

  test('routes in an encapsulated plugin under a prefix are covered too', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/spots' });
    assert.equal(res.headers['cache-control'], 'public, max-age=30');
    const again = await app.inject({
      method: 'GET',
      url: '/api/v1/spots',
      headers: { 'if-none-match': String(res.headers.etag) },
    });
    assert.equal(again.statusCode, 304);
  });

  test('a streamed body gets Cache-Control but no ETag', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/stream',
      headers: { 'if-none-match': '*' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'streamed');
    assert.equal(res.headers['cache-control'], 'public, max-age=5');
    assert.equal(res.headers.etag, undefined);
  });
});

test('a public cache policy on a POST route fails at start-up', async () => {
  await assert.rejects(
    buildTestApp(
      {},
      {
        setup: (scope) => {
          registerHttpCaching(scope);
          scope.post('/write', { config: { cache: { maxAge: 60 } } }, async () => ({}));
        },
      },
    ),
    /public cache policy is for GET routes only/,
  );
});
