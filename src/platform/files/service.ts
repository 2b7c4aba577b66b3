import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { newId, withTransaction } from '../db/index.ts';
import { HttpError } from '../http/index.ts';
import type { FilePurpose, Platform } from '../modules/index.ts';
import { objectKey, ObjectTooLargeError, type Storage } from '../storage/index.ts';
import {
  contentDisposition,
  detectType,
  HEAD_BYTES,
  peek,
  sanitizeFilename,
  sniffText,
} from './detect.ts';
import { FileCodes } from './errors.ts';
import { fileReady, FILES_ADMIN } from './events.ts';
import { ImageProcessingError, probeImage, type ImageFailure } from './images.ts';
import { processFileJob } from './jobs.ts';
import type { UploadOutcome } from './metrics.ts';
import { SCRIPTABLE_TYPES, TEXT_TYPES } from './purposes.ts';
import {
  findFile,
  insertFile,
  insertUpload,
  lockUpload,
  releaseQuota,
  reserveQuota,
  setUploadState,
  softDeleteFile,
  type FileRow,
} from './repository.ts';
import { filesRuntime, type FilesRuntime } from './runtime.ts';
import { filesDb } from './tables.ts';

/** Who is asking. */
export interface Actor {
  readonly userId: string | null;
  readonly requestId: string;
  /** Holds `files:admin` (reads and deletes any file). */
  readonly admin?: boolean;
}

/** An upload streamed to storage, not yet recorded (`commit` records it, `discard` undoes it). */
export interface ReceivedUpload {
  readonly id: string;
  readonly ownerId: string;
  readonly purpose: FilePurpose;
  readonly contentType: string;
  readonly size: number;
  readonly checksumSha256: string;
  readonly filename: string;
  readonly key: string;
  readonly reserved: number;
}

/** What `content` answers: a redirect to a signed URL, or the object's stream. */
export type ContentAnswer =
  | { kind: 'redirect'; url: string; cacheSeconds: number }
  | {
      kind: 'stream';
      body: Readable;
      contentType: string;
      size: number;
      etag: string;
      range: { start: number; end: number } | null;
      disposition: 'inline' | 'attachment';
      filename: string;
      isPublic: boolean;
    };

/** Image failures at the header check, as the HTTP answers them. */
const PROBE_CODES: Record<ImageFailure, string> = {
  UNSUPPORTED_TYPE: FileCodes.FILE_TYPE_NOT_ALLOWED,
  TOO_LARGE: FileCodes.FILE_TOO_MANY_PIXELS,
  TOO_MANY_PIXELS: FileCodes.FILE_TOO_MANY_PIXELS,
  CORRUPT: FileCodes.FILE_CORRUPT,
};

/** Object keys of a file: platform-made (`files/<id>/...`), never from a client. */
export const keys = {
  upload: (id: string) => objectKey('files', id, 'upload'),
  original: (id: string, ext: string) => objectKey('files', id, `original.${ext}`),
  variant: (id: string, name: string, format: string) =>
    objectKey('files', id, `${name}.${format}`),
};

function refused(
  runtime: FilesRuntime,
  outcome: UploadOutcome,
  code: string,
  detail?: string,
): HttpError {
  runtime.metrics.uploads.inc({ outcome });
  return new HttpError(code, detail === undefined ? {} : { detail });
}

/**
 * The files area's rules: uploads checked by content before they are stored, quota reserved
 * atomically, processing enqueued in the transaction that records the file, reads checked
 * against the purpose's audience.
 */
export class FilesService {
  readonly #platform: Platform;
  readonly #runtime: FilesRuntime;

  constructor(platform: Platform) {
    this.#platform = platform;
    this.#runtime = filesRuntime(platform);
  }

  get #storage(): Storage {
    return this.#platform.storage;
  }

  /** The purpose by name (the default when none is given); 422 when no module declares it. */
  purpose(name: string | undefined): FilePurpose {
    const wanted = name ?? this.#runtime.settings.defaultPurpose;
    const purpose = this.#runtime.purposes.get(wanted);
    if (!purpose)
      throw refused(
        this.#runtime,
        'invalid',
        FileCodes.FILE_PURPOSE_UNKNOWN,
        `No purpose ${wanted.slice(0, 100)}.`,
      );
    return purpose;
  }

  /**
   * Checks the head of `stream` (type by its bytes, image header limits), reserves quota, then
   * streams it to storage with the purpose's cap. Nothing is recorded yet (`commit`).
   */
  async receive(
    ownerId: string,
    purposeName: string | undefined,
    rawFilename: string | undefined,
    stream: Readable,
    /** The request body's length, when announced: no file in it can be larger. */
    bodyLength?: number,
  ): Promise<ReceivedUpload> {
    const runtime = this.#runtime;
    const purpose = this.purpose(purposeName);
    let peeked: Awaited<ReturnType<typeof peek>>;
    try {
      peeked = await peek(stream, HEAD_BYTES);
    } catch {
      throw refused(runtime, 'invalid', FileCodes.FILE_MULTIPART_INVALID);
    }
    const { head, body } = peeked;
    if (head.length === 0) throw refused(runtime, 'invalid', FileCodes.FILE_EMPTY);
    const contentType = await this.#checkHead(purpose, head);
    // Reserve what the file may take: the purpose's cap, or less when the body is announced
    // smaller (so concurrent uploads of one user are not refused for each other's caps).
    const wanted = Math.min(purpose.maxBytes, bodyLength ?? purpose.maxBytes);
    const reserved = await reserveQuota(
      filesDb(this.#platform.database.db),
      ownerId,
      wanted,
      runtime.settings.userQuotaBytes,
      false,
    );
    if (reserved === 0) {
      body.destroy();
      throw refused(runtime, 'quota_exceeded', FileCodes.QUOTA_EXCEEDED);
    }
    const id = newId();
    const key = keys.upload(id);
    try {
      const stored = await this.#storage.put(key, body, { contentType, maxBytes: reserved });
      return {
        id,
        ownerId,
        purpose,
        contentType,
        size: stored.size,
        checksumSha256: stored.checksumSha256 ?? '',
        filename: sanitizeFilename(rawFilename),
        key,
        reserved,
      };
    } catch (error) {
      await releaseQuota(filesDb(this.#platform.database.db), ownerId, reserved);
      if (error instanceof ObjectTooLargeError) {
        if (reserved < wanted) throw refused(runtime, 'quota_exceeded', FileCodes.QUOTA_EXCEEDED);
        throw refused(
          runtime,
          'too_large',
          FileCodes.FILE_TOO_LARGE,
          `The purpose ${purpose.name} accepts at most ${String(purpose.maxBytes)} bytes.`,
        );
      }
      // The body failed (malformed multipart, the client went away), not the store.
      if (!(error instanceof HttpError) && (stream.errored !== null || !stream.readableEnded))
        throw refused(runtime, 'invalid', FileCodes.FILE_MULTIPART_INVALID);
      runtime.metrics.uploads.inc({ outcome: 'error' });
      throw error;
    }
  }

  /**
   * The type of `head` if the purpose accepts it (image headers checked for bombs): by its magic
   * number, else, for a purpose listing a text type, as text (`#textType`).
   */
  async #checkHead(purpose: FilePurpose, head: Buffer): Promise<string> {
    const runtime = this.#runtime;
    const accepts = `${purpose.name} accepts ${purpose.contentTypes.join(', ')}`;
    const type = await detectType(head);
    // Scriptable first: no purpose lists them, but nothing recognised as one reaches the text
    // check either.
    if (type && SCRIPTABLE_TYPES.has(type.mime))
      throw refused(
        runtime,
        'type_refused',
        FileCodes.FILE_TYPE_NOT_ALLOWED,
        `The content is ${type.mime}, which is never accepted.`,
      );
    const mime = type ? type.mime : this.#textType(purpose, head);
    if (mime === null || !purpose.contentTypes.includes(mime))
      throw refused(
        runtime,
        'type_refused',
        FileCodes.FILE_TYPE_NOT_ALLOWED,
        `The content is ${type ? type.mime : 'of no recognised type'}; ${accepts}.`,
      );
    if (purpose.kind === 'image' && purpose.image) {
      try {
        await probeImage(head, {
          maxPixels: purpose.image.maxPixels,
          maxFrames: purpose.image.maxFrames,
        });
      } catch (error) {
        if (error instanceof ImageProcessingError)
          throw refused(runtime, 'image_refused', PROBE_CODES[error.code], error.message);
        throw error;
      }
    }
    return mime;
  }

  /**
   * The text type of a head with no magic number, for a purpose listing one (null: refused).
   * UTF-8 without NUL and not starting with `<` (markup); NDJSON when it starts with `{` and the
   * purpose takes NDJSON, else CSV, else plain text.
   */
  #textType(purpose: FilePurpose, head: Buffer): string | null {
    const listed = purpose.contentTypes.filter((t) => TEXT_TYPES.has(t));
    if (listed.length === 0) return null;
    // A head shorter than the window is the whole file: nothing may be cut at its end.
    const text = sniffText(head, head.length < HEAD_BYTES);
    if (text.kind === 'markup')
      throw refused(
        this.#runtime,
        'type_refused',
        FileCodes.FILE_TYPE_NOT_ALLOWED,
        'The content is markup (HTML, SVG or XML), which is never accepted.',
      );
    if (text.kind === 'binary')
      throw refused(
        this.#runtime,
        'type_refused',
        FileCodes.FILE_TYPE_NOT_ALLOWED,
        `The content is not UTF-8 text (invalid UTF-8 or NUL bytes); ${purpose.name} accepts ${purpose.contentTypes.join(', ')}.`,
      );
    if (text.json && listed.includes('application/x-ndjson')) return 'application/x-ndjson';
    if (listed.includes('text/csv')) return 'text/csv';
    if (listed.includes('text/plain')) return 'text/plain';
    return null;
  }

  /** Removes what `receive` stored and gives the quota back. */
  async discard(upload: ReceivedUpload): Promise<void> {
    await this.#storage.delete(upload.key);
    await releaseQuota(filesDb(this.#platform.database.db), upload.ownerId, upload.reserved);
  }

  /**
   * Records the file, in one transaction with its processing job (images) or its `file.ready`
   * event (documents); the quota reserved beyond its size is given back.
   */
  async commit(upload: ReceivedUpload, actor: Actor): Promise<FileRow> {
    const row = await withTransaction(this.#platform.database.db, async (trx) => {
      const db = filesDb(trx);
      await releaseQuota(db, upload.ownerId, upload.reserved - upload.size);
      return this.#record(trx, upload, actor);
    });
    this.#runtime.metrics.uploads.inc({ outcome: 'stored' });
    return row;
  }

  async #record(
    trx: Parameters<typeof filesDb>[0],
    upload: Omit<ReceivedUpload, 'reserved'>,
    actor: Actor,
  ): Promise<FileRow> {
    const image = upload.purpose.kind === 'image';
    const row = await insertFile(filesDb(trx), {
      id: upload.id,
      ownerId: upload.ownerId,
      purpose: upload.purpose.name,
      status: image ? 'processing' : 'ready',
      contentType: upload.contentType,
      size: upload.size,
      checksumSha256: upload.checksumSha256,
      filename: upload.filename,
      uploadKey: upload.key,
      quotaBytes: upload.size,
      ...(image
        ? {}
        : { original: { key: upload.key, contentType: upload.contentType, size: upload.size } }),
    });
    if (image)
      await this.#platform.jobs.send(
        processFileJob,
        { fileId: row.id },
        { trx, userId: actor.userId ?? undefined, requestId: actor.requestId },
      );
    else
      await this.#platform.events.publish(trx, fileReady, {
        data: {
          fileId: row.id,
          purpose: row.purpose,
          contentType: row.contentType,
          size: row.size,
          variants: [],
        },
        subject: { type: 'file', id: row.id },
        ownerId: row.ownerId,
        actorId: actor.userId,
        requestId: actor.requestId,
      });
    return row;
  }

  // ---- presigned direct uploads ----

  /** Records a pending upload (quota reserved for its declared size) and presigns its PUT. */
  async startUpload(
    ownerId: string,
    input: {
      purpose?: string;
      contentType: string;
      size: number;
      checksumSha256: string;
      filename?: string;
    },
  ): Promise<{
    id: string;
    url: string;
    method: 'PUT';
    headers: Record<string, string>;
    expiresAt: Date;
  }> {
    const runtime = this.#runtime;
    const purpose = this.purpose(input.purpose);
    if (!purpose.contentTypes.includes(input.contentType))
      throw refused(
        runtime,
        'type_refused',
        FileCodes.FILE_TYPE_NOT_ALLOWED,
        `${purpose.name} accepts ${purpose.contentTypes.join(', ')}.`,
      );
    if (input.size > purpose.maxBytes)
      throw refused(
        runtime,
        'too_large',
        FileCodes.FILE_TOO_LARGE,
        `The purpose ${purpose.name} accepts at most ${String(purpose.maxBytes)} bytes.`,
      );
    const id = newId();
    const key = keys.upload(id);
    const ttl = runtime.settings.uploadUrlTtlS;
    const db = this.#platform.database.db;
    await withTransaction(db, async (trx) => {
      const reserved = await reserveQuota(
        filesDb(trx),
        ownerId,
        input.size,
        runtime.settings.userQuotaBytes,
        true,
      );
      if (reserved < input.size) throw refused(runtime, 'quota_exceeded', FileCodes.QUOTA_EXCEEDED);
      await insertUpload(filesDb(trx), {
        id,
        ownerId,
        purpose: purpose.name,
        contentType: input.contentType,
        size: input.size,
        checksumSha256: input.checksumSha256,
        filename: sanitizeFilename(input.filename),
        objectKey: key,
        expiresAt: new Date(Date.now() + ttl * 1000),
      });
    });
    const signed = await this.#storage.presignPut(key, {
      contentType: input.contentType,
      contentLength: input.size,
      checksumSha256: input.checksumSha256,
      expiresInSeconds: ttl,
    });
    return {
      id,
      url: signed.url,
      method: 'PUT',
      headers: { ...signed.headers },
      expiresAt: signed.expiresAt,
    };
  }

  /**
   * Checks the object a client uploaded to its presigned URL (size and SHA-256 computed from the
   * stored bytes, since a store may not enforce what it signed; type by content; image header
   * limits) and records the file, as a multipart upload would be. Refused bytes are removed.
   */
  async completeUpload(id: string, actor: Actor & { userId: string }): Promise<FileRow> {
    const runtime = this.#runtime;
    const storage = this.#storage;
    const outcome = await withTransaction(this.#platform.database.db, async (trx) => {
      const fdb = filesDb(trx);
      const upload = await lockUpload(fdb, id);
      if (!upload || upload.ownerId !== actor.userId || upload.state === 'rejected')
        throw new HttpError(FileCodes.UPLOAD_NOT_FOUND);
      if (upload.state === 'completed') throw new HttpError(FileCodes.UPLOAD_ALREADY_COMPLETED);
      if (upload.expiresAt.getTime() < Date.now()) throw new HttpError(FileCodes.UPLOAD_EXPIRED);
      const purpose = this.purpose(upload.purpose);
      const head = await storage.head(upload.objectKey);
      if (!head) throw new HttpError(FileCodes.UPLOAD_NOT_RECEIVED);
      // From here on a refusal is final: the row is marked and the reservation given back in
      // this transaction, and the object removed once it commits.
      const reject = async (error: HttpError) => {
        await setUploadState(fdb, upload.id, 'rejected');
        await releaseQuota(fdb, upload.ownerId, upload.size);
        return { rejected: error, key: upload.objectKey } as const;
      };
      const mismatch = (what: string) =>
        refused(
          runtime,
          'mismatch',
          FileCodes.UPLOAD_MISMATCH,
          `The stored object's ${what} is not the one declared.`,
        );
      if (head.size !== upload.size) return reject(mismatch('size'));
      const measured = await this.#measure(upload.objectKey, upload.size);
      if (!measured) return reject(mismatch('size'));
      if (measured.checksumSha256 !== upload.checksumSha256) return reject(mismatch('SHA-256'));
      let contentType: string;
      try {
        contentType = await this.#checkHead(purpose, measured.head);
      } catch (error) {
        if (error instanceof HttpError) return reject(error);
        throw error;
      }
      await setUploadState(fdb, upload.id, 'completed');
      const row = await this.#record(
        trx,
        {
          id: upload.id,
          ownerId: upload.ownerId,
          purpose,
          contentType,
          size: upload.size,
          checksumSha256: upload.checksumSha256,
          filename: upload.filename,
          key: upload.objectKey,
        },
        actor,
      );
      return { row } as const;
    });
    if ('rejected' in outcome) {
      await storage.delete(outcome.key);
      throw outcome.rejected;
    }
    runtime.metrics.uploads.inc({ outcome: 'stored' });
    return outcome.row;
  }

  /** Reads the object once: its head, and its SHA-256 and length (null: longer than `max`). */
  async #measure(
    key: string,
    max: number,
  ): Promise<{ head: Buffer; checksumSha256: string } | null> {
    const object = await this.#storage.get(key);
    if (!object) return null;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    let headSize = 0;
    for await (const chunk of object.body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += buffer.length;
      if (size > max) {
        object.body.destroy();
        return null;
      }
      hash.update(buffer);
      if (headSize < HEAD_BYTES) {
        chunks.push(buffer);
        headSize += buffer.length;
      }
    }
    if (size !== max) return null;
    return {
      head: Buffer.concat(chunks).subarray(0, HEAD_BYTES),
      checksumSha256: hash.digest('base64'),
    };
  }

  // ---- reads and deletion ----

  /** A file the actor may see: the owner's, `files:admin`'s, or any of a public purpose. */
  async get(id: string, actor: Actor): Promise<FileRow> {
    const file = await findFile(filesDb(this.#platform.database.db), id);
    if (!file || !this.#maySee(file, actor)) throw new HttpError(FileCodes.FILE_NOT_FOUND);
    return file;
  }

  #maySee(file: FileRow, actor: Actor): boolean {
    if (actor.userId !== null && (file.ownerId === actor.userId || actor.admin === true))
      return true;
    return this.#runtime.purposes.get(file.purpose)?.read === 'public';
  }

  /**
   * The content of a ready file (`variant`: `w256` picks the first format the client accepts,
   * `w256.webp` one format; none: the stripped original): a redirect to a short-lived signed URL
   * on S3, the object's stream (or a range of it) on the local driver.
   */
  async content(
    id: string,
    actor: Actor,
    options: { variant?: string; accept?: string; range?: { start: number; end?: number } },
  ): Promise<ContentAnswer> {
    const file = await this.get(id, actor);
    if (file.status !== 'ready' || file.originalKey === null)
      throw new HttpError(FileCodes.FILE_NOT_READY, {
        detail:
          file.status === 'failed'
            ? `Processing failed: ${file.failureReason ?? 'unknown'}.`
            : 'The file is still processing.',
      });
    const target = pickVariant(file, options.variant, options.accept);
    if (!target) throw new HttpError(FileCodes.FILE_VARIANT_NOT_FOUND);
    const isPublic = this.#runtime.purposes.get(file.purpose)?.read === 'public';
    const image = target.contentType.startsWith('image/');
    const disposition = image ? 'inline' : 'attachment';
    const settings = this.#runtime.settings;
    if (this.#storage.driver === 's3') {
      const url = await this.#storage.signedGetUrl(target.key, {
        expiresInSeconds: settings.downloadUrlTtlS,
        contentType: target.contentType,
        contentDisposition: contentDisposition(
          disposition,
          filenameFor(file.filename, target.suffix),
        ),
      });
      return { kind: 'redirect', url, cacheSeconds: Math.max(0, settings.downloadUrlTtlS - 30) };
    }
    const object = await this.#storage.get(
      target.key,
      options.range ? { range: options.range } : {},
    );
    if (!object) throw new HttpError(FileCodes.FILE_NOT_FOUND);
    return {
      kind: 'stream',
      body: object.body,
      contentType: target.contentType,
      size: object.object.size,
      etag: object.object.etag,
      range: object.range,
      disposition,
      filename: filenameFor(file.filename, target.suffix),
      isPublic,
    };
  }

  /** Soft-deletes the caller's file (or any, for `files:admin`); storage is purged by a job. */
  async delete(id: string, actor: Actor): Promise<void> {
    await withTransaction(this.#platform.database.db, async (trx) => {
      const db = filesDb(trx);
      const file = await findFile(db, id, { lock: true });
      const mayDelete =
        file !== null &&
        actor.userId !== null &&
        (file.ownerId === actor.userId || actor.admin === true);
      if (!file || !mayDelete) throw new HttpError(FileCodes.FILE_NOT_FOUND);
      const charged = await softDeleteFile(db, id);
      await releaseQuota(db, file.ownerId, charged ?? 0);
    });
  }
}

/** The admin permission, for routes. */
export { FILES_ADMIN };

interface Target {
  key: string;
  contentType: string;
  /** Appended to the download name: `` for the original, `-w256.webp` for a variant. */
  suffix: string;
}

/** Formats in the order offered when the client's `Accept` allows several. */
const PREFERENCE = ['avif', 'webp', 'jpeg', 'png'];

function pickVariant(
  file: FileRow,
  variant: string | undefined,
  accept: string | undefined,
): Target | null {
  if (variant === undefined || variant === 'original') {
    if (file.originalKey === null) return null;
    return {
      key: file.originalKey,
      contentType: file.originalContentType ?? file.contentType,
      suffix: '',
    };
  }
  const dot = variant.indexOf('.');
  const name = dot === -1 ? variant : variant.slice(0, dot);
  const format = dot === -1 ? undefined : variant.slice(dot + 1);
  const candidates = file.variants.filter(
    (v) => v.name === name && (format === undefined || v.format === format),
  );
  if (candidates.length === 0) return null;
  let chosen = candidates[0];
  if (format === undefined) {
    const accepted = (accept ?? '').toLowerCase();
    const ranked = [...candidates].sort(
      (a, b) => PREFERENCE.indexOf(a.format) - PREFERENCE.indexOf(b.format),
    );
    chosen =
      ranked.find((v) => accepted.includes(v.contentType)) ??
      ranked.find((v) => v.format === 'jpeg') ??
      ranked[0];
  }
  if (!chosen) return null;
  return {
    key: chosen.key,
    contentType: chosen.contentType,
    suffix: `-${chosen.name}.${chosen.format}`,
  };
}

function filenameFor(filename: string, suffix: string): string {
  if (suffix === '') return filename;
  const dot = filename.lastIndexOf('.');
  return `${dot > 0 ? filename.slice(0, dot) : filename}${suffix}`;
}
