// docs/writing-an-app.md quotes the example app (test/fixtures/notes-app) rather than showing code
// of its own: each ```ts block starts with a `// <path>` comment and must still appear, line for
// line, in that file (indentation may differ uniformly). So the guide cannot drift from the code
// that test/integration/example-app.test.ts runs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

const root = new URL('../../', import.meta.url);
const FIXTURE = 'test/fixtures/notes-app/';
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Excerpt {
  path: string;
  lines: string[];
  /** 1-based line of the block's opening fence in the guide. */
  at: number;
}

/** The guide's ```ts blocks: the path in their first line and the code after it. */
function excerpts(markdown: string): Excerpt[] {
  const out: Excerpt[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `the block at line ${i + 1} is not closed`);
    const path = /^\/\/ (\S+)$/.exec(lines[i + 1] ?? '')?.[1] ?? '';
    out.push({ path, lines: lines.slice(i + 2, end), at: i + 1 });
    i = end;
  }
  return out;
}

const indentOf = (line: string) => line.length - line.trimStart().length;

/** Whether `excerpt` appears in `source` as consecutive lines, shifted by one uniform indent. */
function quotes(source: string, excerpt: readonly string[]): boolean {
  const lines = source.split('\n');
  const first = excerpt[0] ?? '';
  for (let start = 0; start + excerpt.length <= lines.length; start++) {
    const line = lines[start] ?? '';
    if (line.trimStart() !== first.trimStart()) continue;
    const shift = indentOf(line) - indentOf(first);
    if (shift < 0) continue;
    const pad = ' '.repeat(shift);
    if (
      excerpt.every((l, k) =>
        l.trim() === '' ? lines[start + k]?.trim() === '' : lines[start + k] === pad + l,
      )
    )
      return true;
  }
  return false;
}

describe('docs/writing-an-app.md quotes the example app verbatim', () => {
  const guide = read('docs/writing-an-app.md');
  const blocks = excerpts(guide);

  test('every ts block names a file of the example app', () => {
    assert.ok(blocks.length >= 10, `only ${blocks.length} code blocks`);
    for (const b of blocks)
      assert.ok(
        b.path.startsWith(FIXTURE),
        `the ts block at line ${b.at} must start with "// ${FIXTURE}<file>"`,
      );
  });

  test('each block still appears in the file it names', () => {
    for (const b of blocks) {
      assert.ok(b.lines.length > 0, `the block at line ${b.at} is empty`);
      assert.ok(
        quotes(read(b.path), b.lines),
        `the block at line ${b.at} no longer matches ${b.path}: copy the current code into the guide`,
      );
    }
  });

  test('every file of the example app is quoted at least once', () => {
    const files = readdirSync(new URL(FIXTURE, root), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => FIXTURE + f)
      .sort();
    const quoted = new Set(blocks.map((b) => b.path));
    assert.deepEqual(
      files.filter((f) => !quoted.has(f)),
      [],
    );
  });

  test('the example app imports the platform only through its areas’ index.ts', () => {
    // Lint checks this for src/apps/**; the fixture lives under test/, so it is checked here.
    const files = readdirSync(new URL(FIXTURE, root), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ts'));
    for (const file of files) {
      const source = read(FIXTURE + file);
      for (const [, spec = ''] of source.matchAll(/from '([^']+)'/g)) {
        const ok =
          !spec.startsWith('.') ||
          /^(\.\.\/){3,4}src\/platform\/[a-z-]+\/index\.ts$/.test(spec) ||
          (spec.startsWith('./') && !spec.includes('..'));
        assert.ok(ok, `${file} imports ${spec}`);
      }
    }
  });

  test('the check notices an edited line, a reordering and a made-up line', () => {
    const source = 'a(\n  b: 1,\n  c: 2,\n);\n';
    assert.ok(quotes(source, ['b: 1,', 'c: 2,']), 'a dedented excerpt matches');
    assert.ok(!quotes(source, ['b: 1,', 'c: 3,']));
    assert.ok(!quotes(source, ['c: 2,', 'b: 1,']));
    assert.ok(!quotes(source, ['b: 1,', '  c: 2,']), 'indentation inside the excerpt counts');
    assert.ok(!quotes(source, ['d: 4,']));
  });

  test('the guide states the rules of an app', () => {
    for (const rule of [
      'src/apps/index.ts',
      '**one folder**',
      '**one line**',
      'index.ts',
      'It owns its tables.',
    ])
      assert.ok(guide.includes(rule), `the guide no longer says ${rule}`);
  });
});
