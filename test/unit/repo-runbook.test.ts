import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { anchors, headings } from '../../scripts/lib/markdown.ts';

// Every alert of deploy/prometheus/alerts.yml has its section in RUNBOOK.md, named after it, and
// its runbook_url points at that section; the runbook has no section for an alert that is gone.
const root = resolve(import.meta.dirname, '../..');
const runbook = readFileSync(join(root, 'RUNBOOK.md'), 'utf8');
const alertsFile = join(root, 'deploy/prometheus/alerts.yml');

interface Rule {
  alert?: string;
  annotations?: Record<string, string>;
}
function alerts(): { name: string; runbookUrl: string | undefined }[] {
  const doc = parse(readFileSync(alertsFile, 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups
    .flatMap((g) => g.rules)
    .filter((r): r is Rule & { alert: string } => typeof r.alert === 'string')
    .map((r) => ({ name: r.alert, runbookUrl: r.annotations?.runbook_url }));
}

test('the runbook covers starting, stopping, rolling back, backups and alerts', () => {
  const h2 = headings(runbook)
    .filter((h) => h.level === 2)
    .map((h) => h.text);
  for (const section of ['Start', 'Stop', 'Roll back', 'Backup and restore', 'Alerts']) {
    assert.ok(h2.includes(section), `RUNBOOK.md has a "## ${section}" section`);
  }
});

// Read when present (the alert rules live in deploy/prometheus/, tested by promtool there).
test('every alert has its runbook section, and its runbook_url anchor exists', () => {
  if (!existsSync(alertsFile)) {
    // No alert rules in this checkout: then the runbook must not claim sections for any.
    assert.equal(runbookAlertSections().length, 0);
    return;
  }
  const list = alerts();
  assert.ok(list.length > 0, 'alerts.yml defines alerts');
  const sections = new Set(runbookAlertSections());
  const offered = anchors(runbook);
  for (const { name, runbookUrl } of list) {
    assert.ok(sections.has(name), `RUNBOOK.md has a "### ${name}" section under "## Alerts"`);
    assert.ok(runbookUrl, `${name} has a runbook_url annotation`);
    const [path, anchor] = runbookUrl.split('#');
    assert.match(path ?? '', /(^|\/)RUNBOOK\.md$/, `${name}: runbook_url names RUNBOOK.md`);
    assert.equal(anchor, name.toLowerCase(), `${name}: the anchor is the alert's name, lower case`);
    assert.ok(offered.has(anchor), `${name}: RUNBOOK.md#${anchor} exists`);
  }
  const names = new Set(list.map((a) => a.name));
  for (const section of sections) {
    assert.ok(names.has(section), `RUNBOOK.md's section ${section} matches an alert of alerts.yml`);
  }
});

/** The level-3 headings under "## Alerts". */
function runbookAlertSections(): string[] {
  const all = headings(runbook);
  const start = all.findIndex((h) => h.level === 2 && h.text === 'Alerts');
  if (start < 0) return [];
  const end = all.findIndex((h, i) => i > start && h.level <= 2);
  return all
    .slice(start + 1, end < 0 ? undefined : end)
    .filter((h) => h.level === 3)
    .map((h) => h.text);
}
