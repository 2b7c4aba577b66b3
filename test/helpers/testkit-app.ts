import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { defineApp } from '../../src/platform/modules/index.ts';

/** Routes that exercise the platform's HTTP contract in tests (mounted under /api/v1). */
export const testkitApp = defineApp({
  name: 'testkit',
  description: 'Routes used by the platform tests.',
  routes: async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const Person = Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 50 }),
        email: Type.String({ format: 'email' }),
        age: Type.Optional(Type.Integer({ minimum: 0, maximum: 150 })),
      },
      { additionalProperties: false },
    );
    app.post(
      '/echo',
      { schema: { tags: ['testkit'], body: Person, response: { 200: Person } } },
      async (request) => request.body,
    );
    app.post(
      '/small',
      { bodyLimit: 64, schema: { body: Type.Object({ text: Type.String() }) } },
      async (request) => request.body,
    );
    app.get(
      '/items',
      {
        schema: {
          querystring: Type.Object({
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
          }),
        },
      },
      async (request) => ({ limit: request.query.limit }),
    );
    app.get('/boom', async () => {
      throw new Error('connection to postgres://admin:hunter2@db failed');
    });
    app.post(
      '/login',
      { schema: { body: Type.Object({ username: Type.String(), password: Type.String() }) } },
      async () => {
        throw new Error('login exploded');
      },
    );
    app.get(
      '/slow',
      {
        handlerTimeout: 100,
        schema: { querystring: Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 10_000 }) }) },
      },
      async (request) => {
        await sleep(request.query.ms, undefined, { signal: request.signal }).catch(() => undefined);
        return { ok: true };
      },
    );
    app.get(
      '/old',
      {
        config: {
          deprecation: {
            since: '2026-01-01',
            sunset: '2027-06-30',
            link: 'https://docs.example.com/migrate',
          },
        },
      },
      async () => ({ ok: true }),
    );
  },
});
