import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { listErrorCodes } from '../../src/platform/http/index.ts';
import { buildTestApp } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

interface Doc {
  openapi: string;
  info: { title: string; version: string };
  tags: { name: string }[];
  paths: Record<
    string,
    Record<
      string,
      {
        deprecated?: boolean;
        tags?: string[];
        responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
      }
    >
  >;
  components: {
    schemas: { Problem: { properties: { code: { enum: string[] } }; required: string[] } };
    securitySchemes: Record<string, { type: string; scheme: string }>;
  };
}

describe('OpenAPI', async () => {
  const { app } = await buildTestApp({}, { apps: [testkitApp] });
  test.after(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  const doc = res.json<Doc>();

  test('is an OpenAPI 3.1 document at /openapi.json', () => {
    assert.equal(res.statusCode, 200);
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'Groundwork API');
    assert.ok(doc.tags.some((t) => t.name === 'operations'));
    assert.ok(doc.tags.some((t) => t.name === 'testkit'));
  });

  test('documents app routes under /api/v1 and the operational routes, but not the docs assets', () => {
    assert.ok(doc.paths['/api/v1/echo']?.post);
    assert.ok(doc.paths['/health/ready']?.get);
    assert.ok(doc.paths['/metrics']?.get);
    assert.equal(
      Object.keys(doc.paths).some((p) => p.startsWith('/docs')),
      false,
    );
    assert.equal(doc.paths['/openapi.json'], undefined);
  });

  test('every operation documents problem+json error responses', () => {
    const echo = doc.paths['/api/v1/echo']?.post;
    for (const status of ['400', '413', '415', '422', '500', '503']) {
      assert.equal(
        echo?.responses[status]?.content?.['application/problem+json']?.schema.$ref,
        '#/components/schemas/Problem',
        status,
      );
    }
    const live = doc.paths['/health/live']?.get;
    assert.ok(live?.responses['500']);
  });

  test('the Problem schema lists every error code', () => {
    const problem = doc.components.schemas.Problem;
    assert.deepEqual([...problem.required].sort(), [
      'code',
      'detail',
      'requestId',
      'status',
      'title',
      'type',
    ]);
    assert.deepEqual(
      [...problem.properties.code.enum].sort(),
      listErrorCodes()
        .map((c) => c.code)
        .sort(),
    );
  });

  test('security schemes are declared', () => {
    assert.equal(doc.components.securitySchemes.bearerAuth?.scheme, 'bearer');
    assert.equal(doc.components.securitySchemes.metricsToken?.type, 'http');
  });

  test('deprecated routes are flagged', () => {
    assert.equal(doc.paths['/api/v1/old']?.get?.deprecated, true);
    assert.notEqual(doc.paths['/api/v1/echo']?.post?.deprecated, true);
  });

  test('the reference page is served at /docs', async () => {
    const page = await app.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /swagger/i);
  });
});

describe('docs/errors.md', () => {
  test('is generated from the registry and up to date', async () => {
    const { readFileSync } = await import('node:fs');
    const { renderErrorDocs } = await import('../../scripts/lib/error-docs.ts');
    const committed = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    assert.equal(committed, await renderErrorDocs(), 'run npm run docs:config');
    for (const { code } of listErrorCodes()) assert.match(committed, new RegExp(`\`${code}\``));
  });
});
