// The processing job's edges (issue 15): an upload that vanished fails the file with
// PROCESSING_ERROR (file.failed, quota given back); a file no longer processing is left alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { newId } from '../../src/platform/db/index.ts';
import { processFile } from '../../src/platform/files/processing.ts';
import { ftestModule, startFilesHarness, type FilesHarness } from '../fixtures/files/harness.ts';

const ctx = {
  signal: new AbortController().signal,
  attempt: 1,
  log: pino({ level: 'silent' }),
  requestId: null,
  lastAttempt: false,
};

describe('files: processing edges', () => {
  let h: FilesHarness;
  before(async () => {
    // No worker picks these rows: they are inserted directly, without a job.
    h = await startFilesHarness(ftestModule({ smallCap: 1_000 }));
  });
  after(() => h.close());

  async function insertProcessing(ownerId: string, size: number): Promise<string> {
    const id = newId();
    await h.tdb.database.pool.query(
      `insert into gw_file (id, owner_id, purpose, status, content_type, size, checksum_sha256,
         upload_key, quota_bytes) values ($1, $2, 'ftest.picture', 'processing', 'image/png', $3, 'x', $4, $3)`,
      [id, ownerId, size, `files/${id}/upload`],
    );
    await h.tdb.database.pool.query(
      `insert into gw_file_usage (user_id, used_bytes) values ($1, $2)
       on conflict (user_id) do update set used_bytes = gw_file_usage.used_bytes + $2`,
      [ownerId, size],
    );
    return id;
  }

  test('the upload is gone: failed with PROCESSING_ERROR, file.failed published, quota given back', async () => {
    const { user } = await h.user();
    const id = await insertProcessing(user.id, 1234);
    const result = await processFile(h.platform, id, ctx);
    assert.deepEqual(result, { status: 'failed', reason: 'PROCESSING_ERROR' });
    const { rows } = await h.tdb.database.pool.query<{ status: string; failure_reason: string }>(
      'select status, failure_reason from gw_file where id = $1',
      [id],
    );
    assert.deepEqual(rows[0], { status: 'failed', failure_reason: 'PROCESSING_ERROR' });
    const events = await h.tdb.database.pool.query<{ type: string; owner_id: string }>(
      'select type, owner_id from gw_event where subject_id = $1',
      [id],
    );
    assert.deepEqual(events.rows, [{ type: 'file.failed', owner_id: user.id }]);
    const usage = await h.tdb.database.pool.query<{ used: string }>(
      'select used_bytes::text as used from gw_file_usage where user_id = $1',
      [user.id],
    );
    assert.equal(usage.rows[0]?.used, '0');
    // Run again (a retry, a duplicate job): nothing more happens.
    assert.deepEqual(await processFile(h.platform, id, ctx), { status: 'failed' });
    const again = await h.tdb.database.pool.query('select 1 from gw_event where subject_id = $1', [
      id,
    ]);
    assert.equal(again.rowCount, 1);
  });

  test('a file deleted before its job runs is left alone', async () => {
    const { user } = await h.user();
    const id = await insertProcessing(user.id, 10);
    await h.tdb.database.pool.query('update gw_file set deleted_at = now() where id = $1', [id]);
    assert.deepEqual(await processFile(h.platform, id, ctx), { status: 'gone' });
  });
});
