// Presigned direct uploads (issue 15): start, PUT to the signed URL, complete; the completion
// check is the guard (size and SHA-256 computed from the stored bytes, type by content), on the
// local driver (the server's own signed URL) and on a real S3-compatible server (s3rver, which
// does not enforce a presigned PUT's signed length).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import { startTestS3, type TestS3 } from '../helpers/s3.ts';
import {
  ftestModule,
  settled,
  startFilesHarness,
  type FileJson,
  type FilesHarness,
} from '../fixtures/files/harness.ts';
import { HTML, png } from '../fixtures/files/samples.ts';

const module = ftestModule({ smallCap: 1_000 });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('base64');

interface Started {
  id: string;
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
}

async function start(
  h: FilesHarness,
  headers: Record<string, string>,
  data: Buffer,
  body: Record<string, unknown> = {},
) {
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/files/uploads',
    headers,
    payload: {
      purpose: 'ftest.picture',
      contentType: 'image/png',
      size: data.length,
      checksumSha256: sha256(data),
      filename: 'direct.png',
      ...body,
    },
  });
}

function complete(h: FilesHarness, headers: Record<string, string>, id: string) {
  return h.app.inject({ method: 'POST', url: `/api/v1/files/uploads/${id}/complete`, headers });
}

/** PUTs through the app itself (the local driver's signed URL is one of its routes). */
function putLocal(h: FilesHarness, started: Started, data: Buffer) {
  const url = new URL(started.url);
  return h.app.inject({
    method: 'PUT',
    url: `${url.pathname}${url.search}`,
    headers: started.headers,
    payload: data,
  });
}

async function uploadState(h: FilesHarness, id: string): Promise<string | undefined> {
  const { rows } = await h.tdb.database.pool.query<{ state: string }>(
    'select state from gw_file_upload where id = $1',
    [id],
  );
  return rows[0]?.state;
}

describe('files: presigned uploads, local driver', () => {
  let h: FilesHarness;
  before(async () => {
    h = await startFilesHarness(module, { FILES_USER_QUOTA_BYTES: '100000' });
  });
  after(() => h.close());

  test('start, PUT to the signed URL, complete: the file is recorded and processed', async () => {
    const { headers } = await h.user();
    const data = await png(80, 60);
    const res = await start(h, headers, data);
    assert.equal(res.statusCode, 201, res.body);
    const started = res.json<Started>();
    assert.equal(started.method, 'PUT');
    assert.ok(Date.parse(started.expiresAt) > Date.now());
    const put = await putLocal(h, started, data);
    assert.ok(put.statusCode < 300, `${put.statusCode} ${put.body}`);
    const done = await complete(h, headers, started.id);
    assert.equal(done.statusCode, 201, done.body);
    const created = done.json<FileJson>();
    assert.equal(created.id, started.id);
    assert.equal(created.contentType, 'image/png');
    assert.equal(created.filename, 'direct.png');
    const file = await settled(h.app, created.id, headers);
    assert.equal(file.status, 'ready', JSON.stringify(file));
    assertProblem(await complete(h, headers, started.id), 409, 'UPLOAD_ALREADY_COMPLETED');
  });

  test('complete before the upload: 409 UPLOAD_NOT_RECEIVED (and it can still be completed after)', async () => {
    const { headers } = await h.user();
    const data = await png(30, 30);
    const started = (await start(h, headers, data)).json<Started>();
    assertProblem(await complete(h, headers, started.id), 409, 'UPLOAD_NOT_RECEIVED');
    assert.equal(await uploadState(h, started.id), 'pending');
    assert.ok((await putLocal(h, started, data)).statusCode < 300);
    assert.equal((await complete(h, headers, started.id)).statusCode, 201);
  });

  test('two completes at once record one file (the other 409); a complete after expiry is 409 UPLOAD_EXPIRED', async () => {
    const { headers } = await h.user();
    const data = await png(30, 30);
    const started = (await start(h, headers, data)).json<Started>();
    assert.ok((await putLocal(h, started, data)).statusCode < 300);
    const both = await Promise.all([
      complete(h, headers, started.id),
      complete(h, headers, started.id),
    ]);
    assert.deepEqual(both.map((r) => r.statusCode).sort(), [201, 409]);
    const late = (await start(h, headers, data)).json<Started>();
    assert.ok((await putLocal(h, late, data)).statusCode < 300);
    await h.tdb.database.pool.query(
      `update gw_file_upload set expires_at = now() - interval '1 second' where id = $1`,
      [late.id],
    );
    assertProblem(await complete(h, headers, late.id), 409, 'UPLOAD_EXPIRED');
  });

  test('different or more bytes stored than declared (a store that does not enforce the signature): 422 UPLOAD_MISMATCH, object removed', async () => {
    const { headers } = await h.user();
    const data = await png(30, 30);
    for (const stored of [
      Buffer.concat([data, Buffer.from('trailing bytes')]),
      Buffer.from(data).fill(7, 100, 120),
    ]) {
      const started = (await start(h, headers, data)).json<Started>();
      const key = `files/${started.id}/upload`;
      // Written past the signed URL's checks, as s3rver would keep it.
      await h.platform.storage.put(key, stored, { contentType: 'image/png' });
      assertProblem(await complete(h, headers, started.id), 422, 'UPLOAD_MISMATCH');
      assert.equal(await h.platform.storage.head(key), null, 'the object is removed');
      assert.equal(await uploadState(h, started.id), 'rejected');
      assertProblem(await complete(h, headers, started.id), 404, 'UPLOAD_NOT_FOUND');
    }
  });

  test('the signed URL itself refuses bytes other than those signed', async () => {
    const { headers } = await h.user();
    const data = await png(30, 30);
    const started = (await start(h, headers, data)).json<Started>();
    const other = Buffer.from(data).fill(1, 50, 60);
    const put = await putLocal(h, started, other);
    assert.ok(put.statusCode >= 400, `${put.statusCode}`);
    assertProblem(await complete(h, headers, started.id), 409, 'UPLOAD_NOT_RECEIVED');
  });

  test('HTML declared as image/png: refused at complete by its bytes (415), object removed', async () => {
    const { headers } = await h.user();
    const started = (await start(h, headers, HTML)).json<Started>();
    assert.ok((await putLocal(h, started, HTML)).statusCode < 300);
    assertProblem(await complete(h, headers, started.id), 415, 'FILE_TYPE_NOT_ALLOWED');
    assert.equal(await h.platform.storage.head(`files/${started.id}/upload`), null);
  });

  test("another user's upload id is 404; bad input is 4xx", async () => {
    const owner = await h.user();
    const other = await h.user();
    const data = await png(20, 20);
    const started = (await start(h, owner.headers, data)).json<Started>();
    assertProblem(await complete(h, other.headers, started.id), 404, 'UPLOAD_NOT_FOUND');
    assertProblem(
      await start(h, owner.headers, data, { contentType: 'image/svg+xml' }),
      415,
      'FILE_TYPE_NOT_ALLOWED',
    );
    assertProblem(
      await start(h, owner.headers, data, {
        purpose: 'ftest.small',
        contentType: 'image/png',
        size: 1_001,
      }),
      413,
      'FILE_TOO_LARGE',
    );
    assertProblem(await start(h, owner.headers, data, { size: 0 }), 422, 'VALIDATION_FAILED');
    assertProblem(
      await start(h, owner.headers, data, { checksumSha256: 'nope' }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(await start(h, {}, data), 401, 'UNAUTHORIZED');
  });

  test('the quota is reserved at start: past it 413 QUOTA_EXCEEDED; an upload never completed is purged and its reservation given back', async () => {
    const { headers, user } = await h.user();
    const big = Buffer.alloc(60_000, 1);
    const first = await start(h, headers, big, { size: 60_000 });
    assert.equal(first.statusCode, 201, first.body);
    assertProblem(await start(h, headers, big, { size: 60_000 }), 413, 'QUOTA_EXCEEDED');
    const { purgeFiles } = await import('../../src/platform/files/index.ts');
    const later = new Date(Date.now() + 3 * 86_400_000);
    const purged = await purgeFiles(h.platform, { now: later });
    assert.ok(purged.uploads >= 1);
    const { rows } = await h.tdb.database.pool.query<{ used: string }>(
      'select used_bytes::text as used from gw_file_usage where user_id = $1',
      [user.id],
    );
    assert.equal(Number(rows[0]?.used ?? 0), 0);
    assert.equal((await start(h, headers, big, { size: 60_000 })).statusCode, 201);
  });
});

describe('files: presigned uploads and reads on S3 (s3rver)', () => {
  let s3: TestS3;
  let h: FilesHarness;
  before(async () => {
    s3 = await startTestS3();
    h = await startFilesHarness(module, { ...s3.env });
  });
  after(async () => {
    await h.close();
    await s3.close();
  });

  test('a browser-style direct upload to the bucket, completed, processed; content redirects to a signed URL that serves it', async () => {
    const { headers } = await h.user();
    const data = await png(90, 70);
    const started = (await start(h, headers, data)).json<Started>();
    assert.ok(started.url.startsWith(s3.endpoint), started.url);
    const put = await fetch(started.url, { method: 'PUT', headers: started.headers, body: data });
    assert.ok(put.ok, `${put.status} ${await put.text()}`);
    const done = await complete(h, headers, started.id);
    assert.equal(done.statusCode, 201, done.body);
    const file = await settled(h.app, started.id, headers);
    assert.equal(file.status, 'ready', JSON.stringify(file));
    const content = await h.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}/content?variant=w128.webp`,
      headers,
    });
    assert.equal(content.statusCode, 302, content.body);
    const location = String(content.headers.location);
    assert.ok(location.startsWith(s3.endpoint), location);
    const fetched = await fetch(location);
    assert.equal(fetched.status, 200);
    const bytes = Buffer.from(await fetched.arrayBuffer());
    assert.equal(bytes.subarray(8, 12).toString('ascii'), 'WEBP');
  });

  test('more bytes than declared, accepted by s3rver: 422 UPLOAD_MISMATCH at complete, the object removed from the bucket', async (t) => {
    const { headers } = await h.user();
    const data = await png(30, 30);
    const started = (await start(h, headers, data)).json<Started>();
    const longer = Buffer.concat([data, Buffer.alloc(500, 9)]);
    const put = await fetch(started.url, {
      method: 'PUT',
      headers: { ...started.headers, 'content-length': String(longer.length) },
      body: longer,
    });
    t.diagnostic(`the store ${put.ok ? 'kept' : 'refused'} the longer body (${put.status})`);
    if (put.ok) {
      assertProblem(await complete(h, headers, started.id), 422, 'UPLOAD_MISMATCH');
      assert.equal(await h.platform.storage.head(`files/${started.id}/upload`), null);
    } else {
      // A store that enforces the signed length refuses the PUT itself.
      assertProblem(await complete(h, headers, started.id), 409, 'UPLOAD_NOT_RECEIVED');
    }
  });
});
