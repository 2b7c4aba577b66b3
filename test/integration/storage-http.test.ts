// The local driver's signed URLs through the real app: GET (ETag, 304, ranges, HEAD, headers)
// and PUT (exactly the signed bytes), refusals as problems (never a 500), readiness, metrics.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/platform/config/index.ts';
import { createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { StorageUnavailableError, UrlSigner } from '../../src/platform/storage/index.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { assertProblem } from '../helpers/problem.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

/** Path and query of a signed URL (for `inject`). */
const pathOf = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

describe('storage HTTP: the local driver’s signed URLs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'gw-storage-http-'));
  const metrics = createMetricsRegistry();
  const config = testConfig({ STORAGE_LOCAL_DIR: root });
  const tdb = await createTestDatabase({ config });
  const { app } = await buildTestApp(
    { STORAGE_LOCAL_DIR: root },
    { database: tdb.database, metrics },
  );
  const storage = app.platform.storage;
  const signer = new UrlSigner(config.secrets.appSecret);
  test.after(async () => {
    await app.close();
    await tdb.drop();
    await rm(root, { recursive: true, force: true });
  });

  const body = Buffer.from('0123456789abcdefghij');
  await storage.put('h/obj/original', body, { contentType: 'image/png' });

  test('platform.storage is the local driver, and the storage routes are in the OpenAPI document', async () => {
    assert.equal(storage.driver, 'local');
    const doc = (await app.inject({ url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const path = doc.paths['/api/v1/storage/objects/{*}'];
    assert.ok(path?.get && path.put, Object.keys(doc.paths).join(' '));
  });

  test('GET: the bytes with ETag, private caching, nosniff, Accept-Ranges, a safe disposition, embeddable', async () => {
    const url = await storage.signedGetUrl('h/obj/original', {
      expiresInSeconds: 120,
      contentDisposition: 'inline',
    });
    assert.match(url, /^http:\/\/[^/]+\/api\/v1\/storage\/objects\/h\/obj\/original\?/);
    const res = await app.inject({ url: pathOf(url) });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.rawPayload, body);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.equal(res.headers['content-length'], '20');
    assert.match(String(res.headers.etag), /^"[0-9a-f]{32}"$/);
    assert.match(String(res.headers['cache-control']), /^private, max-age=1[12][0-9]$/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['content-disposition'], 'inline');
    assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
  });

  test('GET without a signed disposition: attachment; with a signed type: that type', async () => {
    const url = await storage.signedGetUrl('h/obj/original', {
      expiresInSeconds: 60,
      contentType: 'application/octet-stream',
    });
    const res = await app.inject({ url: pathOf(url) });
    assert.equal(res.headers['content-disposition'], 'attachment');
    assert.equal(res.headers['content-type'], 'application/octet-stream');
  });

  test('If-None-Match with the ETag: 304 with no body', async () => {
    const url = pathOf(await storage.signedGetUrl('h/obj/original', { expiresInSeconds: 60 }));
    const first = await app.inject({ url });
    const res = await app.inject({ url, headers: { 'if-none-match': String(first.headers.etag) } });
    assert.equal(res.statusCode, 304);
    assert.equal(res.body, '');
    assert.equal(res.headers.etag, first.headers.etag);
    const other = await app.inject({ url, headers: { 'if-none-match': '"other"' } });
    assert.equal(other.statusCode, 200);
  });

  test('Range: 206 with Content-Range; suffix ranges; 416 outside; several ranges or a stale If-Range: the whole object', async () => {
    const url = pathOf(await storage.signedGetUrl('h/obj/original', { expiresInSeconds: 60 }));
    const part = await app.inject({ url, headers: { range: 'bytes=2-5' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.body, '2345');
    assert.equal(part.headers['content-range'], 'bytes 2-5/20');
    assert.equal(part.headers['content-length'], '4');
    const suffix = await app.inject({ url, headers: { range: 'bytes=-3' } });
    assert.equal(suffix.statusCode, 206);
    assert.equal(suffix.body, 'hij');
    const open = await app.inject({ url, headers: { range: 'bytes=18-' } });
    assert.equal(open.body, 'ij');
    const outside = await app.inject({ url, headers: { range: 'bytes=20-' } });
    assert.equal(outside.statusCode, 416);
    assert.equal(outside.headers['content-range'], 'bytes */20');
    assert.equal(outside.body, '');
    const several = await app.inject({ url, headers: { range: 'bytes=0-1,4-5' } });
    assert.equal(several.statusCode, 200);
    assert.equal(several.body, body.toString());
    const stale = await app.inject({ url, headers: { range: 'bytes=0-1', 'if-range': '"stale"' } });
    assert.equal(stale.statusCode, 200);
    const garbage = await app.inject({ url, headers: { range: 'bytes=abc' } });
    assert.equal(garbage.statusCode, 200);
  });

  test('HEAD: the headers, no body', async () => {
    const url = pathOf(await storage.signedGetUrl('h/obj/original', { expiresInSeconds: 60 }));
    const res = await app.inject({ method: 'HEAD', url });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, '');
    assert.equal(res.headers['content-length'], '20');
  });

  test('a tampered, foreign, expired or unsigned URL: 403 problem; a deleted object: 404', async () => {
    const url = new URL(await storage.signedGetUrl('h/obj/original', { expiresInSeconds: 60 }));
    const tamper = (f: (u: URL) => void) => {
      const copy = new URL(url);
      f(copy);
      return pathOf(copy.toString());
    };
    for (const path of [
      tamper((u) => u.searchParams.set('signature', 'A'.repeat(43))),
      tamper((u) =>
        u.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 1)),
      ),
      tamper((u) => u.searchParams.set('type', 'text/html')),
      tamper((u) => u.searchParams.set('disposition', 'inline')),
      tamper((u) => (u.pathname = u.pathname.replace('original', 'other'))),
      tamper((u) => (u.pathname = u.pathname.replace('h/obj', 'h/../obj'))),
      tamper((u) => (u.pathname = `${u.pathname}/..%2f..%2f..%2fetc%2fpasswd`)),
    ]) {
      const res = await app.inject({ url: path });
      assertProblem(res, 403, 'STORAGE_SIGNATURE_INVALID');
    }
    const foreign = new UrlSigner('another-secret-of-enough-length-0123456789');
    const expiresSoon = Math.floor(Date.now() / 1000) + 60;
    const forged = await app.inject({
      url: `/api/v1/storage/objects/h/obj/original?expires=${String(expiresSoon)}&signature=${foreign.signGet('h/obj/original', { expires: expiresSoon })}`,
    });
    assertProblem(forged, 403, 'STORAGE_SIGNATURE_INVALID');
    const past = Math.floor(Date.now() / 1000) - 1;
    const expired = await app.inject({
      url: `/api/v1/storage/objects/h/obj/original?expires=${String(past)}&signature=${signer.signGet('h/obj/original', { expires: past })}`,
    });
    assertProblem(expired, 403, 'STORAGE_URL_EXPIRED');
    const unsigned = await app.inject({ url: '/api/v1/storage/objects/h/obj/original' });
    assertProblem(unsigned, 422, 'VALIDATION_FAILED');
    await storage.put('h/gone/x', Buffer.from('x'), { contentType: 'text/plain' });
    const gone = pathOf(await storage.signedGetUrl('h/gone/x', { expiresInSeconds: 60 }));
    await storage.delete('h/gone/x');
    assertProblem(await app.inject({ url: gone }), 404, 'STORAGE_OBJECT_NOT_FOUND');
  });

  const presign = async (key: string, bytes: Buffer, contentType = 'image/png') =>
    storage.presignPut(key, {
      contentType,
      contentLength: bytes.length,
      checksumSha256: sha256(bytes),
      expiresInSeconds: 60,
    });

  test('PUT: exactly the signed bytes are stored (200, ETag); the object reads back', async () => {
    const bytes = Buffer.from('an uploaded picture');
    const p = await presign('h/up/original', bytes);
    const res = await app.inject({
      method: 'PUT',
      url: pathOf(p.url),
      headers: p.headers,
      payload: bytes,
    });
    assert.equal(res.statusCode, 200, res.body);
    const stored = res.json<{ size: number; etag: string; checksumSha256: string }>();
    assert.equal(stored.size, bytes.length);
    assert.equal(stored.checksumSha256, sha256(bytes));
    assert.equal(res.headers.etag, `"${stored.etag}"`);
    const head = await storage.head('h/up/original');
    assert.equal(head?.contentType, 'image/png');
    assert.equal(head?.size, bytes.length);
  });

  test('PUT refused, nothing kept: another type, length or checksum (422 with reason), a bad or expired signature (403)', async () => {
    const bytes = Buffer.from('declared bytes');
    const p = await presign('h/refused/original', bytes);
    const put = (headers: Record<string, string>, payload: Buffer, url = pathOf(p.url)) =>
      app.inject({ method: 'PUT', url, headers, payload });
    const cases: [string, Record<string, string>, Buffer, string][] = [
      ['type', { ...p.headers, 'content-type': 'text/html' }, bytes, 'type'],
      [
        'shorter',
        { ...p.headers, 'content-length': String(bytes.length - 1) },
        bytes.subarray(1),
        'length',
      ],
      ['other bytes', p.headers, Buffer.from('declared BYTES'), 'checksum'],
      [
        'checksum header',
        { ...p.headers, 'x-amz-checksum-sha256': sha256(Buffer.from('x')) },
        bytes,
        'checksum',
      ],
    ];
    for (const [name, headers, payload, reason] of cases) {
      const res = await put(headers, payload);
      const problem = assertProblem(res, 422, 'STORAGE_OBJECT_MISMATCH');
      assert.equal(problem.reason, reason, name);
      assert.equal(await storage.head('h/refused/original'), null, name);
    }
    const tampered = new URL(p.url);
    tampered.searchParams.set('length', '1000000');
    assertProblem(
      await put(p.headers, bytes, pathOf(tampered.toString())),
      403,
      'STORAGE_SIGNATURE_INVALID',
    );
    const getUrl = await storage.signedGetUrl('h/obj/original', { expiresInSeconds: 60 });
    assertProblem(
      await app.inject({ method: 'PUT', url: pathOf(getUrl), headers: p.headers, payload: bytes }),
      422,
      'VALIDATION_FAILED',
    );
    const past = Math.floor(Date.now() / 1000) - 1;
    const params = {
      expires: past,
      type: 'image/png',
      length: bytes.length,
      sha256: sha256(bytes),
    };
    const expired = `/api/v1/storage/objects/h/refused/original?${new URLSearchParams({
      expires: String(past),
      type: params.type,
      length: String(params.length),
      sha256: params.sha256,
      signature: signer.signPut('h/refused/original', params),
    }).toString()}`;
    assertProblem(await put(p.headers, bytes, expired), 403, 'STORAGE_URL_EXPIRED');
    const files = await readdir(join(root, 'h'), { recursive: true });
    assert.ok(!files.some((f) => f.includes('refused')), files.join(', '));
  });

  test('PUT of more bytes than signed, over a real socket: 413 as soon as they pass, connection closed, nothing kept', async (t) => {
    const own = await buildTestApp({ STORAGE_LOCAL_DIR: root });
    t.after(() => own.app.close());
    await own.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = own.app.server.address() as AddressInfo;
    const declared = Buffer.alloc(64 * 1024, 7);
    const p = await presign('h/over/original', declared, 'application/octet-stream');
    const url = new URL(p.url);
    let sent = 0;
    const result = await new Promise<{
      status: number;
      headers: Record<string, unknown>;
      body: string;
    }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'PUT',
          path: `${url.pathname}${url.search}`,
          headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
          );
        },
      );
      req.on('error', reject);
      // Offers 64 MB, 64 KiB at a time, as fast as the server takes them.
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (sent < 1024) {
          sent++;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      req.on('close', () => undefined);
      pump();
    });
    assert.equal(result.status, 413, result.body);
    assert.equal((JSON.parse(result.body) as { code: string }).code, 'STORAGE_OBJECT_TOO_LARGE');
    assert.equal(result.headers.connection, 'close');
    assert.ok(sent < 512, `the client got to write ${String(sent)} of 1024 chunks`);
    assert.equal(await storage.head('h/over/original'), null);
  });

  test('a slow upload may take longer than HANDLER_TIMEOUT_MS (up to REQUEST_TIMEOUT_MS)', async (t) => {
    const own = await buildTestApp({
      STORAGE_LOCAL_DIR: root,
      HANDLER_TIMEOUT_MS: '200',
      REQUEST_TIMEOUT_MS: '10000',
    });
    t.after(() => own.app.close());
    await own.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = own.app.server.address() as AddressInfo;
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.alloc(1000, i));
    const whole = Buffer.concat(parts);
    const p = await presign('h/slow/original', whole, 'application/octet-stream');
    const url = new URL(p.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'PUT',
          path: `${url.pathname}${url.search}`,
          headers: p.headers,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      let i = 0;
      const next = () => {
        const part = parts[i++];
        if (!part) {
          req.end();
          return;
        }
        req.write(part);
        setTimeout(next, 100);
      };
      next();
    });
    assert.equal(status, 200);
    assert.equal((await storage.head('h/slow/original'))?.size, whole.length);
  });

  test('readiness checks the storage folder; /metrics counts operations and bytes by driver', async () => {
    const ready = await app.inject({ url: '/health/ready' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.equal(
      ready.json<{ checks: Record<string, { status: string }> }>().checks.storage?.status,
      'up',
    );
    const text = (await app.inject({ url: '/metrics' })).body;
    assert.match(text, /storage_operations_total\{driver="local",op="put",outcome="ok"\} [1-9]/);
    assert.match(text, /storage_operations_total\{driver="local",op="get",outcome="ok"\} [1-9]/);
    assert.match(text, /storage_bytes_written_total\{driver="local"\} [1-9]/);
    assert.match(
      text,
      /storage_operation_duration_seconds_bucket\{le="0.005",driver="local",op="head"\}/,
    );
  });

  test('readiness reports the storage down when its folder cannot be made, and writes fail with 503 STORAGE_UNAVAILABLE', async (t) => {
    const file = join(root, 'not-a-folder');
    await writeFile(file, 'x');
    const broken = await buildTestApp(
      { STORAGE_LOCAL_DIR: join(file, 'files') },
      { database: tdb.database },
    );
    t.after(() => broken.app.close());
    const ready = await broken.app.inject({ url: '/health/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(
      ready.json<{ checks: Record<string, { status: string }> }>().checks.storage?.status,
      'down',
    );
    await assert.rejects(
      broken.app.platform.storage.put('a/b', Buffer.from('x'), { contentType: 'text/plain' }),
      (error: unknown) => error instanceof StorageUnavailableError && error.status === 503,
    );
  });
});

describe('storage settings', () => {
  test('defaults: the local driver under DATA_DIR, signed URLs for 5 minutes', () => {
    const config = testConfig({ DATA_DIR: '/var/lib/gw' });
    assert.equal(config.storage.driver, 'local');
    assert.equal(config.storage.localDir, '/var/lib/gw/files');
    assert.equal(config.storage.signedUrlTtlS, 300);
  });

  test('s3 needs a bucket and credentials, listed together; a TTL over 7 days is refused', () => {
    assert.throws(
      () => testConfig({ STORAGE_DRIVER: 's3', STORAGE_SIGNED_URL_TTL: '8d' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        ['S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'STORAGE_SIGNED_URL_TTL'].every(
          (key) => error.issues.some((i) => i.key === key),
        ),
    );
    assert.throws(() => testConfig({ S3_BUCKET: 'Not_A_Bucket' }), ConfigError);
    const s3 = testConfig({
      STORAGE_DRIVER: 's3',
      S3_BUCKET: 'bucket-one',
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret-key',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_FORCE_PATH_STYLE: 'true',
    });
    assert.equal(s3.storage.s3.endpoint, 'http://127.0.0.1:9000');
    assert.equal(s3.storage.s3.forcePathStyle, true);
  });

  test('with the s3 driver the local storage routes are not mounted', async (t) => {
    const { app } = await buildTestApp({
      STORAGE_DRIVER: 's3',
      S3_BUCKET: 'bucket-one',
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret-key',
      S3_ENDPOINT: 'http://127.0.0.1:1',
      S3_FORCE_PATH_STYLE: 'true',
    });
    t.after(() => app.close());
    assert.equal(app.platform.storage.driver, 's3');
    const res = await app.inject({ url: '/api/v1/storage/objects/a/b?expires=1&signature=x' });
    assert.equal(res.statusCode, 404);
  });
});
