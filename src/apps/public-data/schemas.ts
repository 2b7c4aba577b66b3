import { Type, type Static } from 'typebox';

const Slug = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'Lowercase letters, digits and dashes.',
});
const Tag = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' });

export const SlugParams = Type.Object({ slug: Slug }, { additionalProperties: false });
export const IdParams = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);

export const CreateDatasetBody = Type.Object(
  {
    slug: Slug,
    title: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 10_000, default: '' }),
    license: Type.String({ maxLength: 200, default: '' }),
    source: Type.String({ maxLength: 2_000, default: '' }),
    tags: Type.Array(Tag, { maxItems: 20, uniqueItems: true, default: [] }),
  },
  { additionalProperties: false },
);
export type CreateDatasetBody = Static<typeof CreateDatasetBody>;

export const PatchDatasetBody = Type.Object(
  {
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    license: Type.Optional(Type.String({ maxLength: 200 })),
    source: Type.Optional(Type.String({ maxLength: 2_000 })),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 20, uniqueItems: true })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type PatchDatasetBody = Static<typeof PatchDatasetBody>;

const ColumnType = Type.Union([
  Type.Literal('integer'),
  Type.Literal('decimal'),
  Type.Literal('boolean'),
  Type.Literal('date'),
  Type.Literal('timestamp'),
  Type.Literal('geo'),
  Type.Literal('text'),
]);

export const ColumnOverrideSchema = Type.Object(
  {
    type: Type.Optional(ColumnType),
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2_000 })),
    filterable: Type.Optional(Type.Boolean()),
    sortable: Type.Optional(Type.Boolean()),
    searchable: Type.Optional(Type.Boolean()),
    hidden: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const CreateVersionBody = Type.Object(
  {
    fileId: Type.String({ format: 'uuid' }),
    format: Type.Union([Type.Literal('csv'), Type.Literal('ndjson')], { default: 'csv' }),
    /** Per column, by its header as written or its public name. */
    columns: Type.Record(Type.String({ minLength: 1, maxLength: 200 }), ColumnOverrideSchema, {
      maxProperties: 2_000,
      default: {},
    }),
  },
  { additionalProperties: false },
);
export type CreateVersionBody = Static<typeof CreateVersionBody>;

export const DatasetResponse = Type.Object({
  slug: Type.String(),
  title: Type.String(),
  description: Type.String(),
  license: Type.String(),
  source: Type.String(),
  tags: Type.Array(Type.String()),
  version: Type.Union([Type.Integer(), Type.Null()]),
  rowCount: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const ColumnResponse = Type.Object({
  name: Type.String(),
  label: Type.String(),
  description: Type.String(),
  type: ColumnType,
  filterable: Type.Boolean(),
  sortable: Type.Boolean(),
  searchable: Type.Boolean(),
});

export const DatasetDetail = Type.Object({
  ...DatasetResponse.properties,
  columns: Type.Array(ColumnResponse),
  versions: Type.Array(
    Type.Object({
      number: Type.Integer(),
      rowCount: Type.Integer(),
      importedAt: Type.String({ format: 'date-time' }),
    }),
  ),
});

export const DatasetListQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    tag: Type.Optional(Tag),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 2_048 })),
  },
  { additionalProperties: false },
);

export const DatasetPage = Type.Object({
  items: Type.Array(DatasetResponse),
  page: Type.Object({
    limit: Type.Integer(),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
    hasMore: Type.Boolean(),
  }),
});

const BadRowSchema = Type.Object({ line: Type.Integer(), message: Type.String() });

export const VersionResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  number: Type.Integer(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('importing'),
    Type.Literal('ready'),
    Type.Literal('failed'),
    Type.Literal('retired'),
  ]),
  current: Type.Boolean(),
  fileId: Type.String({ format: 'uuid' }),
  format: Type.Union([Type.Literal('csv'), Type.Literal('ndjson')]),
  jobId: Type.Union([Type.String(), Type.Null()]),
  rowCount: Type.Integer(),
  badRowCount: Type.Integer(),
  badRows: Type.Array(BadRowSchema, {
    description: 'The first 100 rows refused, with their line.',
  }),
  warnings: Type.Array(Type.String()),
  failureCode: Type.Union([Type.String(), Type.Null()]),
  failure: Type.Union([Type.String(), Type.Null()]),
  columns: Type.Array(Type.Object({ ...ColumnResponse.properties, hidden: Type.Boolean() })),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const VersionList = Type.Object({ items: Type.Array(VersionResponse) });
export const VersionAccepted = Type.Object({ version: VersionResponse, jobId: Type.String() });

/** Filters are `column=value` and `column[op]=value`: any other key is checked against the columns. */
const FilterValue = Type.Union([
  Type.String({ maxLength: 100_000 }),
  Type.Array(Type.String({ maxLength: 100_000 }), { maxItems: 20 }),
]);

export const RowsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    cursor: Type.Optional(Type.String({ maxLength: 2_048 })),
    sort: Type.Optional(Type.String({ maxLength: 500, description: '`col,-col2`' })),
    q: Type.Optional(
      Type.String({
        maxLength: 500,
        description: 'Words, "phrases", or, -not (web search syntax).',
      }),
    ),
    near: Type.Optional(Type.String({ maxLength: 60, description: '`lat,lng` on the geo column' })),
    radiusM: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 20_000_000 })),
    facets: Type.Optional(Type.String({ maxLength: 500 })),
    fields: Type.Optional(Type.String({ maxLength: 20_000 })),
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
  },
  { additionalProperties: FilterValue, maxProperties: 60 },
);
export type RowsQuery = Static<typeof RowsQuery>;

export const RowsPage = Type.Object({
  version: Type.Integer(),
  items: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  page: Type.Object({
    limit: Type.Integer(),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
    hasMore: Type.Boolean(),
  }),
  facets: Type.Optional(
    Type.Record(
      Type.String(),
      Type.Array(Type.Object({ value: Type.Unknown(), count: Type.Integer() })),
    ),
  ),
});

export const ExportQuery = Type.Object(
  {
    sort: RowsQuery.properties.sort,
    q: RowsQuery.properties.q,
    near: RowsQuery.properties.near,
    radiusM: RowsQuery.properties.radiusM,
    fields: RowsQuery.properties.fields,
    version: RowsQuery.properties.version,
  },
  { additionalProperties: FilterValue, maxProperties: 60 },
);

export const CreateApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    rateLimitPerMin: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
  },
  { additionalProperties: false },
);

export const ApiKeyResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String(),
  rateLimitPerMin: Type.Integer(),
  requestCount: Type.Integer(),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export const ApiKeyCreated = Type.Object({
  ...ApiKeyResponse.properties,
  key: Type.String({ description: 'Shown once: only its hash is kept.' }),
});
export const ApiKeyList = Type.Object({ items: Type.Array(ApiKeyResponse) });

export const NotModified = Type.Null({
  description: 'Not modified: the copy named by `If-None-Match` is current.',
});
