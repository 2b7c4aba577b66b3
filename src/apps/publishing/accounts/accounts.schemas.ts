import { Type } from 'typebox';
import { PLATFORM_IDS } from '../platforms/types.ts';

export const PlatformIdSchema = Type.Union(
  [Type.Literal('instagram'), Type.Literal('facebook'), Type.Literal('youtube')],
  { description: `One of ${PLATFORM_IDS.join(', ')}.` },
);

export const PlatformParams = Type.Object(
  { platform: PlatformIdSchema },
  { additionalProperties: false },
);
export const AccountParams = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);

export const ConnectQuery = Type.Object(
  {
    mode: Type.Optional(
      Type.Union([Type.Literal('redirect'), Type.Literal('json')], {
        description: '`redirect` (default): 302 to the consent; `json`: `{ url }`.',
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * What a platform appends to the redirect back. Providers add parameters of their own (Google:
 * `scope`, `authuser`, `prompt`; Facebook: `error_reason`, `error_code`), so unknown ones are
 * tolerated here: the values read are bounded.
 */
export const CallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ maxLength: 4_096 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 2_048 })),
  error_reason: Type.Optional(Type.String({ maxLength: 256 })),
  error_code: Type.Optional(Type.String({ maxLength: 64 })),
  scope: Type.Optional(Type.String({ maxLength: 4_096 })),
});

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const AccountResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  platform: PlatformIdSchema,
  externalId: Type.String({
    description: 'The account on the platform (Instagram user, Page, channel).',
  }),
  name: Type.String(),
  username: Nullable(Type.String()),
  avatarUrl: Nullable(Type.String()),
  status: Type.Union([
    Type.Literal('active'),
    Type.Literal('reauth_required'),
    Type.Literal('disconnected'),
  ]),
  statusReason: Nullable(Type.String({ description: 'Why it must be reconnected.' })),
  scopes: Type.Array(Type.String()),
  tokenExpiresAt: Nullable(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const AccountList = Type.Object({ items: Type.Array(AccountResponse) });
export const ConnectedAccounts = Type.Object({
  accounts: Type.Array(AccountResponse, {
    description: 'The accounts the consent granted (stored, or updated in place when known).',
  }),
});
export const ConsentUrl = Type.Object({
  url: Type.String({
    format: 'uri',
    description: 'The platform’s consent page: send the browser there.',
  }),
});

const Rules = Type.Object({
  maxTextLength: Type.Integer(),
  minMedia: Type.Integer(),
  maxMedia: Type.Integer(),
  mediaTypes: Type.Array(Type.String()),
  maxImageBytes: Type.Integer(),
  maxVideoBytes: Type.Integer(),
  aspectRatio: Nullable(Type.Object({ min: Type.Number(), max: Type.Number() })),
  maxVideoDurationS: Nullable(Type.Integer()),
  mixedMedia: Type.Boolean(),
});

export const PlatformsResponse = Type.Object({
  items: Type.Array(
    Type.Object({
      id: PlatformIdSchema,
      displayName: Type.String(),
      rules: Rules,
      quotas: Type.Array(
        Type.Object({
          endpoint: Type.String(),
          limit: Type.Integer(),
          periodMs: Type.Integer(),
          description: Type.String(),
        }),
      ),
      options: Type.Unknown({ description: 'JSON Schema of the per-target `options`.' }),
    }),
  ),
});
