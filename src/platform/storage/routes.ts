import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { HttpError } from '../http/index.ts';
import { StorageCodes } from './errors.ts';
import { isObjectKey } from './keys.ts';
import { isMediaType } from './media-type.ts';
import { isSafeDisposition, type UrlSigner } from './signed-urls.ts';
import { ObjectMismatchError, ObjectTooLargeError, type Storage } from './types.ts';

/** The Fastify instance the routes get (the modules area's `ModuleApp`, without importing it). */
export type StorageApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

const Signature = Type.String({
  minLength: 1,
  maxLength: 128,
  description: 'HMAC-SHA-256 of the signed values (base64url).',
});
const Expires = Type.Integer({
  minimum: 0,
  maximum: 99_999_999_999,
  description: 'Expiry, in seconds since the epoch.',
});
const Params = Type.Object({
  '*': Type.String({ maxLength: 600, description: 'The object key.' }),
});
const GetQuery = Type.Object({
  expires: Expires,
  signature: Signature,
  disposition: Type.Optional(
    Type.String({ maxLength: 1000, description: 'The `Content-Disposition` to answer.' }),
  ),
  type: Type.Optional(
    Type.String({ maxLength: 255, description: 'The `Content-Type` to answer.' }),
  ),
});
const PutQuery = Type.Object({
  expires: Expires,
  signature: Signature,
  type: Type.String({ maxLength: 255, description: 'The `Content-Type` the body must have.' }),
  length: Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'The exact length of the body, in bytes.',
  }),
  sha256: Type.String({
    maxLength: 64,
    description: 'The base64 SHA-256 the body must have.',
  }),
});
const Binary = { schema: { type: 'string', format: 'binary' } };
const Stored = Type.Object({
  key: Type.String(),
  size: Type.Integer(),
  etag: Type.String(),
  checksumSha256: Type.Union([Type.String(), Type.Null()]),
});

/**
 * The local driver's signed URLs, served by this server: `GET /storage/objects/<key>` (with
 * `HEAD`, ranges and `If-None-Match`) and `PUT /storage/objects/<key>` (a direct upload of
 * exactly the signed bytes). The signature is the only credential: no session, no rate limit of
 * the API (a page of thumbnails is many requests; each URL is short-lived and for one object).
 */
export async function registerStorageRoutes(
  app: StorageApp,
  options: {
    storage: Storage;
    signer: UrlSigner;
    /** Deadline of an upload (instead of `HANDLER_TIMEOUT_MS`): a body takes a while to arrive. */
    uploadTimeoutMs: number;
  },
): Promise<void> {
  const { storage, signer } = options;

  // The body of an upload is read by the handler, as a stream, whatever its type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(null);
  });

  const checkSigned = (expires: number, valid: boolean): void => {
    if (!valid) throw new HttpError(StorageCodes.STORAGE_SIGNATURE_INVALID);
    if (expires * 1000 <= Date.now()) throw new HttpError(StorageCodes.STORAGE_URL_EXPIRED);
  };

  app.get(
    '/storage/objects/*',
    {
      config: { auth: 'none', rateLimit: false },
      // Embeddable by the web app's pages on another origin (`<img src>`): the URL is the grant.
      onSend: (_request, reply, payload, done) => {
        reply.header('cross-origin-resource-policy', 'cross-origin');
        done(null, payload);
      },
      schema: {
        tags: ['storage'],
        summary: 'Download an object through a signed URL (local storage)',
        description:
          'Answers the object a signed URL grants (made by the server, e.g. `GET /files/{id}/content`), until `expires`. Supports `Range` (one range: 206, or 416 when outside the object), `If-None-Match` (304) and `HEAD`. `Content-Type` and `Content-Disposition` are the signed ones (default: the stored type, `attachment`).',
        params: Params,
        querystring: GetQuery,
        errorCodes: [
          StorageCodes.STORAGE_SIGNATURE_INVALID,
          StorageCodes.STORAGE_URL_EXPIRED,
          StorageCodes.STORAGE_OBJECT_NOT_FOUND,
          StorageCodes.STORAGE_UNAVAILABLE,
        ],
        response: {
          200: { description: 'The object.', content: { 'application/octet-stream': Binary } },
          206: {
            description: 'The range asked (`Content-Range`).',
            content: { 'application/octet-stream': Binary },
          },
          304: { description: 'Not modified (`If-None-Match` holds the ETag).', type: 'null' },
          416: {
            description: 'The range is outside the object (`Content-Range: bytes */<size>`).',
            type: 'null',
          },
        },
      },
    },
    async (request, reply) => {
      const key = request.params['*'];
      const { expires, signature, disposition, type } = request.query;
      const signed = { expires, disposition, type };
      checkSigned(
        expires,
        isObjectKey(key) &&
          signer.verifyGet(key, signed, signature) &&
          (disposition === undefined || isSafeDisposition(disposition)) &&
          (type === undefined || isMediaType(type)),
      );
      const head = await storage.head(key);
      if (!head) throw new HttpError(StorageCodes.STORAGE_OBJECT_NOT_FOUND);
      const etag = `"${head.etag}"`;
      const maxAge = Math.max(0, expires - Math.floor(Date.now() / 1000));
      reply.headers({
        etag,
        'last-modified': head.lastModified.toUTCString(),
        'cache-control': `private, max-age=${String(maxAge)}`,
        'accept-ranges': 'bytes',
        'x-content-type-options': 'nosniff',
      });
      if (matchesEtag(request.headers['if-none-match'], head.etag)) {
        reply.status(304);
        return reply.send();
      }

      let range = parseRange(request.headers.range, head.size);
      const ifRange = request.headers['if-range'];
      if (range !== null && ifRange !== undefined && ifRange !== etag) range = null;
      if (range === 'unsatisfiable') {
        return reply
          .code(416)
          .header('content-range', `bytes */${String(head.size)}`)
          .send();
      }
      const object = await storage.get(key, range ? { range } : {});
      if (!object) throw new HttpError(StorageCodes.STORAGE_OBJECT_NOT_FOUND);
      if (object.object.etag !== head.etag) {
        // Replaced between the two reads: answer what was read, with its own validator.
        reply.header('etag', `"${object.object.etag}"`);
      }
      reply.headers({
        'content-type': type ?? object.object.contentType,
        'content-disposition': disposition ?? 'attachment',
      });
      if (object.range) {
        const { start, end } = object.range;
        reply
          .code(206)
          .header(
            'content-range',
            `bytes ${String(start)}-${String(end)}/${String(object.object.size)}`,
          )
          .header('content-length', String(end - start + 1));
      } else reply.header('content-length', String(object.object.size));
      if (request.method === 'HEAD') {
        // Fastify keeps the `Content-Length` set here for a stream answering HEAD (not for a string).
        object.body.destroy();
        return reply.send(Readable.from([]));
      }
      return reply.send(object.body);
    },
  );

  app.put(
    '/storage/objects/*',
    {
      config: { auth: 'none', rateLimit: false, handlerTimeoutMs: options.uploadTimeoutMs },
      // A refused upload is answered before its body is read: the connection is closed after the
      // answer rather than kept alive by reading (and throwing away) the rest of it.
      onSend: (request, reply, payload, done) => {
        if (reply.statusCode >= 400 && !request.raw.complete) reply.header('connection', 'close');
        done(null, payload);
      },
      schema: {
        tags: ['storage'],
        summary: 'Upload an object through a presigned URL (local storage)',
        description:
          'Stores the body at the key a presigned URL grants (made by `POST /files/uploads`), until `expires`. The body must be exactly the signed bytes: its `Content-Type`, its length and its SHA-256 (also sent as `x-amz-checksum-sha256`, as to S3). More bytes than signed stop the upload at once (413, connection closed); fewer, other bytes or another type are refused (422, `reason`). Nothing is kept of a refused upload.',
        params: Params,
        querystring: PutQuery,
        errorCodes: [
          StorageCodes.STORAGE_SIGNATURE_INVALID,
          StorageCodes.STORAGE_URL_EXPIRED,
          StorageCodes.STORAGE_OBJECT_TOO_LARGE,
          StorageCodes.STORAGE_OBJECT_MISMATCH,
          StorageCodes.STORAGE_UNAVAILABLE,
        ],
        response: { 200: Stored },
      },
    },
    async (request, reply) => {
      const key = request.params['*'];
      const { expires, signature, type, length, sha256 } = request.query;
      checkSigned(
        expires,
        isObjectKey(key) &&
          isMediaType(type) &&
          signer.verifyPut(key, { expires, type, length, sha256 }, signature),
      );
      const refuse = (reason: 'type' | 'length' | 'checksum') =>
        new HttpError(StorageCodes.STORAGE_OBJECT_MISMATCH, { extensions: { reason } });
      if ((request.headers['content-type'] ?? '').toLowerCase() !== type.toLowerCase())
        throw refuse('type');
      const declared = request.headers['content-length'];
      if (declared !== undefined && declared !== String(length)) throw refuse('length');
      const checksum = request.headers['x-amz-checksum-sha256'];
      if (checksum !== undefined && checksum !== sha256) throw refuse('checksum');
      try {
        const stored = await storage.put(key, request.raw, {
          contentType: type,
          contentLength: length,
          checksumSha256: sha256,
          maxBytes: length,
        });
        reply.header('etag', `"${stored.etag}"`);
        return {
          key: stored.key,
          size: stored.size,
          etag: stored.etag,
          checksumSha256: stored.checksumSha256,
        };
      } catch (error) {
        if (error instanceof ObjectTooLargeError)
          throw new HttpError(StorageCodes.STORAGE_OBJECT_TOO_LARGE);
        if (error instanceof ObjectMismatchError) throw refuse(error.reason);
        throw error;
      }
    },
  );
}

/** Whether an `If-None-Match` value lists this ETag (weak comparison) or is `*`. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || t.replace(/^W\//, '') === `"${etag}"`);
}

/**
 * One `bytes=` range of a `Range` header against an object of `size` bytes: null when absent,
 * malformed or multiple (the whole object is then served, as RFC 9110 allows), `unsatisfiable`
 * when it lies outside the object.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
