import { sql } from 'kysely';
import type { FileStatus, FilesDb, StoredVariant, UploadState } from './tables.ts';

/** A file as the service sees it. */
export interface FileRow {
  id: string;
  ownerId: string;
  purpose: string;
  status: FileStatus;
  failureReason: string | null;
  contentType: string;
  size: number;
  checksumSha256: string;
  filename: string;
  uploadKey: string | null;
  originalKey: string | null;
  originalContentType: string | null;
  originalSize: number | null;
  width: number | null;
  height: number | null;
  blurhash: string | null;
  variants: StoredVariant[];
  quotaBytes: number;
  createdAt: Date;
  processedAt: Date | null;
  deletedAt: Date | null;
}

const FILE_COLUMNS = [
  'id',
  'owner_id',
  'purpose',
  'status',
  'failure_reason',
  'content_type',
  'size',
  'checksum_sha256',
  'filename',
  'upload_key',
  'original_key',
  'original_content_type',
  'original_size',
  'width',
  'height',
  'blurhash',
  'variants',
  'quota_bytes',
  'created_at',
  'processed_at',
  'deleted_at',
] as const;

type RawFile = {
  id: string;
  owner_id: string;
  purpose: string;
  status: FileStatus;
  failure_reason: string | null;
  content_type: string;
  size: string;
  checksum_sha256: string;
  filename: string;
  upload_key: string | null;
  original_key: string | null;
  original_content_type: string | null;
  original_size: string | null;
  width: number | null;
  height: number | null;
  blurhash: string | null;
  variants: StoredVariant[];
  quota_bytes: string;
  created_at: Date;
  processed_at: Date | null;
  deleted_at: Date | null;
};

function toFile(r: RawFile): FileRow {
  return {
    id: r.id,
    ownerId: r.owner_id,
    purpose: r.purpose,
    status: r.status,
    failureReason: r.failure_reason,
    contentType: r.content_type,
    size: Number(r.size),
    checksumSha256: r.checksum_sha256,
    filename: r.filename,
    uploadKey: r.upload_key,
    originalKey: r.original_key,
    originalContentType: r.original_content_type,
    originalSize: r.original_size === null ? null : Number(r.original_size),
    width: r.width,
    height: r.height,
    blurhash: r.blurhash,
    variants: r.variants,
    quotaBytes: Number(r.quota_bytes),
    createdAt: r.created_at,
    processedAt: r.processed_at,
    deletedAt: r.deleted_at,
  };
}

/** A file not deleted, or null. `lock`: FOR UPDATE (the processing job and deletion). */
export async function findFile(
  db: FilesDb,
  id: string,
  options: { lock?: boolean } = {},
): Promise<FileRow | null> {
  let q = db
    .selectFrom('gw_file')
    .select(FILE_COLUMNS)
    .where('id', '=', id)
    .where('deleted_at', 'is', null);
  if (options.lock) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row ? toFile(row) : null;
}

/** The files with these ids, not deleted, in one query (any order). */
export async function findFiles(db: FilesDb, ids: readonly string[]): Promise<FileRow[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('gw_file')
    .select(FILE_COLUMNS)
    .where('id', 'in', [...ids])
    .where('deleted_at', 'is', null)
    .execute();
  return rows.map(toFile);
}

export interface NewFile {
  id: string;
  ownerId: string;
  purpose: string;
  status: FileStatus;
  contentType: string;
  size: number;
  checksumSha256: string;
  filename: string;
  uploadKey: string;
  quotaBytes: number;
  /** Documents: served as uploaded. */
  original?: { key: string; contentType: string; size: number };
}

export async function insertFile(db: FilesDb, f: NewFile): Promise<FileRow> {
  const row = await db
    .insertInto('gw_file')
    .values({
      id: f.id,
      owner_id: f.ownerId,
      purpose: f.purpose,
      status: f.status,
      content_type: f.contentType,
      size: f.size,
      checksum_sha256: f.checksumSha256,
      filename: f.filename,
      upload_key: f.original ? null : f.uploadKey,
      original_key: f.original?.key ?? null,
      original_content_type: f.original?.contentType ?? null,
      original_size: f.original?.size ?? null,
      quota_bytes: f.quotaBytes,
      processed_at: f.status === 'processing' ? null : new Date(),
    })
    .returning(FILE_COLUMNS)
    .executeTakeFirstOrThrow();
  return toFile(row);
}

/** Records a processed image: ready with its objects, or failed with its reason. */
export async function finishProcessing(
  db: FilesDb,
  id: string,
  result:
    | {
        status: 'ready';
        original: { key: string; contentType: string; size: number };
        width: number;
        height: number;
        blurhash: string;
        variants: StoredVariant[];
      }
    | { status: 'failed'; reason: string },
): Promise<void> {
  const q = db.updateTable('gw_file').where('id', '=', id).where('status', '=', 'processing');
  if (result.status === 'ready')
    await q
      .set({
        status: 'ready',
        original_key: result.original.key,
        original_content_type: result.original.contentType,
        original_size: result.original.size,
        width: result.width,
        height: result.height,
        blurhash: result.blurhash,
        variants: JSON.stringify(result.variants),
        upload_key: null,
        processed_at: new Date(),
      })
      .execute();
  else
    await q
      .set({
        status: 'failed',
        failure_reason: result.reason,
        upload_key: null,
        quota_bytes: 0,
        processed_at: new Date(),
      })
      .execute();
}

/** Soft-deletes a file; returns the bytes it had charged to its owner (null: not found). */
export async function softDeleteFile(db: FilesDb, id: string): Promise<number | null> {
  const row = await db
    .updateTable('gw_file')
    .set({ deleted_at: new Date() })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returning(['quota_bytes'])
    .executeTakeFirst();
  return row ? Number(row.quota_bytes) : null;
}

/** Deleted files past the grace period (their objects to remove), a batch at a time. */
export async function purgeableFiles(
  db: FilesDb,
  olderThan: Date,
  limit: number,
): Promise<{ id: string; keys: string[] }[]> {
  const rows = await db
    .selectFrom('gw_file')
    .select(['id', 'upload_key', 'original_key', 'variants'])
    .where('deleted_at', '<', olderThan)
    .orderBy('deleted_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    keys: [r.upload_key, r.original_key, ...r.variants.map((v) => v.key)].filter(
      (k): k is string => k !== null,
    ),
  }));
}

export async function deleteFiles(db: FilesDb, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await db.deleteFrom('gw_file').where('id', 'in', ids).execute();
}

/** Whether a file row (deleted or not) has this id: the orphan sweep of storage asks. */
export async function existingFileIds(db: FilesDb, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const files = await db.selectFrom('gw_file').select('id').where('id', 'in', ids).execute();
  const uploads = await db
    .selectFrom('gw_file_upload')
    .select('id')
    .where('id', 'in', ids)
    .execute();
  return new Set([...files, ...uploads].map((r) => r.id));
}

// ---- quota ----

/**
 * Reserves up to `wanted` bytes of the user's quota (all of it when `exact`), atomically: the
 * row lock of one conditional update serialises concurrent uploads of a user. Returns the bytes
 * reserved (0: none left, or not `wanted` when `exact`).
 */
export async function reserveQuota(
  db: FilesDb,
  userId: string,
  wanted: number,
  quota: number,
  exact: boolean,
): Promise<number> {
  await db
    .insertInto('gw_file_usage')
    .values({ user_id: userId, used_bytes: 0 })
    .onConflict((oc) => oc.column('user_id').doNothing())
    .execute();
  const { rows } = await sql<{ reserved: string }>`
    with before as (
      select used_bytes from gw_file_usage where user_id = ${userId} for update
    )
    update gw_file_usage u
       set used_bytes = u.used_bytes + least(${wanted}::int8, ${quota}::int8 - u.used_bytes)
      from before b
     where u.user_id = ${userId}
       and u.used_bytes < ${quota}::int8
       and (not ${exact} or u.used_bytes + ${wanted}::int8 <= ${quota}::int8)
    returning (u.used_bytes - b.used_bytes)::text as reserved`.execute(db);
  return Number(rows[0]?.reserved ?? 0);
}

/** Gives bytes back to the user's quota. */
export async function releaseQuota(db: FilesDb, userId: string, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  await sql`update gw_file_usage set used_bytes = greatest(used_bytes - ${bytes}::int8, 0)
             where user_id = ${userId}`.execute(db);
}

/** Bytes the user has stored (or reserved). */
export async function quotaUsed(db: FilesDb, userId: string): Promise<number> {
  const row = await db
    .selectFrom('gw_file_usage')
    .select('used_bytes')
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(row?.used_bytes ?? 0);
}

// ---- presigned uploads ----

export interface UploadRow {
  id: string;
  ownerId: string;
  purpose: string;
  contentType: string;
  size: number;
  checksumSha256: string;
  filename: string;
  objectKey: string;
  state: UploadState;
  expiresAt: Date;
}

export async function insertUpload(db: FilesDb, u: Omit<UploadRow, 'state'>): Promise<void> {
  await db
    .insertInto('gw_file_upload')
    .values({
      id: u.id,
      owner_id: u.ownerId,
      purpose: u.purpose,
      content_type: u.contentType,
      size: u.size,
      checksum_sha256: u.checksumSha256,
      filename: u.filename,
      object_key: u.objectKey,
      state: 'pending',
      expires_at: u.expiresAt,
    })
    .execute();
}

/** The upload, locked (one `complete` at a time), or null. */
export async function lockUpload(db: FilesDb, id: string): Promise<UploadRow | null> {
  const r = await db
    .selectFrom('gw_file_upload')
    .select([
      'id',
      'owner_id',
      'purpose',
      'content_type',
      'size',
      'checksum_sha256',
      'filename',
      'object_key',
      'state',
      'expires_at',
    ])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!r) return null;
  return {
    id: r.id,
    ownerId: r.owner_id,
    purpose: r.purpose,
    contentType: r.content_type,
    size: Number(r.size),
    checksumSha256: r.checksum_sha256,
    filename: r.filename,
    objectKey: r.object_key,
    state: r.state,
    expiresAt: r.expires_at,
  };
}

export async function setUploadState(db: FilesDb, id: string, state: UploadState): Promise<void> {
  await db.updateTable('gw_file_upload').set({ state }).where('id', '=', id).execute();
}

/**
 * Uploads never completed, expired more than the grace period ago; and settled ones (completed
 * or rejected) older than it, whose rows are no longer needed.
 */
export async function purgeableUploads(
  db: FilesDb,
  olderThan: Date,
  limit: number,
): Promise<{ id: string; ownerId: string; size: number; key: string; state: UploadState }[]> {
  const rows = await db
    .selectFrom('gw_file_upload')
    .select(['id', 'owner_id', 'size', 'object_key', 'state'])
    .where('expires_at', '<', olderThan)
    .orderBy('expires_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    ownerId: r.owner_id,
    size: Number(r.size),
    key: r.object_key,
    state: r.state,
  }));
}

export async function deleteUploads(db: FilesDb, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await db.deleteFrom('gw_file_upload').where('id', 'in', ids).execute();
}
