import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { ERD_FILE, generateErd, mermaidType } from '../../scripts/erd.ts';

// docs/erd.md is generated from databases migrated with the current migrations (scripts/erd.ts):
// a migration that adds, drops or changes a table or key makes it stale, and this fails.
const root = resolve(import.meta.dirname, '../..');

test('docs/erd.md is what npm run erd writes from the current migrations', async () => {
  const expected = await generateErd();
  const current = readFileSync(join(root, ERD_FILE), 'utf8');
  // Compare line by line first, so a failure names the first line that differs.
  const a = current.split('\n');
  const b = expected.split('\n');
  const first = b.findIndex((line, i) => a[i] !== line);
  assert.ok(
    current === expected,
    `${ERD_FILE} is stale: run \`npm run erd\` (first difference at line ${String(first + 1)}: ` +
      `file has ${JSON.stringify(a[first])}, the migrations give ${JSON.stringify(b[first])})`,
  );
  // Every table drawn with its columns sits in exactly one section.
  const drawn = [...current.matchAll(/^ {2}([a-z0-9_]+) \{$/gm)].map((m) => m[1]);
  assert.ok(drawn.length > 30, 'the platform and the apps have their tables');
  assert.equal(new Set(drawn).size, drawn.length);
  assert.ok(drawn.includes('gw_user'));
});

test('column types are single Mermaid words', () => {
  assert.equal(mermaidType('timestamp with time zone'), 'timestamptz');
  assert.equal(mermaidType('timestamp(3) without time zone'), 'timestamp');
  assert.equal(mermaidType('character varying(200)'), 'varchar');
  assert.equal(mermaidType('numeric(12,2)'), 'numeric');
  assert.equal(mermaidType('text[]'), 'text[]');
  assert.equal(mermaidType('double precision'), 'float8');
  assert.equal(mermaidType('public.earth'), 'earth');
  assert.equal(mermaidType('"char"'), 'char');
});
