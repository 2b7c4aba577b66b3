import { defineErrorCodes } from '../../platform/http/index.ts';

/** The public data app's error codes (stable once shipped). */
export const PublicDataCodes = defineErrorCodes('public-data', {
  DATASET_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Dataset not found',
    description: 'No published dataset has this slug (or it has no imported version yet).',
  },
  VERSION_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Version not found',
    description:
      'The dataset has no readable version with this number (never imported, failed, or older than `PUBLIC_DATA_KEEP_VERSIONS`).',
  },
  SLUG_TAKEN: {
    kind: 'Conflict',
    title: 'Slug taken',
    description: 'Another dataset already has this slug.',
  },
  DATASET_FILE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'File not found',
    description: 'No file of purpose `public-data.dataset` uploaded by the caller has this id.',
  },
  DATASET_FILE_NOT_READY: {
    kind: 'Conflict',
    title: 'File not ready',
    description: 'The file is not stored yet (or failed): import it once it is `ready`.',
  },
  INVALID_FILTER: {
    kind: 'Invalid',
    title: 'Invalid filter',
    description:
      'A filter, sort, field, facet or search parameter names a column that does not exist, is hidden, or does not allow it, or its value does not fit the column’s type; the detail names the column.',
  },
  INVALID_API_KEY: {
    kind: 'Unauthorized',
    title: 'Invalid API key',
    description: 'The `X-API-Key` header is not a key issued here, or it was revoked.',
  },
  API_KEY_NOT_FOUND: {
    kind: 'NotFound',
    title: 'API key not found',
    description: 'No API key has this id.',
  },
});
