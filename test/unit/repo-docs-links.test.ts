import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { anchors, links, slug } from '../../scripts/lib/markdown.ts';

// Every relative link of the repository's Markdown (README, RUNBOOK, CONTRIBUTING, docs/, deploy/,
// clients/, examples/) resolves: the file or folder exists and, for a link into a Markdown file,
// the #anchor is one of its headings. External links are not fetched.
const root = resolve(import.meta.dirname, '../..');
const SKIP = new Set(['node_modules', '.git', 'dist', '.data', 'coverage', 'bench']);

function markdownFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    if (SKIP.has(entry)) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) markdownFiles(path, out);
    else if (entry.endsWith('.md')) out.push(path);
  }
  return out;
}

test('GitHub anchors: lower case, punctuation dropped, spaces to hyphens', () => {
  assert.equal(slug('Roll back'), 'roll-back');
  assert.equal(slug('Failures, health, metrics'), 'failures-health-metrics');
  assert.equal(slug('Processing (images)'), 'processing-images');
  assert.equal(slug('Naming: `YYYYMMDDHHMM_area_what`'), 'naming-yyyymmddhhmm_area_what');
  assert.equal(slug('Data-access audit: the buffer'), 'data-access-audit-the-buffer');
  assert.equal(slug('`authors.author.created` (version 1)'), 'authorsauthorcreated-version-1');
  const doc = '# A\n## Tests\n```\n## Not a heading\n```\n### Tests\n';
  assert.deepEqual([...anchors(doc)], ['a', 'tests', 'tests-1']);
  assert.deepEqual(links('[x](a.md#b) `[no](c.md)` ![img](d.png "t")'), [
    { target: 'a.md#b', line: 1 },
    { target: 'd.png', line: 1 },
  ]);
});

test('relative links and anchors in the Markdown files resolve', () => {
  const files = markdownFiles(root);
  assert.ok(files.length > 20, 'the documentation is found');
  const cache = new Map<string, Set<string>>();
  const anchorsOf = (path: string) => {
    let set = cache.get(path);
    if (!set) {
      set = anchors(readFileSync(path, 'utf8'));
      cache.set(path, set);
    }
    return set;
  };
  const broken: string[] = [];
  for (const file of files) {
    for (const { target, line } of links(readFileSync(file, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue;
      const [path = '', anchor] = target.split('#');
      const dest = path ? join(dirname(file), decodeURIComponent(path)) : file;
      const where = `${relative(root, file)}:${String(line)} → ${target}`;
      if (!existsSync(dest)) broken.push(`${where}: no such file`);
      else if (anchor && dest.endsWith('.md') && !anchorsOf(dest).has(anchor)) {
        broken.push(`${where}: no heading with that anchor`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
