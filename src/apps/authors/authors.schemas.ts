import { Type, type Static } from 'typebox';
import { listQuerySchema, pageSchema, type ListSpec } from '../../platform/db/index.ts';

/** `GET /authors`: newest first by default, or by name; `q` searches name and bio. */
export const authorListSpec: ListSpec = {
  name: 'authors',
  sorts: { createdAt: 'created_at', name: 'name' },
  defaultSort: '-createdAt',
  search: { columns: ['name', 'bio'] },
};

const Name = Type.String({ minLength: 1, maxLength: 200, description: 'Shown name.' });
const Bio = Type.String({ maxLength: 5_000, description: 'Free text.' });
const BirthDate = Type.String({
  format: 'date',
  description: 'Calendar date `YYYY-MM-DD`, not in the future.',
});
const Links = Type.Array(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2_048 }), {
  maxItems: 10,
  uniqueItems: true,
  description: 'Web pages about the author (http or https).',
});
const AvatarFileId = Type.String({
  format: 'uuid',
  description: 'An `authors.avatar` file the caller uploaded (`POST /api/v1/files`).',
});

export const CreateAuthorBody = Type.Object(
  {
    name: Name,
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    birthDate: Type.Optional(Type.Union([BirthDate, Type.Null()])),
    links: Type.Optional(Links),
    avatarFileId: Type.Optional(Type.Union([AvatarFileId, Type.Null()])),
  },
  { additionalProperties: false },
);
export type CreateAuthorBody = Static<typeof CreateAuthorBody>;

/** A merge patch: absent fields unchanged, `null` clears a nullable one. */
export const UpdateAuthorBody = Type.Object(
  {
    name: Type.Optional(Name),
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    birthDate: Type.Optional(Type.Union([BirthDate, Type.Null()])),
    links: Type.Optional(Links),
    avatarFileId: Type.Optional(Type.Union([AvatarFileId, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateAuthorBody = Static<typeof UpdateAuthorBody>;

export const AuthorParams = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);

export const AuthorResponse = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  bio: Type.Union([Type.String(), Type.Null()]),
  birthDate: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
  links: Type.Array(Type.String()),
  avatarFileId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type AuthorResponse = Static<typeof AuthorResponse>;

export const AuthorListQuery = listQuerySchema(authorListSpec);
export const AuthorPage = pageSchema(AuthorResponse);

// WebSocket command payloads: the HTTP body (create), or the path parameter with it.
export const GetAuthorPayload = AuthorParams;
export const DeleteAuthorPayload = AuthorParams;
export const UpdateAuthorPayload = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.Optional(Name),
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    birthDate: Type.Optional(Type.Union([BirthDate, Type.Null()])),
    links: Type.Optional(Links),
    avatarFileId: Type.Optional(Type.Union([AvatarFileId, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 2 },
);
