import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

// The repository's lint configuration (without type information: these rules are syntactic) on
// samples, so the security rules and the timing-safe comparison rule are known to fire where they
// should and to stay quiet where eslint.config.js says why.
const root = resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root, overrideConfig: tseslint.configs.disableTypeChecked });

async function rules(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, filePath) });
  assert.ok(result);
  assert.deepEqual(
    result.messages.filter((m) => m.fatal),
    [],
    'the sample parses',
  );
  return result.messages.map((m) =>
    m.ruleId === 'no-restricted-syntax' && /timingSafeEqual/.test(m.message)
      ? 'timing-unsafe-compare'
      : String(m.ruleId),
  );
}

test('a secret compared with === is refused; comparisons with undefined, literals and typeof are not', async () => {
  const code = `declare const token: string; declare const given: string;
declare const row: { secretHash: string; signature: string }; declare const input: { signature: string };
export const a = token === given;
export const b = row.signature !== input.signature;
export const c = token === undefined;
export const d = token !== 'none';
export const e = typeof token === 'string';
export const f = row.secretHash === given;
`;
  const found = await rules(code, 'src/platform/example/sample.ts');
  assert.deepEqual(found, ['timing-unsafe-compare', 'timing-unsafe-compare']);
});

test('a regular expression open to catastrophic backtracking is refused in src/', async () => {
  const found = await rules('export const r = /^(a+)+$/;\n', 'src/platform/example/sample.ts');
  assert.deepEqual(found, ['security/detect-unsafe-regex']);
});

test('eval and a RegExp built from a variable are refused in src/', async () => {
  const code = `declare const input: string;
export const r = new RegExp(input);
export const v: unknown = eval(input);
`;
  const found = await rules(code, 'src/platform/example/sample.ts');
  assert.ok(found.includes('security/detect-non-literal-regexp'), found.join());
  assert.ok(found.includes('security/detect-eval-with-expression'), found.join());
});

test('an app reading a file by a variable path is refused; the platform is not', async () => {
  const code = `import { readFileSync } from 'node:fs';
declare const name: string;
export const data = readFileSync(name);
`;
  assert.deepEqual(await rules(code, 'src/apps/example/example.service.ts'), [
    'security/detect-non-literal-fs-filename',
  ]);
  assert.deepEqual(await rules(code, 'src/platform/example/sample.ts'), []);
});
