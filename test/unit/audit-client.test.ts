import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditClient } from '../../src/platform/audit/index.ts';

test('auditClient: the ip and request id of the client, null for each part missing, nothing else', () => {
  const client = { ip: '192.0.2.1', userAgent: 'curl/8', requestId: 'req-1' };
  assert.deepEqual(auditClient(client), { ip: '192.0.2.1', requestId: 'req-1' });
  assert.deepEqual(auditClient({ ip: null, requestId: 'req-2' }), { ip: null, requestId: 'req-2' });
  assert.deepEqual(auditClient(null), { ip: null, requestId: null });
  assert.deepEqual(auditClient(undefined), { ip: null, requestId: null });
});
