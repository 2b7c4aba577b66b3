// Issue 20: every operation of the document carries a request example (when it takes a body) and
// a response example, each valid against its own schema; every error status carries a problem
// example whose status and code are the ones documented for it.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { allApps } from '../../src/apps/index.ts';
import { loadConfig } from '../../src/platform/config/index.ts';
import { listErrorCodes } from '../../src/platform/http/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { Type } from 'typebox';
import { publicDataApp } from '../../src/apps/public-data/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';
import { notesApp } from '../fixtures/notes-app/index.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

interface Media {
  schema?: Record<string, unknown>;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

const quiet = new Writable({ write: (_c, _e, done) => done() });

/** A route that gives its own response example (`examples` on its schema). */
const ownExampleApp = defineApp({
  name: 'own-example',
  description: 'A route with its own example.',
  routes: async (app) => {
    app.get(
      '/own-example',
      {
        schema: {
          response: {
            200: Type.Object({ slug: Type.String() }, { examples: [{ slug: 'air-quality' }] }),
          },
        },
      },
      async () => ({ slug: 'x' }),
    );
  },
});

/** The live document of every app (as `npm run openapi` builds it) plus fixtures with their own shapes. */
async function buildDocument(): Promise<Doc> {
  // The public-data app until src/apps/index.ts lists it (twice, its paths would clash).
  const extra = allApps.some((a) => a.name === publicDataApp.name) ? [] : [publicDataApp];
  const apps = [...allApps, testkitApp, notesApp, ownExampleApp, ...extra];
  // No load shedding: building the app blocks the event loop, and on a loaded machine the first
  // request after it was shed with 503 (the document then "differed between builds").
  const config = loadConfig(
    { APP_ENV: 'test', APPS: 'all', MAX_EVENT_LOOP_DELAY_MS: '0' },
    { modules: [...new Set([...knownModules(), ...apps])] },
  );
  const platform = await createPlatform(config, {
    logDestination: quiet,
    modules: enabledModules(config, apps),
    connect: false,
  });
  const app = await buildApp(config, { platform, apps });
  try {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<Doc>();
  } finally {
    await app.close();
    await platform.close();
  }
}

/** Up to five JSON pointers where `a` and `b` differ, each with both values (shortened). */
function differences(a: unknown, b: unknown, path = '', out: string[] = []): string[] {
  if (out.length >= 5) return out;
  const bothObjects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null;
  if (!bothObjects) {
    const [ja, jb] = [JSON.stringify(a) ?? 'undefined', JSON.stringify(b) ?? 'undefined'];
    if (ja !== jb) out.push(`${path || '/'}: ${ja.slice(0, 120)} vs ${jb.slice(0, 120)}`);
    return out;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys)
    differences(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}/${key}`,
      out,
    );
  return out;
}

describe('OpenAPI examples (issue 20)', () => {
  let doc: Doc;
  let ajv: Ajv2020;
  before(async () => {
    doc = await buildDocument();
    ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    (addFormatsModule as unknown as (a: Ajv2020) => Ajv2020)(ajv);
    ajv.addSchema({ ...doc, $id: 'openapi.json' }, 'openapi.json');
  });

  const escape = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
  /** The example's errors against the schema at `pointer` (resolved in the document), or null. */
  function invalid(pointer: string, value: unknown): string | null {
    const validate = ajv.compile({ $ref: `openapi.json#${pointer}` });
    return validate(value) ? null : ajv.errorsText(validate.errors);
  }
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ path, method, op })),
    );

  test('the document covers enough operations to mean something', () => {
    assert.ok(operations().length >= 70, String(operations().length));
    assert.ok(doc.paths['/api/v1/public-data/datasets/{slug}/rows']?.get);
  });

  test('every request body has an example, valid against its schema', () => {
    const problems: string[] = [];
    let bodies = 0;
    for (const { path, method, op } of operations()) {
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (media.schema?.format === 'binary') continue;
        bodies += 1;
        const at = `/paths/${escape(path)}/${method}/requestBody/content/${escape(type)}/schema`;
        if (media.example === undefined && media.examples === undefined)
          problems.push(`${method} ${path}: no request example`);
        else if (media.example !== undefined) {
          const why = invalid(at, media.example);
          if (why) problems.push(`${method} ${path} request example: ${why}`);
        }
      }
    }
    assert.ok(bodies >= 25, String(bodies));
    assert.deepEqual(problems, []);
  });

  test('every operation with a response body has a response example, valid against its schema', () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      let bodies = 0;
      let examples = 0;
      for (const [status, response] of Object.entries(op.responses)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          // Raw bytes (file content): an example of those says nothing.
          if (media.schema?.format === 'binary') continue;
          bodies += 1;
          if (media.example === undefined && media.examples === undefined) {
            problems.push(`${method} ${path} ${status} ${type}: no example`);
            continue;
          }
          examples += 1;
          const values =
            media.example !== undefined
              ? [media.example]
              : Object.values(media.examples ?? {}).map((e) => e.value);
          const at = `/paths/${escape(path)}/${method}/responses/${status}/content/${escape(type)}/schema`;
          for (const value of values) {
            const why = invalid(at, value);
            if (why) problems.push(`${method} ${path} ${status} ${type} example: ${why}`);
          }
        }
      }
      assert.ok(bodies === 0 || examples > 0, `${method} ${path}`);
    }
    assert.deepEqual(problems, []);
  });

  test('every error status has a problem example with that status and one of its documented codes', () => {
    const known = new Set(listErrorCodes().map((c) => c.code));
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        // A status answered with no body (storage's 416) has nothing to show.
        if (Number(status) < 400 || response.content === undefined) continue;
        const example = response.content?.['application/problem+json']?.example as
          { status: number; code: string; type: string; requestId: string } | undefined;
        if (!example) {
          problems.push(`${method} ${path} ${status}: no problem example`);
          continue;
        }
        if (example.status !== Number(status))
          problems.push(`${method} ${path} ${status}: example status ${example.status}`);
        if (!known.has(example.code) || !response.description.includes(`\`${example.code}\``))
          problems.push(`${method} ${path} ${status}: example code ${example.code} not documented`);
        assert.equal(
          example.type,
          `urn:groundwork:problem:${example.code.toLowerCase().replaceAll('_', '-')}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });

  test("a route's own error code is the example of its status (the likeliest answer)", () => {
    const conflict = doc.paths['/api/v1/admin/roles']?.post?.responses['409']?.content?.[
      'application/problem+json'
    ]?.example as { code: string };
    assert.equal(conflict.code, 'ROLE_NAME_TAKEN');
    const missing = doc.paths['/api/v1/admin/users/{id}']?.get?.responses['404']?.content?.[
      'application/problem+json'
    ]?.example as { code: string };
    assert.equal(missing.code, 'USER_NOT_FOUND');
    const job = doc.paths['/api/v1/jobs/{id}']?.get?.responses['401']?.content?.[
      'application/problem+json'
    ]?.example as { code: string };
    assert.equal(job.code, 'UNAUTHORIZED');
  });

  test('an example a route gives is kept, not replaced by a sampled one', () => {
    const own =
      doc.paths['/api/v1/own-example']?.get?.responses['200']?.content?.['application/json'];
    assert.deepEqual(own?.example, { slug: 'air-quality' });
  });

  test('the document is the same on every build (examples are deterministic)', async () => {
    // Compared without a diff, the first differing places named: assert.deepEqual's diff of two
    // megabyte documents takes minutes and gigabytes, which turned a difference into a crash.
    const again = await buildDocument();
    if (isDeepStrictEqual(again, doc)) return;
    assert.fail(`the document differs between builds: ${differences(doc, again).join('; ')}`);
  });
});
