import { Type, type Static } from 'typebox';

const uuid = Type.String({ format: 'uuid' });

export const FileId = Type.Object({ id: uuid });
export const UploadId = Type.Object({ id: uuid });

export const VariantResponse = Type.Object({
  name: Type.String({ description: 'The purpose’s variant name, e.g. `w256`.' }),
  format: Type.String({ description: '`webp`, `avif`, `jpeg` or `png`.' }),
  width: Type.Integer(),
  height: Type.Integer(),
  contentType: Type.String(),
  size: Type.Integer({ description: 'Bytes.' }),
});

export const FileResponse = Type.Object({
  id: uuid,
  status: Type.Union([Type.Literal('processing'), Type.Literal('ready'), Type.Literal('failed')]),
  failureReason: Type.Optional(
    Type.String({
      description:
        '`UNSUPPORTED_TYPE`, `TOO_LARGE`, `CORRUPT`, `TOO_MANY_PIXELS` or `PROCESSING_ERROR`, when `failed`.',
    }),
  ),
  purpose: Type.String(),
  contentType: Type.String({ description: 'The type read from the bytes.' }),
  size: Type.Integer({ description: 'Bytes uploaded.' }),
  filename: Type.String({ description: 'The client’s name for it, sanitised.' }),
  width: Type.Optional(Type.Integer()),
  height: Type.Optional(Type.Integer()),
  blurhash: Type.Optional(Type.String()),
  variants: Type.Array(VariantResponse),
  createdAt: Type.String({ format: 'date-time' }),
});
export type FileResponse = Static<typeof FileResponse>;

/** Documents the multipart form of `POST /files` (the parts are checked by the handler). */
export const UploadForm = Type.Object({
  purpose: Type.Optional(
    Type.String({
      description:
        'The purpose (e.g. `spots.picture`); default `FILES_DEFAULT_PURPOSE`. Must come before the file part.',
    }),
  ),
  file: Type.String({ contentEncoding: 'binary', description: 'The one file part.' }),
});

/** Base64 of 32 bytes. */
const SHA256_BASE64 = '^[A-Za-z0-9+/]{43}=$';

export const StartUploadBody = Type.Object(
  {
    purpose: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    contentType: Type.String({
      minLength: 3,
      maxLength: 100,
      pattern: '^[a-z0-9.+-]+/[a-z0-9.+-]+$',
    }),
    size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    checksumSha256: Type.String({
      minLength: 44,
      maxLength: 44,
      pattern: SHA256_BASE64,
      description: 'Base64 SHA-256 of the bytes (as S3’s `x-amz-checksum-sha256`).',
    }),
    filename: Type.Optional(Type.String({ maxLength: 1_000 })),
  },
  { additionalProperties: false },
);

export const StartUploadResponse = Type.Object({
  id: uuid,
  url: Type.String({ description: 'PUT the bytes here, with exactly `headers`.' }),
  method: Type.Literal('PUT'),
  headers: Type.Record(Type.String(), Type.String()),
  expiresAt: Type.String({ format: 'date-time' }),
});

export const ContentQuery = Type.Object({
  variant: Type.Optional(
    Type.String({
      maxLength: 64,
      pattern: '^[a-z0-9][a-z0-9-]*(\\.(webp|avif|jpeg|png))?$',
      description:
        '`w256` (the format the client accepts best: AVIF, WebP, then JPEG), `w256.webp` (that format), or `original` (default: the stripped original).',
    }),
  ),
});
