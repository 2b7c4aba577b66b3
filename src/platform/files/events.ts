import { Type } from 'typebox';
import { defineEvent } from '../events/index.ts';

/** Holders of `files:admin` see every file event; the owner sees their own. */
export const FILES_ADMIN = 'files:admin';
const visibility = { permission: FILES_ADMIN, ownerVisible: true };
const EXAMPLE_FILE = '0190a5c4-7b7e-7000-8000-0000000000f1';

export const fileReady = defineEvent({
  type: 'file.ready',
  description:
    'A file finished processing (images: stripped original, variants and blurhash made; documents: at once) and can be served.',
  payload: Type.Object(
    {
      fileId: Type.String({ format: 'uuid' }),
      purpose: Type.String(),
      contentType: Type.String(),
      size: Type.Integer({ minimum: 0 }),
      variants: Type.Array(Type.String()),
    },
    { additionalProperties: false },
  ),
  example: {
    fileId: EXAMPLE_FILE,
    purpose: 'spots.picture',
    contentType: 'image/jpeg',
    size: 482_113,
    variants: ['w256.webp', 'w256.avif', 'w256.jpeg'],
  },
  visibility,
});

export const fileFailed = defineEvent({
  type: 'file.failed',
  description: 'A file could not be processed; `reason` says why (the file is not served).',
  payload: Type.Object(
    {
      fileId: Type.String({ format: 'uuid' }),
      purpose: Type.String(),
      reason: Type.Union([
        Type.Literal('UNSUPPORTED_TYPE'),
        Type.Literal('TOO_LARGE'),
        Type.Literal('CORRUPT'),
        Type.Literal('TOO_MANY_PIXELS'),
        Type.Literal('PROCESSING_ERROR'),
      ]),
    },
    { additionalProperties: false },
  ),
  example: { fileId: EXAMPLE_FILE, purpose: 'spots.picture', reason: 'CORRUPT' },
  visibility,
});
