// The same conformance suite against both drivers: the local folder (its signed URLs served by
// the real app on a real port) and S3 (a real S3-compatible server, s3rver, on loopback).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  LocalStorage,
  ObjectMismatchError,
  ObjectTooLargeError,
  S3Storage,
  StorageUnavailableError,
  UrlSigner,
  type Storage,
} from '../../src/platform/storage/index.ts';
import { buildTestApp } from '../helpers/app.ts';
import { startTestS3 } from '../helpers/s3.ts';

interface DriverHarness {
  storage: Storage;
  /** Temporary files left behind (partial writes, spools). */
  leftovers(): Promise<string[]>;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** A byte stream of `chunks` × 64 KiB that counts how many chunks were pulled from it. */
function countingSource(chunks: number): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const stream = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (pulled >= chunks) {
        this.push(null);
        return;
      }
      pulled++;
      this.push(Buffer.alloc(64 * 1024, pulled % 251));
    },
  });
  return { stream, pulled: () => pulled };
}

async function localHarness(): Promise<DriverHarness> {
  const root = await mkdtemp(join(tmpdir(), 'gw-storage-local-'));
  const { app, config } = await buildTestApp({ STORAGE_LOCAL_DIR: root });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  // The app's signer (same APP_SECRET), with URLs pointing at the port it listens on.
  const storage = new LocalStorage({
    root,
    publicUrl: `http://127.0.0.1:${String(port)}`,
    signer: new UrlSigner(config.secrets.appSecret),
  });
  return {
    storage,
    leftovers: async () => (await filesUnder(root)).filter((f) => /\/\.(tmp|meta)-[^/]*$/.test(f)),
    async close() {
      await app.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function s3Harness(): Promise<DriverHarness> {
  const s3 = await startTestS3();
  const spoolDir = await mkdtemp(join(tmpdir(), 'gw-storage-spool-'));
  const storage = new S3Storage({ ...s3.options, spoolDir });
  return {
    storage,
    leftovers: () => filesUnder(spoolDir),
    async close() {
      await storage.close();
      await s3.close();
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
}

function conformance(driver: 'local' | 's3', make: () => Promise<DriverHarness>): void {
  describe(`storage conformance: ${driver} driver`, async () => {
    const h = await make();
    const { storage } = h;
    test.after(() => h.close());

    test('put a buffer, then head and get give back its type, size, SHA-256 and ETag', async () => {
      const body = Buffer.from('hello world');
      const stored = await storage.put('c/buffer/original', body, { contentType: 'text/plain' });
      assert.equal(stored.size, 11);
      assert.equal(stored.checksumSha256, sha256(body));
      assert.ok(stored.etag.length > 0);
      const head = await storage.head('c/buffer/original');
      assert.equal(head?.size, 11);
      assert.equal(head?.contentType, 'text/plain');
      assert.equal(head?.etag, stored.etag);
      assert.equal(head?.checksumSha256, sha256(body));
      const got = await storage.get('c/buffer/original');
      assert.ok(got);
      assert.equal(got.range, null);
      assert.deepEqual(Buffer.concat(await got.body.toArray()), body);
    });

    test('put a stream of unknown length, with a declared length and checksum that match', async () => {
      const parts = [Buffer.alloc(100_000, 1), Buffer.alloc(50_000, 2)];
      const whole = Buffer.concat(parts);
      const stored = await storage.put('c/stream/original', Readable.from(parts), {
        contentType: 'application/octet-stream',
        contentLength: whole.length,
        checksumSha256: sha256(whole),
        maxBytes: whole.length,
      });
      assert.equal(stored.size, 150_000);
      const got = await storage.get('c/stream/original');
      assert.deepEqual(Buffer.concat(await got!.body.toArray()), whole);
    });

    test('get a range (inclusive; open-ended); a range past the end gives the whole object with range null', async () => {
      await storage.put('c/range/x', Buffer.from('0123456789'), { contentType: 'text/plain' });
      const part = await storage.get('c/range/x', { range: { start: 2, end: 4 } });
      assert.deepEqual(part?.range, { start: 2, end: 4 });
      assert.equal(part?.object.size, 10);
      assert.equal(Buffer.concat(await part.body.toArray()).toString(), '234');
      const tail = await storage.get('c/range/x', { range: { start: 7 } });
      assert.deepEqual(tail?.range, { start: 7, end: 9 });
      assert.equal(Buffer.concat(await tail.body.toArray()).toString(), '789');
      const past = await storage.get('c/range/x', { range: { start: 10 } });
      assert.equal(past?.range, null);
      assert.equal(Buffer.concat(await past.body.toArray()).toString(), '0123456789');
    });

    test('a missing object: head and get answer null, delete does nothing', async () => {
      assert.equal(await storage.head('c/missing/x'), null);
      assert.equal(await storage.get('c/missing/x'), null);
      await storage.delete('c/missing/x');
    });

    test('put replaces an object; delete removes it', async () => {
      await storage.put('c/replace/x', Buffer.from('one'), { contentType: 'text/plain' });
      await storage.put('c/replace/x', Buffer.from('second'), { contentType: 'image/png' });
      const head = await storage.head('c/replace/x');
      assert.equal(head?.size, 6);
      assert.equal(head?.contentType, 'image/png');
      await storage.delete('c/replace/x');
      assert.equal(await storage.head('c/replace/x'), null);
      assert.equal(await storage.get('c/replace/x'), null);
    });

    test('list by prefix, a page at a time after the last key seen', async () => {
      for (const key of ['l/a/1', 'l/a/2', 'l/a/3', 'l/b/1', 'lx/1'])
        await storage.put(key, Buffer.from(key), { contentType: 'text/plain' });
      const all = await storage.list('l/');
      assert.deepEqual(
        all.map((o) => o.key),
        ['l/a/1', 'l/a/2', 'l/a/3', 'l/b/1'],
      );
      assert.equal(all[0]?.size, 5);
      const first = await storage.list('l/', { limit: 2 });
      assert.deepEqual(
        first.map((o) => o.key),
        ['l/a/1', 'l/a/2'],
      );
      const next = await storage.list('l/', { limit: 2, after: first.at(-1)?.key });
      assert.deepEqual(
        next.map((o) => o.key),
        ['l/a/3', 'l/b/1'],
      );
      assert.deepEqual(await storage.list('l/', { after: 'l/b/1' }), []);
      assert.deepEqual(
        (await storage.list('l/a')).map((o) => o.key),
        ['l/a/1', 'l/a/2', 'l/a/3'],
      );
      assert.deepEqual(await storage.list('nothing/'), []);
    });

    test('maxBytes: the write stops as soon as it is passed, the source is not read to its end, nothing is kept', async () => {
      const source = countingSource(100); // 6.4 MB offered
      await assert.rejects(
        storage.put('c/big/original', source.stream, {
          contentType: 'application/octet-stream',
          maxBytes: 200 * 1024,
        }),
        (error: unknown) => error instanceof ObjectTooLargeError && error.maxBytes === 200 * 1024,
      );
      assert.ok(source.pulled() < 10, `pulled ${String(source.pulled())} chunks of 100`);
      assert.equal(source.stream.destroyed, false, 'the caller decides what to do with the rest');
      assert.equal(await storage.head('c/big/original'), null);
      assert.deepEqual(await h.leftovers(), []);
      // One byte over, as a buffer too.
      await assert.rejects(
        storage.put('c/big/original', Buffer.alloc(11), {
          contentType: 'text/plain',
          maxBytes: 10,
        }),
        ObjectTooLargeError,
      );
      assert.ok(
        await storage.put('c/big/original', Buffer.alloc(10), {
          contentType: 'text/plain',
          maxBytes: 10,
        }),
      );
    });

    test('a body longer or shorter than announced, or with another checksum, is refused and nothing kept; the previous version stays', async () => {
      const previous = Buffer.from('previous');
      await storage.put('c/mismatch/x', previous, { contentType: 'text/plain' });
      const body = Buffer.from('0123456789');
      const cases: [string, Readable | Buffer, object, 'length' | 'checksum'][] = [
        ['longer stream', Readable.from([body]), { contentLength: 5 }, 'length'],
        ['shorter stream', Readable.from([body]), { contentLength: 20 }, 'length'],
        [
          'other bytes',
          Readable.from([body]),
          { checksumSha256: sha256(Buffer.from('x')) },
          'checksum',
        ],
        ['longer buffer', body, { contentLength: 5 }, 'length'],
        ['buffer, other bytes', body, { checksumSha256: sha256(Buffer.from('x')) }, 'checksum'],
      ];
      for (const [name, source, options, reason] of cases) {
        await assert.rejects(
          storage.put('c/mismatch/x', source, { contentType: 'text/plain', ...options }),
          (error: unknown) => error instanceof ObjectMismatchError && error.reason === reason,
          name,
        );
        const got = await storage.get('c/mismatch/x');
        assert.deepEqual(Buffer.concat(await got!.body.toArray()), previous, name);
        await assert.rejects(
          storage.put(
            'c/mismatch/fresh',
            source instanceof Buffer ? source : Readable.from([body]),
            {
              contentType: 'text/plain',
              ...options,
            },
          ),
          ObjectMismatchError,
        );
        assert.equal(await storage.head('c/mismatch/fresh'), null, name);
      }
      assert.deepEqual(await h.leftovers(), []);
    });

    test('an aborted put stops and keeps nothing', async () => {
      const controller = new AbortController();
      const source = countingSource(1_000);
      const put = storage.put('c/abort/x', source.stream, {
        contentType: 'text/plain',
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(new Error('client gone')), 5);
      await assert.rejects(put, /client gone/);
      assert.equal(await storage.head('c/abort/x'), null);
      assert.deepEqual(await h.leftovers(), []);
    });

    test('a signed GET URL: fetch gets the bytes with the signed type and disposition', async () => {
      const body = Buffer.from('<svg onload="alert(1)"/>');
      await storage.put('c/signed/original', body, { contentType: 'image/svg+xml' });
      const url = await storage.signedGetUrl('c/signed/original', {
        expiresInSeconds: 60,
        contentDisposition: 'attachment; filename="evil\r\nx.svg"',
        contentType: 'application/octet-stream',
      });
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), body);
      assert.equal(res.headers.get('content-disposition'), 'attachment; filename="evil__x.svg"');
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    });

    test('a presigned PUT: fetch uploads exactly the declared bytes', async () => {
      const body = Buffer.from('direct upload from a browser');
      const presigned = await storage.presignPut('c/direct/original', {
        contentType: 'text/plain',
        contentLength: body.length,
        checksumSha256: sha256(body),
        expiresInSeconds: 60,
      });
      assert.equal(presigned.method, 'PUT');
      assert.ok(presigned.expiresAt.getTime() > Date.now());
      const res = await fetch(presigned.url, {
        method: 'PUT',
        headers: presigned.headers,
        body,
      });
      assert.equal(res.status, 200, await res.text());
      const head = await storage.head('c/direct/original');
      assert.equal(head?.size, body.length);
      assert.equal(head?.contentType, 'text/plain');
      const got = await storage.get('c/direct/original');
      assert.deepEqual(Buffer.concat(await got!.body.toArray()), body);
    });

    test('ping answers', async () => {
      await storage.ping();
    });
  });
}

conformance('local', localHarness);
conformance('s3', s3Harness);

describe('storage: S3 specifics', () => {
  test('s3rver does NOT enforce a presigned PUT’s signed length nor its checksum (so the files module’s completion check must verify size and checksum)', async (t) => {
    const h = await s3Harness();
    t.after(() => h.close());
    const declared = Buffer.from('declared');
    const presigned = await h.storage.presignPut('s3/lying/original', {
      contentType: 'text/plain',
      contentLength: declared.length,
      checksumSha256: sha256(declared),
      expiresInSeconds: 60,
    });
    assert.match(
      presigned.url,
      /X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256/,
    );
    const other = Buffer.from('something else entirely');
    const res = await fetch(presigned.url, {
      method: 'PUT',
      headers: { ...presigned.headers, 'content-length': String(other.length) },
      body: other,
    });
    // Real S3 answers 403 SignatureDoesNotMatch here; s3rver stores the other bytes.
    if (res.status === 200) {
      const head = await h.storage.head('s3/lying/original');
      assert.notEqual(head?.size, declared.length);
    } else assert.equal(res.status, 403);
    // Same length, other bytes: real S3 answers 400 BadDigest (x-amz-checksum-sha256 is signed).
    const same = Buffer.from('DECLARED');
    const swapped = await fetch(presigned.url, {
      method: 'PUT',
      headers: presigned.headers,
      body: same,
    });
    if (swapped.status === 200) {
      const got = await h.storage.get('s3/lying/original');
      assert.deepEqual(Buffer.concat(await got!.body.toArray()), same);
    } else assert.equal(swapped.status, 400);
  });

  test('an unreachable bucket: ping and reads fail with StorageUnavailableError (503)', async () => {
    const storage = new S3Storage({
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      bucket: 'bucket-one',
      accessKeyId: 'x',
      secretAccessKey: 'y',
      forcePathStyle: true,
    });
    try {
      await assert.rejects(storage.ping(), StorageUnavailableError);
      await assert.rejects(
        storage.head('a/b'),
        (e: unknown) => e instanceof StorageUnavailableError && e.status === 503,
      );
    } finally {
      await storage.close();
    }
  });
});
