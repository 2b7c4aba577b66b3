import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpCodes, HttpError } from '../http/index.ts';
import type { ModuleApp } from '../modules/index.ts';
import { contentDisposition } from './detect.ts';
import { FileCodes } from './errors.ts';
import type { FileRow } from './repository.ts';
import {
  ContentQuery,
  FileId,
  FileResponse,
  StartUploadBody,
  StartUploadResponse,
  UploadForm,
  UploadId,
} from './schemas.ts';
import { FILES_ADMIN, type Actor, type FilesService, type ReceivedUpload } from './service.ts';
import type { FilesSettings } from './settings.ts';

const TAG = 'files';
const security = [{ bearerAuth: [] }];

/** The response body of a file (nothing internal: no keys, no checksum, no owner). */
export function fileJson(f: FileRow): FileResponse {
  return {
    id: f.id,
    status: f.status,
    ...(f.failureReason === null ? {} : { failureReason: f.failureReason }),
    purpose: f.purpose,
    contentType: f.contentType,
    size: f.size,
    filename: f.filename,
    ...(f.width === null ? {} : { width: f.width }),
    ...(f.height === null ? {} : { height: f.height }),
    ...(f.blurhash === null ? {} : { blurhash: f.blurhash }),
    variants: f.variants.map((v) => ({
      name: v.name,
      format: v.format,
      width: v.width,
      height: v.height,
      contentType: v.contentType,
      size: v.size,
    })),
    createdAt: new Date(f.createdAt).toISOString(),
  };
}

async function actorOf(request: FastifyRequest): Promise<Actor> {
  const userId = request.userId ?? null;
  const admin =
    userId !== null &&
    (await request.server.platform.access.hasPermission(userId, FILES_ADMIN, request.amr ?? []));
  return { userId, requestId: request.id, admin };
}

function signedIn(actor: Actor): Actor & { userId: string } {
  if (actor.userId === null) throw new HttpError(HttpCodes.UNAUTHORIZED);
  return { ...actor, userId: actor.userId };
}

/** Errors of @fastify/multipart and busboy (limits, malformed bodies), as this area's codes. */
function multipartError(error: unknown): HttpError | null {
  if (error instanceof HttpError) return null;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'FST_FILES_LIMIT') return new HttpError(FileCodes.FILE_TOO_MANY);
  if (code.startsWith('FST_') || error instanceof Error)
    return new HttpError(FileCodes.FILE_MULTIPART_INVALID, {
      detail: 'The multipart body is malformed or passes its limits (fields, parts, sizes).',
    });
  return null;
}

/** The announced body length (Node's parser holds the client to it), when there is one. */
function bodyLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,15}$/.test(header)) return undefined;
  return Number(header);
}

/** `bytes=a-b` or `bytes=a-` (one range); anything else is ignored and the whole body served. */
function parseRange(header: string | undefined): { start: number; end?: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (end !== undefined && end < start) return undefined;
  return end === undefined ? { start } : { start, end };
}

/**
 * The files API under /api/v1: uploads (multipart, or presigned straight to storage and then
 * completed), metadata, content and deletion.
 */
export async function registerFileRoutes(
  app: ModuleApp,
  service: FilesService,
  settings: FilesSettings,
  largestPurposeBytes: number,
): Promise<void> {
  // Multipart only for POST /files (its own scope): one file part after at most a few short
  // fields. Busboy's file limit is a backstop: the purpose's cap is enforced by storage.put.
  await app.register(async (scope) => {
    await scope.register(multipart, {
      throwFileSizeLimit: false,
      limits: {
        fieldNameSize: 64,
        fieldSize: 256,
        fields: 4,
        files: 1,
        parts: 6,
        headerPairs: 20,
        fileSize: largestPurposeBytes + 1,
      },
    });
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      '/files',
      {
        config: { auth: 'required', handlerTimeoutMs: settings.uploadTimeoutMs },
        // The form is documented, not validated by a schema: the handler reads the parts as
        // they stream (the body is never parsed into an object).
        validatorCompiler: () => () => true,
        schema: {
          tags: [TAG],
          summary: 'Upload a file (multipart)',
          description:
            'A `multipart/form-data` body with an optional `purpose` field, then one file part (a field after the file is refused). The type is read from the bytes; the file streams to storage and is refused with 413 as soon as it passes the purpose’s cap or the caller’s quota. Images answer `processing` (variants are made in the background; `file.ready` or `file.failed` follows), documents `ready`.',
          security,
          body: { content: { 'multipart/form-data': { schema: UploadForm } } },
          response: { 201: FileResponse },
          errorCodes: [
            FileCodes.FILE_MISSING,
            FileCodes.FILE_TOO_MANY,
            FileCodes.FILE_MULTIPART_INVALID,
            FileCodes.FILE_EMPTY,
            FileCodes.FILE_PURPOSE_UNKNOWN,
            FileCodes.FILE_TOO_LARGE,
            FileCodes.QUOTA_EXCEEDED,
            FileCodes.FILE_TYPE_NOT_ALLOWED,
            FileCodes.FILE_TOO_MANY_PIXELS,
            FileCodes.FILE_CORRUPT,
          ],
        },
      },
      async (request, reply) => {
        const actor = signedIn(await actorOf(request));
        if (!request.isMultipart())
          throw new HttpError(HttpCodes.UNSUPPORTED_MEDIA_TYPE, {
            detail: 'Send the file as `multipart/form-data`.',
          });
        let purpose: string | undefined;
        let received: ReceivedUpload | undefined;
        let serviceError: unknown;
        try {
          for await (const part of request.parts()) {
            if (received) {
              throw part.type === 'file'
                ? new HttpError(FileCodes.FILE_TOO_MANY)
                : new HttpError(FileCodes.FILE_MULTIPART_INVALID, {
                    detail: 'Fields come before the file part.',
                  });
            }
            if (part.type === 'field') {
              if (part.fieldnameTruncated || part.valueTruncated)
                throw new HttpError(FileCodes.FILE_MULTIPART_INVALID, {
                  detail: 'A field name or value is too long.',
                });
              if (part.fieldname === 'purpose') purpose = String(part.value);
              continue;
            }
            try {
              received = await service.receive(
                actor.userId,
                purpose,
                part.filename,
                part.file,
                bodyLength(request.headers['content-length']),
              );
            } catch (error) {
              serviceError = error;
              throw error;
            }
          }
        } catch (error) {
          if (received) await service.discard(received);
          // The rest of the body is not read: close the connection after the answer.
          reply.header('connection', 'close');
          // The service's errors are its own (a database or store down stays a 503).
          if (error === serviceError) throw error;
          throw multipartError(error) ?? error;
        }
        if (!received) throw new HttpError(FileCodes.FILE_MISSING);
        const file = await service.commit(received, actor);
        return reply.code(201).send(fileJson(file));
      },
    );
  });

  app.post(
    '/files/uploads',
    {
      config: { auth: 'required' },
      schema: {
        tags: [TAG],
        summary: 'Start a direct upload to storage',
        description:
          'Reserves quota for `size` bytes and answers a presigned URL: PUT the bytes there with exactly the headers given (content type, length, SHA-256), before `expiresAt`, then call `complete`.',
        security,
        body: StartUploadBody,
        response: { 201: StartUploadResponse },
        errorCodes: [
          FileCodes.FILE_PURPOSE_UNKNOWN,
          FileCodes.FILE_TOO_LARGE,
          FileCodes.QUOTA_EXCEEDED,
          FileCodes.FILE_TYPE_NOT_ALLOWED,
        ],
      },
    },
    async (request, reply) => {
      const actor = signedIn(await actorOf(request));
      const started = await service.startUpload(actor.userId, request.body);
      return reply.code(201).send({ ...started, expiresAt: started.expiresAt.toISOString() });
    },
  );

  app.post(
    '/files/uploads/:id/complete',
    {
      config: { auth: 'required' },
      schema: {
        tags: [TAG],
        summary: 'Complete a direct upload',
        description:
          'Checks the stored object against what was declared (size and SHA-256 computed from the bytes, type by content, image header limits) and records the file; refused bytes are removed.',
        security,
        params: UploadId,
        response: { 201: FileResponse },
        errorCodes: [
          FileCodes.UPLOAD_NOT_FOUND,
          FileCodes.UPLOAD_NOT_RECEIVED,
          FileCodes.UPLOAD_EXPIRED,
          FileCodes.UPLOAD_ALREADY_COMPLETED,
          FileCodes.UPLOAD_MISMATCH,
          FileCodes.FILE_PURPOSE_UNKNOWN,
          FileCodes.FILE_TYPE_NOT_ALLOWED,
          FileCodes.FILE_TOO_MANY_PIXELS,
          FileCodes.FILE_CORRUPT,
        ],
      },
    },
    async (request, reply) => {
      const actor = signedIn(await actorOf(request));
      const file = await service.completeUpload(request.params.id, actor);
      return reply.code(201).send(fileJson(file));
    },
  );

  app.get(
    '/files/:id',
    {
      schema: {
        tags: [TAG],
        summary: 'Show a file',
        description:
          'Status (with the failure reason), type, size, dimensions, blurhash and variants. The owner sees their files, anyone those of public purposes; another user’s private file is 404.',
        security,
        params: FileId,
        response: { 200: FileResponse },
        errorCodes: [FileCodes.FILE_NOT_FOUND],
      },
    },
    async (request) => fileJson(await service.get(request.params.id, await actorOf(request))),
  );

  app.get(
    '/files/:id/content',
    {
      schema: {
        tags: [TAG],
        summary: 'Download a file or one of its variants',
        description:
          'S3 storage: 302 to a short-lived signed URL. Local storage: the bytes, with `ETag` (304 on a matching `If-None-Match`), `Cache-Control`, `Content-Disposition`, `X-Content-Type-Options: nosniff` and one `Range` (`bytes=a-b` or `bytes=a-`, 206).',
        security,
        params: FileId,
        querystring: ContentQuery,
        response: {
          200: {
            description: 'The bytes (local storage).',
            content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } },
          },
          206: {
            description: 'A range of the bytes (local storage).',
            content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } },
          },
          302: { description: 'Redirect to a short-lived signed URL (S3 storage).', type: 'null' },
          304: { description: 'Not modified: `If-None-Match` matches the `ETag`.', type: 'null' },
        },
        errorCodes: [
          FileCodes.FILE_NOT_FOUND,
          FileCodes.FILE_VARIANT_NOT_FOUND,
          FileCodes.FILE_NOT_READY,
        ],
      },
    },
    async (request, reply) => sendContent(request, reply, service),
  );

  app.delete(
    '/files/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags: [TAG],
        summary: 'Delete a file',
        description:
          'By its owner (or `files:admin`): gone at once for every reader, its quota given back; its storage is purged after `FILES_PURGE_AFTER`.',
        security,
        params: FileId,
        response: { 204: { description: 'Deleted.', type: 'null' } },
        errorCodes: [FileCodes.FILE_NOT_FOUND],
      },
    },
    async (request, reply) => {
      await service.delete(request.params.id, signedIn(await actorOf(request)));
      return reply.code(204).send(null);
    },
  );
}

async function sendContent(
  request: FastifyRequest<{ Params: { id: string }; Querystring: { variant?: string } }>,
  reply: FastifyReply,
  service: FilesService,
): Promise<FastifyReply> {
  const answer = await service.content(request.params.id, await actorOf(request), {
    variant: request.query.variant,
    accept: request.headers.accept,
    range: parseRange(request.headers.range),
  });
  reply.header('x-content-type-options', 'nosniff');
  if (answer.kind === 'redirect') {
    reply.header('cache-control', `private, max-age=${String(answer.cacheSeconds)}`);
    return reply.redirect(answer.url, 302);
  }
  const etag = `"${answer.etag.replace(/"/g, '')}"`;
  reply.header('etag', etag);
  reply.header(
    'cache-control',
    answer.isPublic ? 'public, max-age=86400' : 'private, max-age=3600',
  );
  reply.header('vary', 'Accept, Authorization');
  reply.header('accept-ranges', 'bytes');
  reply.header('content-disposition', contentDisposition(answer.disposition, answer.filename));
  const inm = request.headers['if-none-match'];
  if (inm !== undefined && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
    answer.body.destroy();
    return reply.code(304).send();
  }
  reply.type(answer.contentType);
  if (answer.range) {
    reply.header(
      'content-range',
      `bytes ${String(answer.range.start)}-${String(answer.range.end)}/${String(answer.size)}`,
    );
    reply.header('content-length', String(answer.range.end - answer.range.start + 1));
    return reply.code(206).send(answer.body);
  }
  reply.header('content-length', String(answer.size));
  return reply.send(answer.body);
}
