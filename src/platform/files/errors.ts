import { defineErrorCodes } from '../http/index.ts';

/** The files area's error codes (stable once shipped). */
export const FileCodes = defineErrorCodes('files', {
  FILE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'File not found',
    description: 'No file with this id that the caller may see (deleted files are gone).',
  },
  FILE_VARIANT_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Variant not found',
    description: 'The file has no variant of this name (and format): see its `variants`.',
  },
  FILE_NOT_READY: {
    kind: 'Conflict',
    title: 'File not ready',
    description:
      'The file is still processing, or failed (`failureReason`): its content is not served.',
  },
  FILE_PURPOSE_UNKNOWN: {
    kind: 'Invalid',
    title: 'Unknown file purpose',
    description: 'No enabled module declares this purpose.',
  },
  FILE_MISSING: {
    kind: 'BadRequest',
    title: 'No file',
    description: 'The multipart body has no file part.',
  },
  FILE_TOO_MANY: {
    kind: 'BadRequest',
    title: 'More than one file',
    description: 'The multipart body has more than one file part: send one file per request.',
  },
  FILE_MULTIPART_INVALID: {
    kind: 'BadRequest',
    title: 'Malformed multipart body',
    description:
      'The body is not a well-formed `multipart/form-data` of at most a few short fields before one file part (fields after the file are refused).',
  },
  FILE_EMPTY: {
    kind: 'Invalid',
    title: 'Empty file',
    description: 'The file has no bytes.',
  },
  FILE_TOO_LARGE: {
    kind: 'PayloadTooLarge',
    title: 'File too large',
    description: 'The file is larger than its purpose accepts (`maxBytes`); nothing is kept.',
  },
  QUOTA_EXCEEDED: {
    kind: 'PayloadTooLarge',
    title: 'Storage quota exceeded',
    description:
      'The file would take the caller past their storage quota (`FILES_USER_QUOTA_BYTES`); nothing is kept.',
  },
  FILE_TYPE_NOT_ALLOWED: {
    kind: 'UnsupportedMediaType',
    title: 'File type not allowed',
    description:
      'The type read from the bytes (never the declared `Content-Type` or the name) is not one the purpose accepts; SVG, HTML, XML and other scriptable types are never images.',
  },
  FILE_TOO_MANY_PIXELS: {
    kind: 'Invalid',
    title: 'Image has too many pixels',
    description:
      'The image header declares more pixels (or frames) than the purpose accepts: refused before decoding.',
  },
  FILE_CORRUPT: {
    kind: 'Invalid',
    title: 'Corrupt image',
    description: 'The image header cannot be read.',
  },
  UPLOAD_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Upload not found',
    description: 'No pending upload with this id belongs to the caller.',
  },
  UPLOAD_NOT_RECEIVED: {
    kind: 'Conflict',
    title: 'Upload not received',
    description: 'Nothing was uploaded to the presigned URL yet: upload, then complete.',
  },
  UPLOAD_EXPIRED: {
    kind: 'Conflict',
    title: 'Upload expired',
    description: 'The presigned URL expired before the upload was completed: start again.',
  },
  UPLOAD_ALREADY_COMPLETED: {
    kind: 'Conflict',
    title: 'Upload already completed',
    description: 'This upload was completed already (see the file of the same id).',
  },
  UPLOAD_MISMATCH: {
    kind: 'Invalid',
    title: 'Upload does not match',
    description:
      'The bytes stored are not those declared (size or SHA-256): the object is removed; start again.',
  },
});
