import { Type } from 'typebox';
import { listQuerySchema, pageSchema, type ListSpec } from '../../../platform/db/index.ts';
import { PLATFORM_IDS, PUBLISH_ERROR_CODES } from '../platforms/types.ts';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const STATUSES = ['draft', 'scheduled', 'publishing', 'published', 'failed', 'cancelled'] as const;
export const MAX_TEXT = 70_000;
export const MAX_MEDIA = 35;
export const MAX_TARGETS = 20;

const Text = Type.String({
  maxLength: MAX_TEXT,
  description: 'The caption or message (each platform’s own limit is checked: `GET /platforms`).',
});
const MediaFileIds = Type.Array(Uuid, {
  maxItems: MAX_MEDIA,
  uniqueItems: true,
  description: 'Ready `publishing.media` uploads of the caller, in order.',
});
const TargetInput = Type.Object(
  {
    accountId: Uuid,
    options: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
        maxProperties: 32,
        description:
          'Per platform (its `optionsSchema` in `GET /platforms`): YouTube `title`, `privacy`; Instagram `mediaType` reel or feed…',
      }),
    ),
  },
  { additionalProperties: false },
);
const Targets = Type.Array(TargetInput, { minItems: 1, maxItems: MAX_TARGETS });
const ScheduledAt = Type.String({
  maxLength: 40,
  description:
    'RFC 3339 with an offset (`2027-03-28T09:00:00+02:00`, or `…Z`); a numeric offset must be `timeZone`’s at that time.',
  examples: ['2027-03-28T09:00:00+02:00'],
});
const TimeZone = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    'The author’s IANA time zone (`Europe/Berlin`): kept with the post, used by the calendar.',
  examples: ['Europe/Berlin'],
});

export const CreatePostBody = Type.Object(
  {
    text: Text,
    mediaFileIds: Type.Optional(MediaFileIds),
    targets: Targets,
    scheduledAt: Type.Optional(ScheduledAt),
    timeZone: TimeZone,
  },
  { additionalProperties: false },
);

export const UpdatePostBody = Type.Object(
  {
    text: Type.Optional(Text),
    mediaFileIds: Type.Optional(MediaFileIds),
    targets: Type.Optional(Targets),
    scheduledAt: Type.Optional(Type.Union([ScheduledAt, Type.Null()])),
    timeZone: Type.Optional(TimeZone),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ScheduleBody = Type.Object(
  { scheduledAt: Type.Optional(ScheduledAt), timeZone: Type.Optional(TimeZone) },
  { additionalProperties: false },
);

export const PostIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const TargetIdParams = Type.Object(
  { id: Uuid, targetId: Uuid },
  { additionalProperties: false },
);

const TargetErrorSchema = Type.Object({
  code: Type.Enum([...PUBLISH_ERROR_CODES]),
  message: Type.String(),
  retryable: Type.Boolean(),
  action: Type.Enum(['reconnect_account', 'edit_post', 'retry_later', 'none']),
});

const Status = Type.Enum([...STATUSES]);

export const TargetResponse = Type.Object({
  id: Uuid,
  accountId: Uuid,
  platform: Type.Enum([...PLATFORM_IDS]),
  options: Type.Record(Type.String(), Type.Unknown()),
  status: Status,
  attempts: Type.Integer({ description: 'Calls made to the platform.' }),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'When a scheduled target runs next (its time, or a retry or quota wait).',
  }),
  publishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  externalId: Type.Union([Type.String(), Type.Null()], { description: 'The platform’s post id.' }),
  url: Type.Union([Type.String(), Type.Null()], { description: 'The post on the platform.' }),
  error: Type.Union([TargetErrorSchema, Type.Null()]),
});

export const PostResponse = Type.Object({
  id: Uuid,
  text: Type.String(),
  mediaFileIds: Type.Array(Uuid),
  status: Status,
  scheduledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'UTC.',
  }),
  scheduledAtLocal: Type.Union([Type.String(), Type.Null()], {
    description: 'The same instant with `timeZone`’s offset.',
  }),
  timeZone: Type.String(),
  targets: Type.Array(TargetResponse),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const postListSpec: ListSpec = {
  name: 'publishing-posts',
  filters: {
    status: { column: 'p.status', type: 'string', ops: ['eq', 'in'] },
    scheduledAt: { column: 'p.scheduled_at', type: 'timestamp', ops: ['gte', 'lte'] },
  },
  sorts: { createdAt: 'p.created_at' },
  defaultSort: '-createdAt',
  idColumn: 'p.id',
};

export const PostListQuery = Type.Object(
  {
    ...listQuerySchema(postListSpec).properties,
    platform: Type.Optional(
      Type.Enum([...PLATFORM_IDS], {
        description: 'Posts with a target on this platform.',
      }),
    ),
    account: Type.Optional(
      Type.String({ format: 'uuid', description: 'Posts with a target on this account.' }),
    ),
  },
  { additionalProperties: true },
);
export const PostPage = pageSchema(PostResponse);

export const CalendarQuery = Type.Object(
  {
    from: Type.String({ format: 'date', description: 'First local day (YYYY-MM-DD).' }),
    to: Type.String({
      format: 'date',
      description: 'Last local day, at most 62 days after `from`.',
    }),
    timeZone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'The zone the days are in (default: the zone of the caller’s latest post, else UTC).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CalendarResponse = Type.Object({
  timeZone: Type.String(),
  days: Type.Array(
    Type.Object({
      date: Type.String({ format: 'date' }),
      posts: Type.Array(PostResponse),
    }),
  ),
  truncated: Type.Boolean({ description: 'More than 1,000 posts fell in the range: narrow it.' }),
});
