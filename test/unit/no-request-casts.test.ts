import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

// The repository's own lint configuration, without type information: the rule is syntactic, and
// lintText on a file that does not exist cannot be typed.
const root = resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root, overrideConfig: tseslint.configs.disableTypeChecked });
const CAST_MESSAGE = /Type the route with the TypeBox provider/;

async function castReports(code: string, filePath: string): Promise<number[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, filePath) });
  assert.ok(result);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], 'the sample parses');
  return result.messages
    .filter((m) => m.ruleId === 'no-restricted-syntax' && CAST_MESSAGE.test(m.message))
    .map((m) => m.line);
}

const CASTS = `declare const request: { body: unknown; params: unknown; query: unknown };
declare const req: { body: unknown; params: unknown; query: unknown };
export const a = request.body as { email: string };
export const { id } = request.params as { id: string };
export const b = (request.query as { limit: number }).limit;
export const c = req.body as Record<string, unknown>;
export const d = <{ q: string }>req.query;
export const e = request.body as unknown as { token: string };
`;

test('lint: an `as` cast of request.body/params/query in src/ is an error (every form, both names)', async () => {
  assert.deepEqual(
    await castReports(CASTS, 'src/platform/jobs/sample-routes.ts'),
    [3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(
    await castReports(CASTS, 'src/apps/sample/sample.routes.ts'),
    [3, 4, 5, 6, 7, 8],
  );
  // The config area may read process.env, but not cast a request either.
  assert.deepEqual(await castReports(CASTS, 'src/platform/config/sample.ts'), [3, 4, 5, 6, 7, 8]);
});

test('lint: typed request access and casts of other values are not reported', async () => {
  const code = `declare const request: { body: { email: string }; params: { id: string } };
declare const res: { body: unknown };
export const email = request.body.email;
export const { id } = request.params;
export const raw: unknown = request.body;
export const stream = res.body as AsyncIterable<Buffer>;
`;
  assert.deepEqual(await castReports(code, 'src/platform/jobs/sample-routes.ts'), []);
});

test('src/ holds no cast of request.body/params/query', async () => {
  const results = await eslint.lintFiles(['src/**/*.ts']);
  const found = results.flatMap((r) =>
    r.messages
      .filter((m) => m.ruleId === 'no-restricted-syntax' && CAST_MESSAGE.test(m.message))
      .map((m) => `${r.filePath.slice(root.length + 1)}:${m.line}`),
  );
  assert.deepEqual(found, []);
});
