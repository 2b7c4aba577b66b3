import { defineErrorCodes, HttpError } from '../http/index.ts';

/** The storage area's error codes (the local driver's signed URLs, an unavailable store). */
export const StorageCodes = defineErrorCodes('storage', {
  STORAGE_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Storage unavailable',
    description:
      'The object store did not answer, or refused the operation (bucket unreachable, disk full or not writable); retry after `Retry-After` seconds.',
  },
  STORAGE_SIGNATURE_INVALID: {
    kind: 'Forbidden',
    title: 'Invalid signature',
    description: 'The signed URL was altered, or was not made by this server: ask for a new one.',
  },
  STORAGE_URL_EXPIRED: {
    kind: 'Forbidden',
    title: 'Signed URL expired',
    description: 'The signed URL is past its expiry: ask for a new one.',
  },
  STORAGE_OBJECT_NOT_FOUND: {
    kind: 'NotFound',
    title: 'No such object',
    description: 'The signed URL is valid but the object is gone (deleted since it was signed).',
  },
  STORAGE_OBJECT_TOO_LARGE: {
    kind: 'PayloadTooLarge',
    title: 'Upload larger than signed',
    description:
      'The upload sent more bytes than the signed URL allows; nothing was kept. The connection is closed.',
  },
  STORAGE_OBJECT_MISMATCH: {
    kind: 'Invalid',
    title: 'Upload does not match its signature',
    description:
      'The upload is not what was signed: its `Content-Type`, length or SHA-256 differs (`reason` says which); nothing was kept.',
  },
});

/** File-system errors that mean the folder cannot serve now (answered 503), not a bad request. */
const UNAVAILABLE_ERRNO = new Set([
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'EROFS',
  'EACCES',
  'EPERM',
  'EMFILE',
  'ENFILE',
  // A path component of the folder is a file: a misconfigured STORAGE_LOCAL_DIR.
  'ENOTDIR',
]);

/** The store could not serve (answered 503 `STORAGE_UNAVAILABLE`); the cause is logged, not shown. */
export class StorageUnavailableError extends HttpError {
  constructor(cause: unknown) {
    super(StorageCodes.STORAGE_UNAVAILABLE, { cause, headers: { 'retry-after': '5' } });
    this.name = 'StorageUnavailableError';
  }
}

/** `error` as a `StorageUnavailableError` when the file system failed (disk full...), else as is. */
export function translateFsError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE_ERRNO.has(code))
    return new StorageUnavailableError(error);
  return error;
}
