import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StorageUnavailableError } from './errors.ts';
import { assertObjectKey, isKeyPrefix } from './keys.ts';
import { assertMediaType } from './media-type.ts';
import { safeDisposition } from './signed-urls.ts';
import { Meter, meterBuffer, meteredCopy } from './streams.ts';
import type {
  ByteRange,
  ObjectStream,
  PresignedPut,
  PutOptions,
  SignedGetOptions,
  Storage,
  StoredObject,
  PresignPutOptions,
} from './types.ts';

export interface S3StorageOptions {
  /** null: AWS S3 of `region`. */
  readonly endpoint: string | null;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly forcePathStyle: boolean;
  /** Folder for spooling streamed uploads (default: the OS temporary folder). */
  readonly spoolDir?: string;
}

/** User metadata carrying the SHA-256 we computed (stores that do not keep checksums still answer it). */
const SHA256_META = 'sha256';

/**
 * Objects in an S3-compatible bucket (AWS S3, MinIO, R2), private: no ACL is ever set, and
 * clients read and write only through presigned URLs.
 *
 * A streamed `put` of unknown length is first spooled to a temporary file (hashed and capped at
 * `maxBytes` on the way), then sent with one PutObject carrying its length and SHA-256. Why not
 * stream straight to the bucket: PutObject needs the length before the first byte, and the
 * multipart alternative holds each part (5 MB at least) in memory, 100 MB for 20 concurrent
 * uploads. The spool keeps memory independent of the size (measured against s3rver: 20
 * concurrent 5 MB streams +66 MB RSS, two 100 MB streams +24 MB), checks length and checksum
 * before anything reaches the bucket (so a refused upload leaves no object to remove), and lets
 * the bucket verify the checksum itself. The cost is one local write and read per upload.
 * Buffers (processed variants) go up directly.
 */
export class S3Storage implements Storage {
  readonly driver = 's3' as const;
  readonly client: S3Client;
  readonly bucket: string;
  readonly #spoolDir: string;

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.#spoolDir = options.spoolDir ?? tmpdir();
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      credentials: {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
      },
      // We send our own SHA-256 with every upload; the SDK's default CRC32 (sent as an
      // aws-chunked trailer) is unknown to several S3-compatible stores.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<StoredObject> {
    assertObjectKey(key);
    assertMediaType(options.contentType);
    if (Buffer.isBuffer(body)) {
      const { size, checksumSha256 } = meterBuffer(body, options);
      return this.#upload(key, body, size, checksumSha256, options);
    }
    const spool = join(this.#spoolDir, `groundwork-s3-${randomBytes(12).toString('hex')}`);
    try {
      const meter = new Meter(options);
      const handle = await open(spool, 'wx', 0o600);
      const file = createWriteStream('', { fd: handle, flush: false });
      try {
        await meteredCopy(body, meter, file, options.signal);
      } finally {
        if (!file.closed) await new Promise<void>((done) => file.once('close', () => done()));
      }
      return await this.#upload(
        key,
        createReadStream(spool),
        meter.bytes,
        meter.checksumSha256,
        options,
      );
    } finally {
      await rm(spool, { force: true });
    }
  }

  async #upload(
    key: string,
    body: Readable | Buffer,
    size: number,
    checksumSha256: string,
    options: PutOptions,
  ): Promise<StoredObject> {
    const output = await this.#call(
      () =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: size,
            ContentType: options.contentType,
            ChecksumSHA256: checksumSha256,
            Metadata: { [SHA256_META]: checksumSha256 },
          }),
          { abortSignal: options.signal },
        ),
      options.signal,
    );
    return {
      key,
      size,
      contentType: options.contentType,
      etag: unquote(output.ETag ?? ''),
      checksumSha256,
      lastModified: new Date(),
    };
  }

  async get(key: string, options: { range?: ByteRange } = {}): Promise<ObjectStream | null> {
    assertObjectKey(key);
    const range = options.range;
    const header =
      range && Number.isInteger(range.start) && range.start >= 0
        ? `bytes=${String(range.start)}-${range.end === undefined ? '' : String(range.end)}`
        : undefined;
    let output;
    try {
      output = await this.#call(() =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: header })),
      );
    } catch (error) {
      if (isNotFound(error)) return null;
      // An unsatisfiable range: the whole object, `range` null (the caller answers 416).
      if (header && statusOf(error) === 416) return this.get(key);
      throw error;
    }
    const served = parseContentRange(output.ContentRange);
    const size = served?.size ?? output.ContentLength ?? 0;
    return {
      body: output.Body as Readable,
      object: {
        key,
        size,
        contentType: output.ContentType ?? 'application/octet-stream',
        etag: unquote(output.ETag ?? ''),
        checksumSha256: output.ChecksumSHA256 ?? output.Metadata?.[SHA256_META] ?? null,
        lastModified: output.LastModified ?? new Date(0),
      },
      range: header && served ? { start: served.start, end: served.end } : null,
    };
  }

  async head(key: string): Promise<StoredObject | null> {
    assertObjectKey(key);
    try {
      const output = await this.#call(() =>
        this.client.send(
          new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }),
        ),
      );
      return {
        key,
        size: output.ContentLength ?? 0,
        contentType: output.ContentType ?? 'application/octet-stream',
        etag: unquote(output.ETag ?? ''),
        checksumSha256: output.ChecksumSHA256 ?? output.Metadata?.[SHA256_META] ?? null,
        lastModified: output.LastModified ?? new Date(0),
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    try {
      await this.#call(() =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Objects under `prefix` in the bucket's key order (bytes), from just after `after`. The
   * listing carries no content type nor checksum: `application/octet-stream` and null (`head`
   * has them).
   */
  async list(
    prefix: string,
    options: { limit?: number; after?: string } = {},
  ): Promise<StoredObject[]> {
    if (!isKeyPrefix(prefix)) throw new Error('invalid listing prefix');
    const output = await this.#call(() =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix === '' ? undefined : prefix,
          StartAfter: options.after,
          MaxKeys: Math.max(1, Math.min(options.limit ?? 1_000, 1_000)),
        }),
      ),
    );
    return (output.Contents ?? []).map((o) => ({
      key: o.Key ?? '',
      size: o.Size ?? 0,
      contentType: 'application/octet-stream',
      etag: unquote(o.ETag ?? ''),
      checksumSha256: null,
      lastModified: o.LastModified ?? new Date(0),
    }));
  }

  async signedGetUrl(key: string, options: SignedGetOptions): Promise<string> {
    assertObjectKey(key);
    if (options.contentType !== undefined) assertMediaType(options.contentType);
    return getSignedUrl(
      this.client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentDisposition:
          options.contentDisposition === undefined
            ? undefined
            : safeDisposition(options.contentDisposition),
        ResponseContentType: options.contentType,
      }),
      { expiresIn: checkedTtl(options.expiresInSeconds) },
    );
  }

  /**
   * A presigned PUT whose signature covers `Content-Type`, `Content-Length` and
   * `x-amz-checksum-sha256` (sent as headers, not in the query): S3 refuses other values, and
   * verifies the body against the checksum. Some S3-compatible stores enforce less (s3rver checks
   * neither the length nor the checksum): whoever completes the upload must `head` it and check.
   */
  async presignPut(key: string, options: PresignPutOptions): Promise<PresignedPut> {
    assertObjectKey(key);
    assertMediaType(options.contentType);
    const expiresIn = checkedTtl(options.expiresInSeconds);
    const url = await getSignedUrl(
      this.client,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: options.contentType,
        ContentLength: options.contentLength,
        ChecksumSHA256: options.checksumSha256,
      }),
      {
        expiresIn,
        signableHeaders: new Set(['content-type', 'content-length', 'x-amz-checksum-sha256']),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      },
    );
    return {
      url,
      method: 'PUT',
      headers: {
        'content-type': options.contentType,
        'content-length': String(options.contentLength),
        'x-amz-checksum-sha256': options.checksumSha256,
      },
      expiresAt: new Date(Date.now() + expiresIn * 1000),
    };
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.#call(
      () =>
        this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal }),
      signal,
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Runs a call; failures of the store itself (5xx, network) become `StorageUnavailableError`. */
  async #call<O>(send: () => Promise<O>, signal?: AbortSignal): Promise<O> {
    try {
      return await send();
    } catch (error) {
      if (signal?.aborted) throw error;
      const status = statusOf(error);
      if (status === undefined || status >= 500 || status === 403 || status === 401)
        throw new StorageUnavailableError(error);
      throw error;
    }
  }
}

function checkedTtl(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 604_800)
    throw new Error('expiresInSeconds must be an integer from 1 to 604800');
  return seconds;
}

function statusOf(error: unknown): number | undefined {
  if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode;
  const meta = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  return meta?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  const cause = error instanceof StorageUnavailableError ? error.cause : error;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(cause) === 404;
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

function parseContentRange(
  value: string | undefined,
): { start: number; end: number; size: number } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value ?? '');
  if (!match) return null;
  return { start: Number(match[1]), end: Number(match[2]), size: Number(match[3]) };
}
