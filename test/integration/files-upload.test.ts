// Files through HTTP (issue 15): multipart uploads checked by content before they are stored,
// caps and quota, image processing (metadata stripped, variants, blurhash, events), reads and
// deletion, against real PostgreSQL and local storage in a temporary folder.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { filesModule } from '../../src/platform/files/index.ts';
import { registeredRoutes } from '../../src/platform/http/index.ts';
import { moduleJobs } from '../../src/platform/modules/index.ts';
import { signInAdmin } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  ftestModule,
  settled,
  startFilesHarness,
  type FileJson,
  type FilesHarness,
} from '../fixtures/files/harness.ts';
import {
  hasGpsPointer,
  HTML,
  jpeg,
  jpegWithGps,
  multipart,
  pdf,
  pixelBombPng,
  png,
  SVG_WITH_SCRIPT,
  zipBomb,
  type FormPart,
} from '../fixtures/files/samples.ts';

const overCap = await png(120, 100);
const module = ftestModule({ smallCap: overCap.length - 1 });

function upload(h: FilesHarness, headers: Record<string, string>, parts: readonly FormPart[]) {
  const form = multipart(parts);
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/files',
    headers: { ...headers, 'content-type': form.contentType },
    payload: form.body,
  });
}

/** Every object key under `files/` (the storage's own listing). */
async function storedObjects(h: FilesHarness): Promise<string[]> {
  const objects = await h.platform.storage.list('files/', { limit: 1_000 });
  return objects.map((o) => o.key);
}

async function fileCount(h: FilesHarness): Promise<number> {
  const { rows } = await h.tdb.database.pool.query<{ n: string }>(
    'select count(*)::text as n from gw_file',
  );
  return Number(rows[0]?.n);
}

describe('files: multipart uploads', () => {
  let h: FilesHarness;
  let headers: Record<string, string>;
  before(async () => {
    h = await startFilesHarness(module);
    headers = (await h.user()).headers;
  });
  after(() => h.close());

  test('a JPEG with GPS EXIF: 201 processing, then ready; the original and every variant carry no EXIF, GPS or XMP, upright', async () => {
    const sample = await jpegWithGps();
    assert.ok(hasGpsPointer(sample), 'the sample carries GPS');
    assert.equal((await sharp(sample).metadata()).orientation, 6);
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.picture' },
      { name: 'file', filename: 'holiday.jpg', contentType: 'image/jpeg', data: sample },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json<FileJson>();
    assert.equal(created.status, 'processing');
    assert.equal(created.contentType, 'image/jpeg');
    assert.equal(created.purpose, 'ftest.picture');
    assert.equal(created.filename, 'holiday.jpg');
    const file = await settled(h.app, created.id, headers);
    assert.equal(file.status, 'ready', JSON.stringify(file));
    assert.equal(file.width, 600, 'auto-oriented (EXIF orientation 6)');
    assert.equal(file.height, 800);
    assert.ok(file.blurhash && file.blurhash.length >= 6);
    assert.deepEqual(file.variants.map((v) => `${v.name}.${v.format}`).sort(), [
      'w128.jpeg',
      'w128.webp',
    ]);
    for (const variant of [undefined, 'w128.webp', 'w128.jpeg']) {
      const content = await h.app.inject({
        method: 'GET',
        url: `/api/v1/files/${created.id}/content${variant ? `?variant=${variant}` : ''}`,
        headers,
      });
      assert.equal(content.statusCode, 200, content.body);
      assert.equal(content.headers['x-content-type-options'], 'nosniff');
      const meta = await sharp(content.rawPayload).metadata();
      assert.equal(meta.exif, undefined, `${variant ?? 'original'} has no EXIF`);
      assert.equal(meta.xmp, undefined, `${variant ?? 'original'} has no XMP`);
      assert.ok(!content.rawPayload.includes(Buffer.from('GroundworkCam')));
      assert.ok(!hasGpsPointer(content.rawPayload), `${variant ?? 'original'} has no GPS`);
      assert.ok((meta.orientation ?? 1) === 1);
      if (variant === undefined) assert.deepEqual([meta.width, meta.height], [600, 800]);
      else assert.equal(meta.width, 128);
    }
    // The upload as sent (with its GPS) is gone from storage.
    const objects = await storedObjects(h);
    assert.ok(!objects.some((o) => o.endsWith(`${created.id}/upload`)), objects.join());
  });

  test('a PNG named .jpg and sent as image/jpeg is stored as the PNG it is', async () => {
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.picture' },
      { name: 'file', filename: 'photo.jpg', contentType: 'image/jpeg', data: await png() },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<FileJson>().contentType, 'image/png');
  });

  test('HTML sent as image/png, an SVG with a script and a zip bomb are refused (415), nothing stored', async () => {
    const before = await fileCount(h);
    for (const [data, name, type] of [
      [HTML, 'x.png', 'image/png'],
      [SVG_WITH_SCRIPT, 'x.svg', 'image/svg+xml'],
      [zipBomb(), 'x.png', 'image/png'],
    ] as const) {
      const res = await upload(h, headers, [
        { name: 'purpose', data: 'ftest.picture' },
        { name: 'file', filename: name, contentType: type, data },
      ]);
      assertProblem(res, 415, 'FILE_TYPE_NOT_ALLOWED');
    }
    assert.equal(await fileCount(h), before);
  });

  test('a 50,000 × 50,000 PNG of a few KB is refused from its header, before decoding', async () => {
    const bomb = pixelBombPng();
    assert.ok(bomb.length < 20_000, `${bomb.length} bytes`);
    const started = performance.now();
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.picture' },
      { name: 'file', filename: 'bomb.png', contentType: 'image/png', data: bomb },
    ]);
    assertProblem(res, 422, 'FILE_TOO_MANY_PIXELS');
    assert.ok(performance.now() - started < 2_000, 'refused quickly (nothing decoded)');
  });

  test('a truncated JPEG is accepted by its header, then fails with CORRUPT (file.failed published)', async () => {
    const whole = await jpeg(640, 480);
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.picture' },
      {
        name: 'file',
        filename: 'cut.jpg',
        data: whole.subarray(0, Math.floor(whole.length * 0.6)),
      },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const file = await settled(h.app, res.json<FileJson>().id, headers);
    assert.equal(file.status, 'failed');
    assert.equal(file.failureReason, 'CORRUPT');
    const content = await h.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}/content`,
      headers,
    });
    assertProblem(content, 409, 'FILE_NOT_READY');
    const { rows } = await h.tdb.database.pool.query<{ type: string; data: { reason: string } }>(
      `select type, data from gw_event where subject_id = $1`,
      [file.id],
    );
    assert.deepEqual(
      rows.map((r) => [r.type, r.data.reason]),
      [['file.failed', 'CORRUPT']],
    );
  });

  test('a 0-byte file, no file, two files, a field after the file: 4xx problems, nothing stored', async () => {
    const before = await fileCount(h);
    assertProblem(
      await upload(h, headers, [{ name: 'file', filename: 'empty.png', data: Buffer.alloc(0) }]),
      422,
      'FILE_EMPTY',
    );
    assertProblem(
      await upload(h, headers, [{ name: 'purpose', data: 'ftest.picture' }]),
      400,
      'FILE_MISSING',
    );
    const image = await png(40, 40);
    assertProblem(
      await upload(h, headers, [
        { name: 'file', filename: 'a.png', data: image },
        { name: 'file2', filename: 'b.png', data: image },
      ]),
      400,
      'FILE_TOO_MANY',
    );
    assertProblem(
      await upload(h, headers, [
        { name: 'file', filename: 'a.png', data: image },
        { name: 'purpose', data: 'ftest.picture' },
      ]),
      400,
      'FILE_MULTIPART_INVALID',
    );
    const json = await h.app.inject({
      method: 'POST',
      url: '/api/v1/files',
      headers,
      payload: { file: 'x' },
    });
    assertProblem(json, 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await fileCount(h), before);
    const objects = await storedObjects(h);
    const { rows } = await h.tdb.database.pool.query<{ id: string }>('select id from gw_file');
    const ids = new Set(rows.map((r) => r.id));
    assert.ok(
      objects.every((o) => ids.has(o.split('/').at(-2) ?? '')),
      `no object without its file: ${objects.join(', ')}`,
    );
  });

  test('one byte over the cap: 413 FILE_TOO_LARGE, nothing stored, quota given back', async () => {
    const before = await storedObjects(h);
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.small' },
      { name: 'file', filename: 'big.png', data: overCap },
    ]);
    assertProblem(res, 413, 'FILE_TOO_LARGE');
    assert.deepEqual(await storedObjects(h), before);
    // Exactly at the cap it passes the size check.
    const fits = await png(40, 40);
    assert.ok(fits.length <= overCap.length - 1);
    const ok = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.small' },
      { name: 'file', filename: 'small.png', data: fits },
    ]);
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test('file names: ../../etc/passwd, 5,000 characters, NUL and quotes are made safe', async () => {
    const image = await png(40, 40);
    const cases: [string, (name: string) => void][] = [
      ['../../etc/passwd', (n) => assert.equal(n, 'passwd')],
      ['..\\..\\windows\\win.ini', (n) => assert.equal(n, 'win.ini')],
      [
        `${'a'.repeat(5_000)}.png`,
        (n) => {
          assert.ok(n.length <= 200, String(n.length));
          assert.ok(n.endsWith('.png'));
        },
      ],
      ['bad\u0000na\u202eme.png', (n) => assert.equal(n, 'badname.png')],
      ['', (n) => assert.equal(n, 'file')],
    ];
    for (const [filename, check] of cases) {
      const res = await upload(h, headers, [
        { name: 'purpose', data: 'ftest.picture' },
        { name: 'file', filename, data: image },
      ]);
      assert.equal(res.statusCode, 201, `${filename.slice(0, 40)}: ${res.body}`);
      check(res.json<FileJson>().filename);
    }
  });

  test('an unknown purpose is 422 FILE_PURPOSE_UNKNOWN; no purpose: the default (files.image)', async () => {
    assertProblem(
      await upload(h, headers, [
        { name: 'purpose', data: 'nope.nothing' },
        { name: 'file', filename: 'a.png', data: await png(40, 40) },
      ]),
      422,
      'FILE_PURPOSE_UNKNOWN',
    );
    const res = await upload(h, headers, [
      { name: 'file', filename: 'a.png', data: await png(40, 40) },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<FileJson>().purpose, 'files.image');
  });

  test('anonymous uploads are 401', async () => {
    const res = await upload(h, {}, [{ name: 'file', filename: 'a.png', data: await png(20, 20) }]);
    assertProblem(res, 401, 'UNAUTHORIZED');
  });

  test('a document purpose: ready at once, served as an attachment with ETag, Range and 304', async () => {
    const doc = pdf();
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.doc' },
      { name: 'file', filename: 'report final é.pdf', data: doc },
    ]);
    assert.equal(res.statusCode, 201, res.body);
    const file = res.json<FileJson>();
    assert.equal(file.status, 'ready');
    assert.equal(file.contentType, 'application/pdf');
    const url = `/api/v1/files/${file.id}/content`;
    const full = await h.app.inject({ method: 'GET', url, headers });
    assert.equal(full.statusCode, 200);
    assert.deepEqual(full.rawPayload, doc);
    assert.equal(full.headers['content-type'], 'application/pdf');
    assert.equal(
      full.headers['content-disposition'],
      `attachment; filename="report final _.pdf"; filename*=UTF-8''report%20final%20%C3%A9.pdf`,
    );
    assert.equal(full.headers['x-content-type-options'], 'nosniff');
    assert.match(String(full.headers['cache-control']), /^private/);
    const etag = String(full.headers.etag);
    assert.match(etag, /^".+"$/);
    const part = await h.app.inject({
      method: 'GET',
      url,
      headers: { ...headers, range: 'bytes=0-7' },
    });
    assert.equal(part.statusCode, 206);
    assert.equal(part.body, '%PDF-1.4');
    assert.equal(part.headers['content-range'], `bytes 0-7/${doc.length}`);
    const cached = await h.app.inject({
      method: 'GET',
      url,
      headers: { ...headers, 'if-none-match': etag },
    });
    assert.equal(cached.statusCode, 304);
    const { rows } = await h.tdb.database.pool.query<{ type: string }>(
      `select type from gw_event where subject_id = $1`,
      [file.id],
    );
    assert.deepEqual(
      rows.map((r) => r.type),
      ['file.ready'],
    );
  });
});

describe('files: access, deletion, quota', () => {
  let h: FilesHarness;
  before(async () => {
    h = await startFilesHarness(module, { FILES_USER_QUOTA_BYTES: '60000' });
  });
  after(() => h.close());

  test("another user's private file is 404 (metadata, content, delete); a public purpose's file anyone sees", async () => {
    const owner = await h.user();
    const other = await h.user();
    const image = await png(60, 40);
    const own = (
      await upload(h, owner.headers, [
        { name: 'purpose', data: 'ftest.picture' },
        { name: 'file', filename: 'p.png', data: image },
      ])
    ).json<FileJson>();
    for (const [method, url] of [
      ['GET', `/api/v1/files/${own.id}`],
      ['GET', `/api/v1/files/${own.id}/content`],
      ['DELETE', `/api/v1/files/${own.id}`],
    ] as const) {
      assertProblem(
        await h.app.inject({ method, url, headers: other.headers }),
        404,
        'FILE_NOT_FOUND',
      );
    }
    assertProblem(
      await h.app.inject({ method: 'GET', url: `/api/v1/files/${own.id}` }),
      404,
      'FILE_NOT_FOUND',
    );
    const shared = (
      await upload(h, owner.headers, [
        { name: 'purpose', data: 'ftest.public' },
        { name: 'file', filename: 'p.png', data: image },
      ])
    ).json<FileJson>();
    const seen = await h.app.inject({ method: 'GET', url: `/api/v1/files/${shared.id}` });
    assert.equal(seen.statusCode, 200);
  });

  test('delete: gone at once, quota given back; the purge job removes its objects after the grace period', async () => {
    const { headers } = await h.user();
    const res = await upload(h, headers, [
      { name: 'purpose', data: 'ftest.picture' },
      { name: 'file', filename: 'p.png', data: await png(60, 40) },
    ]);
    const file = await settled(h.app, res.json<FileJson>().id, headers);
    assert.equal(file.status, 'ready');
    const objects = (await storedObjects(h)).filter((o) => o.includes(file.id));
    assert.ok(objects.length >= 3, objects.join());
    const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/files/${file.id}`, headers });
    assert.equal(del.statusCode, 204);
    assertProblem(
      await h.app.inject({ method: 'GET', url: `/api/v1/files/${file.id}`, headers }),
      404,
      'FILE_NOT_FOUND',
    );
    const { purgeFiles } = await import('../../src/platform/files/index.ts');
    assert.equal((await purgeFiles(h.platform)).files, 0, 'within the grace period');
    const later = new Date(Date.now() + 2 * 86_400_000);
    const purged = await purgeFiles(h.platform, { now: later });
    assert.ok(purged.files >= 1);
    assert.deepEqual(
      (await storedObjects(h)).filter((o) => o.includes(file.id)),
      [],
    );
  });

  test('objects no row knows (a crash between storing and recording) are swept once past the grace period', async () => {
    const { v7 } = await import('uuid');
    const { purgeFiles } = await import('../../src/platform/files/index.ts');
    const lostId = v7({ msecs: Date.now() - 36 * 3_600_000 });
    const recentId = v7();
    for (const id of [lostId, recentId])
      await h.platform.storage.put(`files/${id}/upload`, await png(10, 10), {
        contentType: 'image/png',
      });
    const result = await purgeFiles(h.platform);
    assert.equal(result.orphanObjects, 1);
    const keys = await storedObjects(h);
    assert.ok(!keys.includes(`files/${lostId}/upload`));
    assert.ok(keys.includes(`files/${recentId}/upload`), 'within the grace period: kept');
  });

  test('quota: uploads past FILES_USER_QUOTA_BYTES are 413 QUOTA_EXCEEDED; concurrent uploads never exceed it', async () => {
    const { headers } = await h.user();
    const image = await png(100, 60); // about 18 KB
    assert.ok(image.length > 15_000 && image.length < 25_000, String(image.length));
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        upload(h, headers, [
          { name: 'purpose', data: 'ftest.picture' },
          { name: 'file', filename: 'q.png', data: image },
        ]),
      ),
    );
    const created = results.filter((r) => r.statusCode === 201).length;
    for (const r of results.filter((x) => x.statusCode !== 201))
      assertProblem(r, 413, 'QUOTA_EXCEEDED');
    // Each upload reserves its body's length: 3 of about 18.3 KB fit in 60,000 bytes.
    assert.equal(created, 3);
    assert.equal(results.length - created, 3);
    const { rows } = await h.tdb.database.pool.query<{ used: string }>(
      `select sum(quota_bytes)::text as used from gw_file where deleted_at is null and owner_id in
         (select owner_id from gw_file group by owner_id having count(*) = $1)`,
      [created],
    );
    assert.ok(Number(rows[0]?.used) <= 60_000);
  });

  test('files:admin reads and deletes any owner’s file', async () => {
    const owner = await h.user();
    const adminHeaders = (await signInAdmin(h.app, h)).headers;
    const file = (
      await upload(h, owner.headers, [
        { name: 'purpose', data: 'ftest.picture' },
        { name: 'file', filename: 'p.png', data: await png(20, 20) },
      ])
    ).json<FileJson>();
    const seen = await h.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}`,
      headers: adminHeaders,
    });
    assert.equal(seen.statusCode, 200, seen.body);
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/files/${file.id}`,
      headers: adminHeaders,
    });
    assert.equal(del.statusCode, 204);
  });

  test('metrics: uploads by outcome, processing time and failures, bytes stored', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /files_uploads_total\{outcome="stored"\} \d+/);
    assert.match(res.body, /files_uploads_total\{outcome="quota_exceeded"\} \d+/);
    assert.match(res.body, /files_processing_duration_seconds_count\{outcome="ready"\} \d+/);
    const stored = /files_stored_bytes (\d+)/.exec(res.body);
    assert.ok(stored && Number(stored[1]) > 0, 'bytes stored read from the database');
  });

  test('POST /files has its own handler deadline (FILES_UPLOAD_TIMEOUT); processing runs FILES_PROCESSING_CONCURRENCY at once', () => {
    const route = registeredRoutes(h.app).find(
      (r) => r.url === '/api/v1/files' && r.method === 'POST',
    );
    assert.equal(route?.config?.handlerTimeoutMs, 300_000);
    const job = moduleJobs(filesModule, h.config).find((j) => j.name === 'files.process');
    assert.equal(job?.options.concurrency, 2);
  });
});
