// CI fails when the checked-in client is stale: its types are rendered again in memory from the
// live document (built as `npm run sdk` builds it) and compared with clients/ts/src/schema.ts.
// This file imports nothing but the generator: error codes are registered per process at import,
// and the document's `Problem` lists them, so a fixture imported here would change the document.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { liveDocument, renderSchema, SCHEMA_FILE } from '../../scripts/sdk.ts';

describe('clients/ts is generated from the live document', () => {
  test('the checked-in schema.ts is what `npm run sdk` writes now', async () => {
    const doc = await liveDocument();
    const fresh = await renderSchema(doc);
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    assert.ok(committed === fresh, 'clients/ts/src/schema.ts is stale: run `npm run sdk`');

    // The comparison can fail: a route added to the document changes the rendering.
    const changed = structuredClone(doc);
    changed.paths = {
      ...changed.paths,
      '/api/v1/new-route': { get: { responses: { 204: { description: 'No content' } } } },
    };
    const stale = await renderSchema(changed);
    assert.notEqual(stale, committed);
    assert.match(stale, /'\/api\/v1\/new-route'/);
  });

  test('every operation of the document is a typed path of the client', async () => {
    const doc = await liveDocument();
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    for (const path of Object.keys(doc.paths ?? {}))
      assert.ok(committed.includes(`'${path}': {`), `${path} is in the client`);
  });
});
