import { Type, type Static } from 'typebox';

/** What a spot is: a fixed list, so filters and the map legend agree. */
export const SPOT_CATEGORIES = [
  'viewpoint',
  'mural',
  'architecture',
  'bridge',
  'nature',
  'street',
  'monument',
  'water',
  'night',
  'other',
] as const;
export type SpotCategory = (typeof SPOT_CATEGORIES)[number];

/** Text search configurations a spot may be written in (stemming and stop words). */
export const SPOT_LANGUAGES = [
  'simple',
  'english',
  'french',
  'german',
  'spanish',
  'italian',
  'portuguese',
  'dutch',
] as const;
export type SpotLanguage = (typeof SPOT_LANGUAGES)[number];

const literals = <const T extends readonly string[]>(values: T) => Type.Enum(values);

export const MAX_TAGS = 20;
export const MAX_TAG_LENGTH = 40;

export const Location = Type.Object(
  {
    lat: Type.Number({ minimum: -90, maximum: 90, description: 'Latitude, degrees (WGS 84).' }),
    lng: Type.Number({ minimum: -180, maximum: 180, description: 'Longitude, degrees (WGS 84).' }),
  },
  { additionalProperties: false },
);

const Name = Type.String({ minLength: 1, maxLength: 120 });
const Description = Type.String({ maxLength: 5_000 });
const Address = Type.String({ minLength: 1, maxLength: 300 });
const Tag = Type.String({ minLength: 1, maxLength: MAX_TAG_LENGTH });
const Tags = Type.Array(Tag, {
  maxItems: MAX_TAGS,
  description: `At most ${String(MAX_TAGS)}; stored lower-case, duplicates (in any case) once.`,
});

export const CreateSpotBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    location: Location,
    address: Type.Optional(Address),
    category: literals(SPOT_CATEGORIES),
    tags: Type.Optional(Tags),
    language: Type.Optional(literals(SPOT_LANGUAGES)),
  },
  { additionalProperties: false },
);
export type CreateSpotBody = Static<typeof CreateSpotBody>;

export const UpdateSpotBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    location: Type.Optional(Location),
    address: Type.Optional(Type.Union([Address, Type.Null()])),
    category: Type.Optional(literals(SPOT_CATEGORIES)),
    tags: Type.Optional(Tags),
    language: Type.Optional(literals(SPOT_LANGUAGES)),
    coverPictureId: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateSpotBody = Static<typeof UpdateSpotBody>;

export const SpotParams = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);
export const PictureParams = Type.Object(
  { id: Type.String({ format: 'uuid' }), pictureId: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);

export const SPOT_SORTS = ['distance', 'newest', 'popular', 'relevance'] as const;
export type SpotSort = (typeof SPOT_SORTS)[number];

export const SpotListQuery = Type.Object(
  {
    near: Type.Optional(
      Type.String({
        maxLength: 64,
        description: '`lat,lng` in degrees: results within `radiusM`, each with `distanceM`.',
        examples: ['48.8584,2.2945'],
      }),
    ),
    radiusM: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 20_000_000,
        description: 'Metres around `near` (default 2,000; at most `SPOTS_MAX_RADIUS_M`).',
      }),
    ),
    bbox: Type.Optional(
      Type.String({
        maxLength: 128,
        description:
          '`minLng,minLat,maxLng,maxLat` (a map viewport). `minLng > maxLng` crosses the antimeridian.',
        examples: ['2.25,48.81,2.42,48.90'],
      }),
    ),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'Full-text search (name, tags, description, address), typo-tolerant.',
      }),
    ),
    category: Type.Optional(literals(SPOT_CATEGORIES)),
    tag: Type.Optional(Tag),
    owner: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'One user’s spots; the owner listing their own also sees hidden ones.',
      }),
    ),
    sort: Type.Optional(literals(SPOT_SORTS)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2_048 })),
  },
  { additionalProperties: false },
);
export type SpotListQuery = Static<typeof SpotListQuery>;

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2_048 })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

const Variant = Type.Object({
  id: Type.String({ description: '`w256.webp`: what `?variant=` takes.' }),
  width: Type.Integer(),
  height: Type.Integer(),
  contentType: Type.String(),
  size: Type.Integer(),
  path: Type.String(),
});

export const PictureResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  spotId: Type.String({ format: 'uuid' }),
  fileId: Type.String({ format: 'uuid' }),
  caption: Type.Union([Type.String(), Type.Null()]),
  status: literals(['processing', 'ready', 'failed'] as const),
  width: Type.Union([Type.Integer(), Type.Null()]),
  height: Type.Union([Type.Integer(), Type.Null()]),
  blurhash: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.String(), Type.Null()]),
  variants: Type.Array(Variant),
  createdAt: Type.String({ format: 'date-time' }),
});
export type PictureResponse = Static<typeof PictureResponse>;

export const SPOT_STATUSES = ['visible', 'pending', 'hidden'] as const;
export type SpotStatus = (typeof SPOT_STATUSES)[number];

export const SpotResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  ownerId: Type.String({ format: 'uuid' }),
  name: Type.String(),
  description: Type.String(),
  address: Type.Union([Type.String(), Type.Null()]),
  category: Type.String(),
  tags: Type.Array(Type.String()),
  language: Type.String(),
  location: Type.Object({ lat: Type.Number(), lng: Type.Number() }),
  distanceM: Type.Optional(Type.Number({ description: 'With `near`: metres from it.' })),
  favouriteCount: Type.Integer({ description: 'Recounted by a job a few seconds after a change.' }),
  coverPictureId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  cover: Type.Union([PictureResponse, Type.Null()]),
  status: literals(SPOT_STATUSES),
  moderationReason: Type.Optional(
    Type.Union([Type.String(), Type.Null()], {
      description: 'Why it is hidden or pending: shown to its owner and moderators only.',
    }),
  ),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type SpotResponse = Static<typeof SpotResponse>;

export const SpotDetail = Type.Intersect([
  SpotResponse,
  Type.Object({ pictures: Type.Array(PictureResponse) }),
]);
export type SpotDetail = Static<typeof SpotDetail>;

const PageInfo = Type.Object({
  limit: Type.Integer(),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `cursor` for the next page; null on the last.',
  }),
  hasMore: Type.Boolean(),
});

export const SpotPage = Type.Object({
  items: Type.Array(SpotResponse),
  page: PageInfo,
  truncated: Type.Optional(
    Type.Boolean({ description: 'With `bbox`: more spots are in the box than answered.' }),
  ),
  search: Type.Optional(
    Type.Union([Type.Literal('text'), Type.Literal('fuzzy'), Type.Literal('none')], {
      description:
        'With `q`: `text` (full-text matches), `fuzzy` (none: trigram similarity of names), `none` (nothing searchable in `q`, e.g. only stop words).',
    }),
  ),
});
export type SpotPage = Static<typeof SpotPage>;

export const PicturePage = Type.Object({ items: Type.Array(PictureResponse) });

export const AddPictureBody = Type.Object(
  {
    fileId: Type.String({ format: 'uuid', description: 'An upload of purpose `spots.picture`.' }),
    caption: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type AddPictureBody = Static<typeof AddPictureBody>;

export const ReportBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1_000 }) },
  { additionalProperties: false },
);
export const HideBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1_000 }) },
  { additionalProperties: false },
);

export const ReportResponse = Type.Object({
  spotId: Type.String({ format: 'uuid' }),
  reported: Type.Boolean(),
  /** True when this report reached the threshold and the spot went to review. */
  hidden: Type.Boolean(),
});

export const QueueItem = Type.Intersect([
  SpotResponse,
  Type.Object({ reportCount: Type.Integer(), reports: Type.Array(Type.String()) }),
]);
export const QueuePage = Type.Object({ items: Type.Array(QueueItem), page: PageInfo });
