import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import {
  addExamples,
  problemExample,
  sampleSchema,
} from '../../src/platform/http/openapi-examples.ts';

const ajv = new Ajv2020({ strict: false, validateFormats: true });
(addFormatsModule as unknown as (a: Ajv2020) => Ajv2020)(ajv);

/** Samples the schema and checks the sample is valid against it. */
function valid(schema: Record<string, unknown>): unknown {
  const value = sampleSchema(schema);
  assert.ok(ajv.validate(schema, value), `${JSON.stringify(value)}: ${ajv.errorsText()}`);
  return value;
}

describe('openapi examples: sampler', () => {
  test("the schema's own example wins: examples, example, const, default, enum", () => {
    assert.equal(sampleSchema({ type: 'string', examples: ['a', 'b'] }), 'a');
    assert.equal(sampleSchema({ type: 'string', example: 'x' }), 'x');
    assert.equal(sampleSchema({ const: 'fixed' }), 'fixed');
    assert.equal(sampleSchema({ type: 'integer', default: 20 }), 20);
    assert.equal(sampleSchema({ enum: ['draft', 'published'] }), 'draft');
  });

  test('strings meet their format, length and the patterns the document uses', () => {
    for (const format of ['uuid', 'date-time', 'date', 'email', 'uri', 'ipv4', 'ipv6', 'hostname'])
      valid({ type: 'string', format });
    for (const pattern of [
      '^[0-9]{6}$',
      '^[0-9A-Za-z]{5}-?[0-9A-Za-z]{5}$',
      '^[a-z][a-z0-9_-]{1,31}$',
      '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,3}$',
      '^[a-z][a-z0-9-]{0,47}:([a-z][a-z0-9-]{0,47}|\\*)$',
      '^whsec_',
      '^[a-z0-9.+-]+/[a-z0-9.+-]+$',
      '^[A-Za-z0-9+/]{43}=$',
      '^[a-z0-9][a-z0-9-]*(\\.(webp|avif|jpeg|png))?$',
      '^[^/]+$',
      '^(?:GET|POST)$',
      '^\\d{4}-\\d{2}$',
    ])
      valid({ type: 'string', pattern });
    valid({ type: 'string', pattern: '^whsec_', minLength: 20 });
    assert.equal([...(valid({ type: 'string', minLength: 12 }) as string)].length, 12);
    assert.ok((valid({ type: 'string', maxLength: 3 }) as string).length <= 3);
  });

  test('numbers keep within bounds, exclusive bounds and multipleOf', () => {
    assert.equal(valid({ type: 'integer', minimum: 5, maximum: 10 }), 5);
    assert.equal(valid({ type: 'integer', maximum: -3 }), -3);
    valid({ type: 'integer', exclusiveMinimum: 1 });
    valid({ type: 'number', exclusiveMaximum: 1 });
    valid({ type: 'integer', minimum: 1, multipleOf: 5 });
  });

  test('objects list every property; arrays meet minItems with distinct enum values', () => {
    const value = valid({
      type: 'object',
      required: ['id', 'tags'],
      additionalProperties: false,
      properties: {
        id: { type: 'string', format: 'uuid' },
        tags: {
          type: 'array',
          minItems: 2,
          uniqueItems: true,
          items: { type: 'string', enum: ['a', 'b', 'c'] },
        },
        note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        flag: { type: 'boolean' },
      },
    }) as Record<string, unknown>;
    assert.deepEqual(Object.keys(value).sort(), ['flag', 'id', 'note', 'tags']);
    assert.deepEqual(value.tags, ['a', 'b']);
    assert.equal(value.note, 'string', 'a nullable value is shown with a value');
  });

  test('$ref resolves through the document; a cycle stops instead of looping', () => {
    const schemas: Record<string, Record<string, unknown>> = {
      Node: {
        type: 'object',
        properties: { name: { type: 'string' }, child: { $ref: '#/components/schemas/Node' } },
      },
    };
    const resolve = (ref: string) => schemas[ref.split('/').pop() ?? ''];
    const value = sampleSchema({ $ref: '#/components/schemas/Node' }, { resolve }) as {
      child: unknown;
    };
    assert.deepEqual(value, { name: 'Example', child: null });
  });

  test('addExamples fills bodies without one, keeps given ones and skips raw bytes', () => {
    const doc = {
      paths: {
        '/x': {
          post: {
            requestBody: { content: { 'application/json': { schema: { type: 'integer' } } } },
            responses: {
              '200': {
                content: {
                  'application/json': { schema: { type: 'string' }, example: 'given' },
                  'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
                },
              },
            },
          },
          parameters: [],
        },
      },
    };
    addExamples(doc);
    const op = doc.paths['/x'].post;
    assert.equal((op.requestBody.content['application/json'] as { example?: unknown }).example, 1);
    assert.equal(op.responses['200'].content['application/json'].example, 'given');
    assert.equal('example' in op.responses['200'].content['application/octet-stream'], false);
  });

  test('problemExample: the code, its title and description, the status, the type URI', () => {
    const example = problemExample(404, 'NOT_FOUND', 'urn:x:') as Record<string, unknown>;
    assert.equal(example.type, 'urn:x:not-found');
    assert.equal(example.status, 404);
    assert.equal(example.code, 'NOT_FOUND');
    assert.equal(typeof example.title, 'string');
    assert.ok(String(example.detail).length > 0);
    assert.equal('errors' in example, false);
    assert.ok('errors' in (problemExample(422, 'VALIDATION_FAILED', 'urn:x:') as object));
  });
});
