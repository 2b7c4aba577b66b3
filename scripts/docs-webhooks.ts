// Regenerates the event catalog of docs/webhooks.md from the events the modules declare.
import { writeFileSync } from 'node:fs';
import { renderWebhookDoc, WEBHOOK_DOC } from './lib/webhook-docs.ts';

writeFileSync(WEBHOOK_DOC, await renderWebhookDoc());
console.log('wrote docs/webhooks.md');
