// The fuzzer's value generator: every schema shape the routes use yields values that satisfy it,
// and in bounded time (a generator whose filter can never pass once hung the fuzz file in CI).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import fc from 'fast-check';
import { validValue } from '../fuzz/arbitraries.ts';
import type { Schema } from '../fuzz/openapi.ts';

function samples(schema: TSchema, n = 200): unknown[] {
  // The OpenAPI document carries the schemas as plain JSON: generate from that form.
  const plain = JSON.parse(JSON.stringify(schema)) as Schema;
  return fc.sample(validValue(plain), { numRuns: n, seed: 42 });
}

test('a map schema (Type.Record) with minProperties yields maps whose keys match the pattern', () => {
  const schema = Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), Type.Unknown(), {
    minProperties: 1,
    maxProperties: 20,
  });
  const values = samples(schema);
  assert.equal(values.length, 200);
  for (const value of values) assert.ok(Value.Check(schema, value), JSON.stringify(value));
  assert.ok(values.some((v) => Object.keys(v as object).length > 1));
});

test('an object of optional properties with minProperties yields at least that many', () => {
  const schema = Type.Object(
    { name: Type.Optional(Type.String()), rank: Type.Optional(Type.Integer()) },
    { additionalProperties: false, minProperties: 1 },
  );
  for (const value of samples(schema)) {
    assert.ok(Object.keys(value as object).length >= 1);
    assert.ok(Value.Check(schema, value), JSON.stringify(value));
  }
});

test('a minProperties no declared property can reach still ends (the values are then invalid)', () => {
  const schema = Type.Object(
    { only: Type.Optional(Type.Boolean()) },
    { additionalProperties: false, minProperties: 2 },
  );
  assert.equal(samples(schema, 50).length, 50);
});
