import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { knownModules } from '../../src/app.ts';
import { renderWebhookDoc, WEBHOOK_DOC } from '../../scripts/lib/webhook-docs.ts';

test('docs/webhooks.md lists every event type the modules declare, as generated from them', async () => {
  const doc = readFileSync(WEBHOOK_DOC, 'utf8');
  for (const type of knownModules().flatMap((m) => m.events ?? []))
    assert.ok(
      doc.includes(`### \`${type.type}\` (version ${type.version})`),
      `${type.type} is missing: run node scripts/docs-webhooks.ts`,
    );
  assert.equal(
    doc,
    await renderWebhookDoc(),
    'the event catalog is out of date: run node scripts/docs-webhooks.ts',
  );
});
