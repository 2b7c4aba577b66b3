import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';

// docs/services.md draws each deploy/compose*.yaml under a heading naming the file: every service
// of the file is a node of that diagram, and every depends_on is an arrow between the two.
const root = resolve(import.meta.dirname, '../..');
const doc = readFileSync(join(root, 'docs/services.md'), 'utf8');

/** The Mermaid block that follows `## <file>`, as lines. */
function diagramOf(file: string): string[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${file}`);
  if (start < 0) return [];
  const rest = lines.slice(start + 1);
  const open = rest.findIndex((l) => l.trim() === '```mermaid');
  const nextHeading = rest.findIndex((l) => /^## /.test(l));
  if (open < 0 || (nextHeading >= 0 && nextHeading < open)) return [];
  const close = rest.findIndex((l, i) => i > open && l.trim() === '```');
  return rest.slice(open + 1, close);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

test('every compose file has its diagram, with every service and every depends_on', () => {
  const files = readdirSync(join(root, 'deploy'))
    .filter((f) => /^compose.*\.ya?ml$/.test(f))
    .sort();
  assert.ok(files.includes('compose.yaml'));
  for (const name of files) {
    const file = `deploy/${name}`;
    const compose = parse(readFileSync(join(root, file), 'utf8')) as {
      services: Record<string, { depends_on?: string[] | Record<string, unknown> }>;
    };
    const diagram = diagramOf(file);
    assert.ok(diagram.length > 0, `docs/services.md has "## ${file}" with a mermaid block`);
    assert.match(diagram[0] ?? '', /^(flowchart|graph) /);
    const text = diagram.join('\n');
    for (const [service, spec] of Object.entries(compose.services)) {
      const node = new RegExp(
        `^\\s*(?:subgraph\\s+)?${escape(service)}\\b|(?:-->|-\\.->|==>)(?:\\|[^|]*\\|)?\\s*${escape(service)}\\b`,
        'm',
      );
      assert.match(text, node, `${file}: service ${service} is drawn`);
      const needs = Array.isArray(spec.depends_on)
        ? spec.depends_on
        : Object.keys(spec.depends_on ?? {});
      for (const dependency of needs) {
        const edge = new RegExp(
          `^\\s*${escape(service)}\\s*(?:-->|-\\.->|==>)(?:\\|[^|]*\\|)?\\s*${escape(dependency)}\\b`,
          'm',
        );
        assert.match(text, edge, `${file}: ${service} → ${dependency} (depends_on) is an arrow`);
      }
    }
  }
});
