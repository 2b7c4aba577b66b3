import { availableParallelism } from 'node:os';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { configDuration as duration, parseDuration, type SliceContext } from '../config/index.ts';

/** The files module's settings (`FILES_*`), validated with the platform's at start. */
export const FilesConfig = Type.Object({
  FILES_USER_QUOTA_BYTES: Type.Integer({
    default: 1_073_741_824,
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description:
      'Bytes each user may store (uploads, counted at their uploaded size, until deleted); past it uploads answer 413 `QUOTA_EXCEEDED`.',
  }),
  FILES_UPLOAD_TIMEOUT: duration(
    'Handler deadline of `POST /files` (instead of `HANDLER_TIMEOUT_MS`); `REQUEST_TIMEOUT_MS` must be at least as long for the body to arrive.',
    '5m',
  ),
  FILES_PROCESSING_CONCURRENCY: Type.Integer({
    default: 0,
    minimum: 0,
    maximum: 256,
    description:
      'Images processed at once per worker process; 0: one per CPU core (`os.availableParallelism()`).',
  }),
  FILES_UPLOAD_URL_TTL: duration(
    'How long a presigned upload URL (`POST /files/uploads`) stays valid; at most 7 days.',
    '15m',
  ),
  FILES_DOWNLOAD_URL_TTL: duration(
    'How long the signed URL a content request redirects to stays valid.',
    '5m',
  ),
  FILES_PURGE_AFTER: duration(
    'Grace period before the storage of deleted files and of uploads never completed is purged.',
    '24h',
  ),
  FILES_DEFAULT_PURPOSE: Type.String({
    default: 'files.image',
    minLength: 1,
    maxLength: 100,
    description: 'The purpose of an upload that names none.',
  }),
});
export type FilesConfig = Static<typeof FilesConfig>;

/** The module's settings, parsed (durations in ms or s). */
export interface FilesSettings {
  readonly userQuotaBytes: number;
  readonly uploadTimeoutMs: number;
  readonly processingConcurrency: number;
  readonly uploadUrlTtlS: number;
  readonly downloadUrlTtlS: number;
  readonly purgeAfterS: number;
  readonly defaultPurpose: string;
}

/** Cross-field checks of the slice (listed with every other configuration problem). */
export function checkFilesConfig(values: FilesConfig): readonly { key: string; message: string }[] {
  const issues: { key: string; message: string }[] = [];
  if (parseDuration(values.FILES_UPLOAD_URL_TTL) > 7 * 86_400)
    issues.push({ key: 'FILES_UPLOAD_URL_TTL', message: 'must be at most 7d (S3 presigning)' });
  if (parseDuration(values.FILES_DOWNLOAD_URL_TTL) > 7 * 86_400)
    issues.push({ key: 'FILES_DOWNLOAD_URL_TTL', message: 'must be at most 7d (S3 presigning)' });
  return issues;
}

/** Parses the slice (a fixture's config without it gets the defaults). */
export function filesSettings(values: unknown, _context?: SliceContext): FilesSettings {
  const given = typeof values === 'object' && values !== null ? values : {};
  const v = Value.Parse(FilesConfig, Value.Default(FilesConfig, { ...given }));
  return Object.freeze({
    userQuotaBytes: v.FILES_USER_QUOTA_BYTES,
    uploadTimeoutMs: parseDuration(v.FILES_UPLOAD_TIMEOUT) * 1000,
    processingConcurrency: v.FILES_PROCESSING_CONCURRENCY || availableParallelism(),
    uploadUrlTtlS: parseDuration(v.FILES_UPLOAD_URL_TTL),
    downloadUrlTtlS: parseDuration(v.FILES_DOWNLOAD_URL_TTL),
    purgeAfterS: parseDuration(v.FILES_PURGE_AFTER),
    defaultPurpose: v.FILES_DEFAULT_PURPOSE,
  });
}
