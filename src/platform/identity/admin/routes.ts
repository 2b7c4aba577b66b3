import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { DbCodes, listQuerySchema, pageSchema } from '../../db/index.ts';
import { HttpCodes } from '../../http/index.ts';
import type { Actor, AdminService, RoleView } from './service.ts';
import { adminUsersSpec, auditEventsSpec } from './service.ts';
import { PlatformPermissions as P } from '../rbac/permissions.ts';
import { IdentityCodes } from '../errors.ts';
import { RecoveryCodes } from '../recovery/errors.ts';
import { RoleName, Permissions } from '../rbac/schemas.ts';
import {
  ADMIN_BODY_LIMIT,
  Description,
  IdParams,
  AdminUserSchema,
  RoleSchema,
  AuditEventSchema,
} from './schemas.ts';

/** The documented query of `GET /admin/users`: the spec's filters plus `role`. */
const usersQuerySchema = listQuerySchema({
  ...adminUsersSpec,
  filters: {
    ...adminUsersSpec.filters,
    role: { column: 'role', type: 'string', ops: ['eq'] },
  },
});

const isoOrNull = (d: Date | null) => (d === null ? null : d.toISOString());

/** An account as its response schema has it (the serializer would write the dates alike). */
const userOut = <U extends { lockedUntil: Date | null; createdAt: Date; lastLoginAt: Date | null }>(
  u: U,
) => ({
  ...u,
  lockedUntil: isoOrNull(u.lockedUntil),
  createdAt: u.createdAt.toISOString(),
  lastLoginAt: isoOrNull(u.lastLoginAt),
});

/** A role as its response schema has it. */
const roleOut = (role: RoleView) => ({
  ...role,
  createdAt: role.createdAt.toISOString(),
  updatedAt: role.updatedAt.toISOString(),
});

function actorOf(request: FastifyRequest): Actor {
  return {
    userId: request.userId ?? null,
    amr: request.amr ?? [],
    ip: request.ip,
    requestId: request.id,
  };
}

/** The admin API over accounts, roles and the audit trail (`/api/v1/admin/...`). */
export async function registerAdminRoutes(
  app: FastifyInstance,
  options: { service: () => AdminService },
): Promise<void> {
  const service = options.service;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const common = { tags: ['admin'], security: [{ bearerAuth: [] }] };

  r.get(
    '/admin/users',
    {
      config: { permission: P.USERS_READ, cache: 'private' },
      schema: {
        ...common,
        errorCodes: [DbCodes.INVALID_LIST_QUERY, DbCodes.INVALID_CURSOR],
        summary: 'Accounts, filtered and paginated',
        description:
          'Keyset pagination by default (`limit`, `cursor`), or `page`/`size`. Filters: `email` and `username` (exact or `[contains]`), `role`, `locked`, `createdAt[gte]`/`[lte]`. Needs `users:read`.',
        querystring: usersQuerySchema,
        response: { 200: pageSchema(AdminUserSchema) },
      },
    },
    async (request) => service().listUsers(request.query),
  );

  r.get(
    '/admin/users/:id',
    {
      config: { permission: P.USERS_READ, cache: 'private' },
      schema: {
        ...common,
        errorCodes: [IdentityCodes.USER_NOT_FOUND],
        summary: 'One account',
        params: IdParams,
        response: { 200: AdminUserSchema },
      },
    },
    async (request) => userOut(await service().user(request.params.id)),
  );

  r.patch(
    '/admin/users/:id',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      config: { permission: P.USERS_ADMIN },
      schema: {
        ...common,
        errorCodes: [
          IdentityCodes.USER_NOT_FOUND,
          IdentityCodes.UNKNOWN_ROLE,
          IdentityCodes.CANNOT_LOCK_SELF,
          RecoveryCodes.LAST_ADMIN,
          HttpCodes.FORBIDDEN,
        ],
        summary: "Set an account's roles, lock or unlock it",
        description:
          '`roles` replaces the whole set (and needs `roles:admin` too); `locked: true` locks the account until unlocked and revokes every session at once; `locked: false` unlocks it and clears the lockout counters. Taking `admin` from its last active holder, or locking them, is 409 `LAST_ADMIN`. Needs `users:admin`.',
        params: IdParams,
        body: Type.Object(
          {
            roles: Type.Optional(Type.Array(RoleName, { maxItems: 50 })),
            locked: Type.Optional(Type.Boolean()),
          },
          { minProperties: 1 },
        ),
        response: { 200: AdminUserSchema },
      },
    },
    async (request) =>
      userOut(await service().updateUser(actorOf(request), request.params.id, request.body)),
  );

  r.get(
    '/admin/roles',
    {
      config: { permission: P.ROLES_READ, cache: 'private' },
      schema: {
        ...common,
        summary: 'Every role with its permissions',
        response: { 200: Type.Object({ items: Type.Array(RoleSchema) }) },
      },
    },
    async () => ({ items: (await service().roles()).map(roleOut) }),
  );

  r.post(
    '/admin/roles',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      config: { permission: P.ROLES_ADMIN },
      schema: {
        ...common,
        errorCodes: [IdentityCodes.ROLE_NAME_TAKEN],
        summary: 'Create a role',
        body: Type.Object({
          name: RoleName,
          description: Type.Optional(Description),
          permissions: Permissions,
          mfaRequired: Type.Optional(Type.Boolean({ default: false })),
        }),
        response: { 201: RoleSchema },
      },
    },
    async (request, reply) => {
      const role = await service().createRole(actorOf(request), request.body);
      reply.code(201);
      return roleOut(role);
    },
  );

  r.patch(
    '/admin/roles/:id',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      config: { permission: P.ROLES_ADMIN },
      schema: {
        ...common,
        errorCodes: [
          IdentityCodes.ROLE_NOT_FOUND,
          IdentityCodes.ROLE_BUILTIN,
          IdentityCodes.ROLE_NAME_TAKEN,
        ],
        summary: 'Edit a role',
        description:
          'Built-in roles (`admin`, `moderator`, `user`) keep their names (409 `ROLE_BUILTIN`). Takes effect on the next request of every holder.',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(RoleName),
            description: Type.Optional(Description),
            permissions: Type.Optional(Permissions),
            mfaRequired: Type.Optional(Type.Boolean()),
          },
          { minProperties: 1 },
        ),
        response: { 200: RoleSchema },
      },
    },
    async (request) =>
      roleOut(await service().updateRole(actorOf(request), request.params.id, request.body)),
  );

  r.delete(
    '/admin/roles/:id',
    {
      config: { permission: P.ROLES_ADMIN },
      schema: {
        ...common,
        errorCodes: [
          IdentityCodes.ROLE_NOT_FOUND,
          IdentityCodes.ROLE_BUILTIN,
          IdentityCodes.ROLE_IN_USE,
        ],
        summary: 'Delete a role no account holds',
        description:
          'Refused with 409 for built-in roles (`ROLE_BUILTIN`) and for roles accounts still hold (`ROLE_IN_USE`: remove it from them first).',
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await service().deleteRole(actorOf(request), request.params.id);
      reply.code(204);
      return null;
    },
  );

  r.get(
    '/admin/audit-events',
    {
      config: { permission: P.AUDIT_READ, cache: 'private' },
      schema: {
        ...common,
        errorCodes: [DbCodes.INVALID_LIST_QUERY, DbCodes.INVALID_CURSOR],
        summary: 'The audit trail, newest first',
        description:
          'Filters: `actorId`, `subjectType`, `subjectId`, `action` (or `action[in]`), `occurredAt[gte]`/`[lte]`. Needs `audit:read`.',
        querystring: listQuerySchema(auditEventsSpec),
        response: { 200: pageSchema(AuditEventSchema) },
      },
    },
    async (request) => service().auditEvents(request.query),
  );
}
