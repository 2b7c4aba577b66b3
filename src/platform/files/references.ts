import type { Readable } from 'node:stream';
import { API_PREFIX } from '../http/index.ts';
import type { AnyDb } from '../db/index.ts';
import type { Platform } from '../modules/index.ts';
import { findFiles, type FileRow } from './repository.ts';
import { filesDb, type FileStatus } from './tables.ts';

/**
 * How an app uses the files its users uploaded (a spot's picture, an item's image, a post's
 * media, a dataset's CSV): it never reads the files tables, it asks here. Every lookup is scoped
 * by purpose (and by owner when the app attaches a user's upload), so a file of another purpose
 * or another user is indistinguishable from one that does not exist.
 */

/** One variant of a ready image, with the path that serves it. */
export interface FileVariantInfo {
  /** `w256.webp`: what `?variant=` takes. */
  readonly id: string;
  readonly name: string;
  readonly format: string;
  readonly width: number;
  readonly height: number;
  readonly contentType: string;
  readonly size: number;
  /** `/api/v1/files/<id>/content?variant=w256.webp` (readable by whom the purpose allows). */
  readonly path: string;
}

/** What an app may know of a file. */
export interface FileInfo {
  readonly id: string;
  readonly ownerId: string;
  readonly purpose: string;
  readonly status: FileStatus;
  /** Why processing failed (`CORRUPT`, `TOO_MANY_PIXELS`...); null otherwise. */
  readonly failureReason: string | null;
  /** The type decided from the bytes (of the stripped original once processed). */
  readonly contentType: string;
  readonly size: number;
  readonly filename: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly blurhash: string | null;
  /** `/api/v1/files/<id>/content`: the stripped original. */
  readonly path: string;
  readonly variants: readonly FileVariantInfo[];
  readonly createdAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The path that serves a file's content (`variant`: `w256.webp`, `w256`, or none). */
export function fileContentPath(fileId: string, variant?: string): string {
  const base = `${API_PREFIX}/files/${fileId}/content`;
  return variant === undefined ? base : `${base}?variant=${encodeURIComponent(variant)}`;
}

function toInfo(file: FileRow): FileInfo {
  return {
    id: file.id,
    ownerId: file.ownerId,
    purpose: file.purpose,
    status: file.status,
    failureReason: file.failureReason,
    contentType: file.originalContentType ?? file.contentType,
    size: file.originalSize ?? file.size,
    filename: file.filename,
    width: file.width,
    height: file.height,
    blurhash: file.blurhash,
    path: fileContentPath(file.id),
    variants: file.variants.map((v) => {
      const id = `${v.name}.${v.format}`;
      return {
        id,
        name: v.name,
        format: v.format,
        width: v.width,
        height: v.height,
        contentType: v.contentType,
        size: v.size,
        path: fileContentPath(file.id, id),
      };
    }),
    createdAt: file.createdAt,
  };
}

export interface FileLookup {
  /** Only files of this purpose are found. */
  readonly purpose: string;
  /** Only this user's files are found (attaching an upload); omit to read any owner's. */
  readonly ownerId?: string;
}

/**
 * The files with these ids, of `purpose` (and `ownerId`), not deleted, whatever their status, in
 * one query: a map by id, missing those that do not match. `db` may be the caller's transaction,
 * so the check and the attachment commit together (rows are read, not locked).
 */
export async function lookupFiles(
  db: AnyDb,
  ids: readonly string[],
  lookup: FileLookup,
): Promise<Map<string, FileInfo>> {
  // Not a UUID: no file has it (and the uuid column would refuse the query).
  const wanted = [...new Set(ids)].filter((id) => UUID.test(id));
  const found = new Map<string, FileInfo>();
  if (wanted.length === 0) return found;
  for (const file of await findFiles(filesDb(db), wanted)) {
    if (file.purpose !== lookup.purpose) continue;
    if (lookup.ownerId !== undefined && file.ownerId !== lookup.ownerId) continue;
    found.set(file.id, toInfo(file));
  }
  return found;
}

function storedKey(file: FileRow, variant: string | undefined): { key: string; type: string } {
  if (variant === undefined) {
    if (file.originalKey === null) throw new Error(`file ${file.id} has no stored original`);
    return { key: file.originalKey, type: file.originalContentType ?? file.contentType };
  }
  const v = file.variants.find((x) => `${x.name}.${x.format}` === variant);
  if (!v) throw new Error(`file ${file.id} has no variant ${variant}`);
  return { key: v.key, type: v.contentType };
}

async function readyFile(platform: Platform, fileId: string): Promise<FileRow> {
  const [file] = await findFiles(filesDb(platform.database.db), [fileId]);
  if (!file || file.status !== 'ready') throw new Error(`file ${fileId} is not ready`);
  return file;
}

/**
 * A short-lived absolute URL anyone holding it can GET a ready file (or one variant) from, for
 * handing to a third party that fetches it (a social platform pulling a post's image): a signed
 * bucket URL on S3, a signed storage route on the local driver (`PUBLIC_URL` must reach it).
 */
export async function signedFileUrl(
  platform: Platform,
  fileId: string,
  options: { variant?: string; expiresInSeconds: number },
): Promise<string> {
  const file = await readyFile(platform, fileId);
  const { key, type } = storedKey(file, options.variant);
  return platform.storage.signedGetUrl(key, {
    expiresInSeconds: options.expiresInSeconds,
    contentType: type,
  });
}

/** The bytes of a ready file (or one variant) as a stream, with their type and size. */
export async function openFile(
  platform: Platform,
  fileId: string,
  variant?: string,
): Promise<{ body: Readable; contentType: string; size: number }> {
  const file = await readyFile(platform, fileId);
  const { key, type } = storedKey(file, variant);
  const object = await platform.storage.get(key);
  if (!object) throw new Error(`file ${fileId}: stored object ${key} is missing`);
  return { body: object.body, contentType: type, size: object.object.size };
}
