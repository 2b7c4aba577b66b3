import { Type, type Static } from 'typebox';
import { configDuration as duration, parseDuration } from '../../platform/config/index.ts';

/** The public data app's settings (`PUBLIC_DATA_*`), validated with the platform's at start. */
export const PublicDataConfig = Type.Object({
  PUBLIC_DATA_MAX_BYTES: Type.Integer({
    default: 1_073_741_824,
    minimum: 1,
    maximum: 1_073_741_824,
    description:
      'The largest dataset file an import reads, in bytes (counted while streaming; the import fails with `FILE_TOO_LARGE` past it). Uploads themselves stop at 1 GiB (the file purpose).',
  }),
  PUBLIC_DATA_MAX_COLUMNS: Type.Integer({
    default: 1000,
    minimum: 1,
    maximum: 1500,
    description:
      'The most columns a dataset may have (PostgreSQL holds at most 1,600 per table); more fails the import with `TOO_MANY_COLUMNS`.',
  }),
  PUBLIC_DATA_KEEP_VERSIONS: Type.Integer({
    default: 3,
    minimum: 1,
    maximum: 100,
    description:
      'Versions of a dataset kept readable (`?version=`), the current one included; older tables are dropped after a swap.',
  }),
  PUBLIC_DATA_DEFAULT_INDEXED_COLUMNS: Type.Integer({
    default: 16,
    minimum: 0,
    maximum: 64,
    description:
      'Columns (the first ones) filterable and sortable by default, each with an index; later columns need an override.',
  }),
  PUBLIC_DATA_MAX_INDEXED_COLUMNS: Type.Integer({
    default: 64,
    minimum: 1,
    maximum: 256,
    description:
      'The most filterable or sortable (indexed) columns a version may declare; more fails the import.',
  }),
  PUBLIC_DATA_MAX_IN_VALUES: Type.Integer({
    default: 1000,
    minimum: 1,
    maximum: 10_000,
    description: 'The most values one `column[in]=` filter may list (422 past it).',
  }),
  PUBLIC_DATA_MAX_LIMIT: Type.Integer({
    default: 500,
    minimum: 1,
    maximum: 10_000,
    description: 'The largest page of rows (`limit`).',
  }),
  PUBLIC_DATA_FACET_SIZE: Type.Integer({
    default: 10,
    minimum: 1,
    maximum: 100,
    description: 'Values listed per facet (the most frequent under the filters).',
  }),
  PUBLIC_DATA_SEARCH_CONFIG: Type.String({
    default: 'simple',
    pattern: '^[a-z_]{1,63}$',
    description:
      'PostgreSQL text search configuration (`simple`, `english`, `french`...) of the versions imported from now on; each version keeps its own for `q`.',
  }),
  PUBLIC_DATA_MAX_AGE: duration(
    '`Cache-Control: max-age` of public answers (browsers and CDNs).',
    '60s',
  ),
  PUBLIC_DATA_STALE_WHILE_REVALIDATE: duration(
    '`Cache-Control: stale-while-revalidate` of public answers.',
    '5m',
  ),
  PUBLIC_DATA_METADATA_TTL: duration(
    'How long a process reuses a dataset’s metadata (current version, columns) and API keys before reading them again; a change made in this process is seen at once, one made in another within this delay.',
    '2s',
  ),
  PUBLIC_DATA_API_KEY_DEFAULT_LIMIT: Type.Integer({
    default: 600,
    minimum: 1,
    maximum: 100_000_000,
    description: 'Requests per minute of a new API key when its issuer names none.',
  }),
});
export type PublicDataConfig = Static<typeof PublicDataConfig>;

/** The settings in the form the app uses (durations in milliseconds or seconds). */
export interface PublicDataSettings {
  readonly maxBytes: number;
  readonly maxColumns: number;
  readonly keepVersions: number;
  readonly defaultIndexedColumns: number;
  readonly maxIndexedColumns: number;
  readonly maxInValues: number;
  readonly maxLimit: number;
  readonly facetSize: number;
  readonly searchConfig: string;
  readonly maxAgeS: number;
  readonly staleWhileRevalidateS: number;
  readonly metadataTtlMs: number;
  readonly apiKeyDefaultLimit: number;
}

export function publicDataSettings(values: PublicDataConfig): PublicDataSettings {
  return Object.freeze({
    maxBytes: values.PUBLIC_DATA_MAX_BYTES,
    maxColumns: values.PUBLIC_DATA_MAX_COLUMNS,
    keepVersions: values.PUBLIC_DATA_KEEP_VERSIONS,
    defaultIndexedColumns: values.PUBLIC_DATA_DEFAULT_INDEXED_COLUMNS,
    maxIndexedColumns: values.PUBLIC_DATA_MAX_INDEXED_COLUMNS,
    maxInValues: values.PUBLIC_DATA_MAX_IN_VALUES,
    maxLimit: values.PUBLIC_DATA_MAX_LIMIT,
    facetSize: values.PUBLIC_DATA_FACET_SIZE,
    searchConfig: values.PUBLIC_DATA_SEARCH_CONFIG,
    maxAgeS: parseDuration(values.PUBLIC_DATA_MAX_AGE),
    staleWhileRevalidateS: parseDuration(values.PUBLIC_DATA_STALE_WHILE_REVALIDATE),
    metadataTtlMs: parseDuration(values.PUBLIC_DATA_METADATA_TTL) * 1000,
    apiKeyDefaultLimit: values.PUBLIC_DATA_API_KEY_DEFAULT_LIMIT,
  });
}
