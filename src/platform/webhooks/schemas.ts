import { Type, type Static } from 'typebox';
import { listQuerySchema, pageSchema } from '../db/index.ts';
import { deliveryListSpec, endpointListSpec } from './repository.ts';

/** `area.thing.happened`, as the events area declares types. */
const EVENT_TYPE = Type.String({
  pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,3}$',
  maxLength: 100,
});

const Url = Type.String({
  minLength: 1,
  maxLength: 2048,
  description:
    'Where events are POSTed: https in production; its host must resolve to public addresses only.',
});
const Description = Type.String({ maxLength: 500 });
const EventTypes = Type.Array(EVENT_TYPE, {
  maxItems: 100,
  uniqueItems: true,
  description: 'Event types sent to this endpoint; empty: every type its owner may see.',
});
const RateLimit = Type.Union([Type.Integer({ minimum: 1, maximum: 10_000 }), Type.Null()], {
  description:
    'At most this many requests per second to this endpoint (per worker process); null: no limit.',
});

export const EndpointId = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);
export const MessageId = EndpointId;

export const CreateEndpointBody = Type.Object(
  {
    url: Url,
    description: Type.Optional(Description),
    eventTypes: Type.Optional(EventTypes),
    enabled: Type.Optional(Type.Boolean()),
    ordered: Type.Optional(
      Type.Boolean({
        description:
          'Deliver this endpoint’s messages one at a time, in order (a failing message holds back the next ones until it succeeds or fails for good).',
      }),
    ),
    rateLimitPerSecond: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
);
export type CreateEndpointBody = Static<typeof CreateEndpointBody>;

export const UpdateEndpointBody = Type.Object(
  {
    url: Type.Optional(Url),
    description: Type.Optional(Description),
    eventTypes: Type.Optional(EventTypes),
    enabled: Type.Optional(Type.Boolean()),
    ordered: Type.Optional(Type.Boolean()),
    rateLimitPerSecond: Type.Optional(RateLimit),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateEndpointBody = Static<typeof UpdateEndpointBody>;

export const EndpointResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  ownerId: Type.String({ format: 'uuid' }),
  url: Type.String(),
  description: Type.String(),
  eventTypes: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  ordered: Type.Boolean(),
  rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
  disabledReason: Type.Union([Type.String(), Type.Null()], {
    description: '`manual`, `failing` (continuous failures) or `gone` (410); null when enabled.',
  }),
  disabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  failingSince: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type EndpointResponse = Static<typeof EndpointResponse>;

const Secret = Type.String({
  pattern: '^whsec_',
  description: 'The signing secret (`whsec_` and base64). Shown only here: store it now.',
});

export const CreatedEndpointResponse = Type.Object({
  endpoint: EndpointResponse,
  secret: Secret,
});

export const RotatedSecretResponse = Type.Object({
  secret: Secret,
  previousValidUntil: Type.String({
    format: 'date-time',
    description: 'Until then the previous secret signs too (both signatures are sent).',
  }),
});

export const EndpointListQuery = listQuerySchema(endpointListSpec);
export const EndpointPage = pageSchema(EndpointResponse);

export const TestBody = Type.Object(
  {
    eventType: Type.Optional(
      Type.String({
        ...EVENT_TYPE,
        description: 'Send this type’s example payload as `data.example`.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MessageAccepted = Type.Object({
  messageId: Type.String({ format: 'uuid' }),
});

export const RecoverBody = Type.Object(
  {
    since: Type.String({
      format: 'date-time',
      description: 'Re-deliver every failed message created at or after this time.',
    }),
  },
  { additionalProperties: false },
);
export const RecoverResponse = Type.Object({
  requeued: Type.Integer({ description: 'Messages queued again.' }),
});

const Attempt = Type.Object({
  attemptedAt: Type.String({ format: 'date-time' }),
  outcome: Type.String({ description: '`success`, `retry`, `gone` or `blocked`.' }),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Integer(),
  responseBody: Type.String({ description: 'The first 4 KB of the response body.' }),
  errorClass: Type.Union([Type.String(), Type.Null()], {
    description: 'Why it failed (see docs/webhooks.md); null on success.',
  }),
});

export const DeliveryResponse = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The message id (`webhook-id`).' }),
  eventId: Type.String({ format: 'uuid' }),
  eventType: Type.String(),
  eventTime: Type.String({ format: 'date-time' }),
  status: Type.String({ description: '`pending`, `succeeded` or `failed`.' }),
  attemptCount: Type.Integer(),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastErrorClass: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Array(Attempt),
});
export const DeliveryListQuery = listQuerySchema(deliveryListSpec);
export const DeliveryPage = pageSchema(DeliveryResponse);

export const EventTypeResponse = Type.Object({
  type: Type.String(),
  version: Type.Integer(),
  description: Type.String(),
  schema: Type.Unknown({ description: 'The JSON Schema of `data`.' }),
  example: Type.Unknown({ description: 'An example of `data`.' }),
});
export const EventTypeList = Type.Object({ items: Type.Array(EventTypeResponse) });
