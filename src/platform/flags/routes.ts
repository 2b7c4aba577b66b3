import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { DbCodes } from '../db/index.ts';
import type { ModuleApp } from '../modules/index.ts';
import { FlagCodes } from './errors.ts';
import type { FlagRow } from './repository.ts';
import {
  CreateFlagBody,
  FLAGS_BODY_LIMIT,
  FlagKeyParams,
  FlagListQuery,
  FlagPage,
  FlagResponse,
  UpdateFlagBody,
} from './schemas.ts';
import { FLAGS_ADMIN_PERMISSION, type FlagActor, type FlagAdminService } from './service.ts';

const common = { tags: ['admin'], security: [{ bearerAuth: [] }] };

function actorOf(request: FastifyRequest): FlagActor {
  return { userId: request.userId ?? null, ip: request.ip, requestId: request.id };
}

function flagJson(row: FlagRow): FlagResponse {
  return {
    key: row.key,
    description: row.description,
    type: row.type,
    enabled: row.enabled,
    variants: row.variants,
    defaultVariant: row.defaultVariant,
    environments: row.environments,
    overrides: row.overrides,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

/** The admin API over feature flags (`/api/v1/admin/flags`); every route needs `flags:admin`. */
export function registerFlagRoutes(app: ModuleApp, service: () => FlagAdminService): void {
  const config = { permission: FLAGS_ADMIN_PERMISSION };

  app.get(
    '/admin/flags',
    {
      config: { ...config, cache: 'private' },
      schema: {
        ...common,
        errorCodes: [DbCodes.INVALID_LIST_QUERY, DbCodes.INVALID_CURSOR],
        summary: 'Feature flags',
        description:
          'Every flag with its definition, by key (or `sort=-updatedAt`), keyset pagination; filters `enabled`, `type`. Needs `flags:admin`.',
        querystring: FlagListQuery,
        response: { 200: FlagPage },
      },
    },
    async (request) => {
      const page = await service().list(request.query);
      return { page: page.page, items: page.items.map(flagJson) };
    },
  );

  app.get(
    '/admin/flags/:key',
    {
      config: { ...config, cache: 'private' },
      schema: {
        ...common,
        errorCodes: [FlagCodes.FLAG_NOT_FOUND],
        summary: 'One feature flag',
        params: FlagKeyParams,
        response: { 200: FlagResponse },
      },
    },
    async (request) => flagJson(await service().get(request.params.key)),
  );

  app.post(
    '/admin/flags',
    {
      bodyLimit: FLAGS_BODY_LIMIT,
      config,
      schema: {
        ...common,
        errorCodes: [FlagCodes.FLAG_KEY_TAKEN, FlagCodes.FLAG_DEFINITION_INVALID],
        summary: 'Create a feature flag',
        description:
          'A boolean flag needs only its `key` (variants `on`/`off`, default `off`); other types name their `variants` and `defaultVariant`. 409 `FLAG_KEY_TAKEN` when the key exists; 422 `FLAG_DEFINITION_INVALID` when a variant named is missing, a value is not of the type, or an environment is unknown. Visible to every process within `FLAGS_LOCAL_TTL_MS`. Audited (`admin.flag.create`).',
        body: CreateFlagBody,
        response: { 201: FlagResponse },
      },
    },
    async (request, reply) => {
      const row = await service().create(actorOf(request), request.body);
      return reply.code(201).send(flagJson(row));
    },
  );

  app.patch(
    '/admin/flags/:key',
    {
      bodyLimit: FLAGS_BODY_LIMIT,
      config,
      schema: {
        ...common,
        errorCodes: [FlagCodes.FLAG_NOT_FOUND, FlagCodes.FLAG_DEFINITION_INVALID],
        summary: 'Change a feature flag',
        description:
          'Each field given replaces the stored one whole. The result is checked as a whole (422 `FLAG_DEFINITION_INVALID`). Audited (`admin.flag.update`, with the changes).',
        params: FlagKeyParams,
        body: UpdateFlagBody,
        response: { 200: FlagResponse },
      },
    },
    async (request) =>
      flagJson(await service().update(actorOf(request), request.params.key, request.body)),
  );

  app.delete(
    '/admin/flags/:key',
    {
      config,
      schema: {
        ...common,
        errorCodes: [FlagCodes.FLAG_NOT_FOUND],
        summary: 'Delete a feature flag',
        description:
          'Evaluations of the key then answer the caller’s default (`FLAG_NOT_FOUND`). Audited (`admin.flag.delete`, with the definition).',
        params: FlagKeyParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await service().remove(actorOf(request), request.params.key);
      reply.code(204);
      return null;
    },
  );
}
