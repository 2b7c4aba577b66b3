import { Type } from 'typebox';

export const ADMIN_BODY_LIMIT = 16_384;

export const Description = Type.String({ maxLength: 500 });
// Not `format: uuid`: a malformed id is an unknown one (404), like any other.
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export const Time = Type.String({ format: 'date-time' });
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

export const AdminUserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  username: Type.String(),
  emailVerified: Type.Boolean(),
  locked: Type.Boolean({ description: 'Locked now: by failed sign-ins or by an administrator.' }),
  lockedUntil: Nullable(
    Type.String({
      format: 'date-time',
      description: 'End of a lockout; null with `locked` true: until an administrator unlocks.',
    }),
  ),
  failedLoginCount: Type.Integer(),
  roles: Type.Array(Type.String()),
  createdAt: Time,
  lastLoginAt: Nullable(Time),
});

export const RoleSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  description: Type.String(),
  permissions: Type.Array(Type.String()),
  mfaRequired: Type.Boolean({
    description:
      'Permissions granted only through such roles need a session signed in with a second factor.',
  }),
  builtin: Type.Boolean({ description: 'Seeded by the platform: never renamed or deleted.' }),
  userCount: Type.Integer({ description: 'Accounts holding the role.' }),
  createdAt: Time,
  updatedAt: Time,
});

export const AuditEventSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  occurredAt: Time,
  action: Type.String(),
  actorId: Nullable(Type.String({ format: 'uuid' })),
  subjectType: Nullable(Type.String()),
  subjectId: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown()),
});
