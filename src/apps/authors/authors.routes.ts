import type { DescMessage } from '@bufbuild/protobuf';
import { Type } from 'typebox';
import { currentUser } from '../../platform/identity/index.ts';
import type { ModuleApp } from '../../platform/modules/index.ts';
import { BOTH_MEDIA_TYPES, registerProtobuf } from '../../platform/protobuf/index.ts';
import { AuthorsCodes } from './authors.errors.ts';
import {
  AuthorListQuery,
  AuthorPage,
  AuthorParams,
  AuthorResponse,
  CreateAuthorBody,
  UpdateAuthorBody,
} from './authors.schemas.ts';
import type { Actor, AuthorsService } from './authors.service.ts';

export const AUTHORS_READ = 'authors:read';
export const AUTHORS_WRITE = 'authors:write';
export const AUTHORS_DELETE = 'authors:delete';

const security = [{ bearerAuth: [] }];
const tags = ['authors'];

function actorOf(request: Parameters<typeof currentUser>[0]): Actor {
  return { userId: currentUser(request).userId, requestId: request.id, ip: request.ip };
}

/** HTTP only: schemas in, a service call, schemas out (the WebSocket commands call the same). */
export async function registerAuthorsRoutes(
  app: ModuleApp,
  authors: AuthorsService,
  protobuf: { author: DescMessage; page: DescMessage; create: DescMessage },
): Promise<void> {
  registerProtobuf(app);
  app.get(
    '',
    {
      config: { permission: AUTHORS_READ, protobuf: { response: protobuf.page } },
      schema: {
        tags,
        summary: 'List authors',
        description:
          'Newest first by default (`sort=name` by name); `q` searches name and bio. Keyset pages joined by `cursor`. JSON, or Protobuf (`groundwork.authors.v1.AuthorPage`) with `Accept: application/x-protobuf`.',
        security,
        querystring: AuthorListQuery,
        produces: BOTH_MEDIA_TYPES,
        response: { 200: AuthorPage },
      },
    },
    (request) => authors.list(request.query),
  );

  app.post(
    '',
    {
      config: {
        permission: AUTHORS_WRITE,
        protobuf: { body: protobuf.create, response: protobuf.author },
      },
      schema: {
        tags,
        summary: 'Create an author',
        description:
          'Body as JSON, or Protobuf (`groundwork.authors.v1.CreateAuthor`, `Content-Type: application/x-protobuf`). Audited; emits `authors.author.created` to the `authors` channel.',
        security,
        body: CreateAuthorBody,
        consumes: BOTH_MEDIA_TYPES,
        produces: BOTH_MEDIA_TYPES,
        response: { 201: AuthorResponse },
        errorCodes: [AuthorsCodes.AUTHOR_AVATAR_NOT_FOUND, AuthorsCodes.AUTHOR_BIRTH_DATE_INVALID],
      },
    },
    async (request, reply) =>
      reply.code(201).send(await authors.create(request.body, actorOf(request))),
  );

  app.get(
    '/:id',
    {
      config: { permission: AUTHORS_READ, protobuf: { response: protobuf.author } },
      schema: {
        tags,
        summary: 'Show an author',
        security,
        params: AuthorParams,
        produces: BOTH_MEDIA_TYPES,
        response: { 200: AuthorResponse },
      },
    },
    (request) => authors.get(request.params.id),
  );

  app.patch(
    '/:id',
    {
      config: { permission: AUTHORS_WRITE, protobuf: { response: protobuf.author } },
      schema: {
        tags,
        summary: 'Change an author',
        description:
          'A merge patch: absent fields stay, `null` clears. Audited with the changed fields; emits `authors.author.updated`.',
        security,
        params: AuthorParams,
        body: UpdateAuthorBody,
        produces: BOTH_MEDIA_TYPES,
        response: { 200: AuthorResponse },
        errorCodes: [AuthorsCodes.AUTHOR_AVATAR_NOT_FOUND, AuthorsCodes.AUTHOR_BIRTH_DATE_INVALID],
      },
    },
    (request) => authors.update(request.params.id, request.body, actorOf(request)),
  );

  app.delete(
    '/:id',
    {
      config: { permission: AUTHORS_DELETE },
      schema: {
        tags,
        summary: 'Delete an author',
        description: 'Audited; emits `authors.author.deleted`.',
        security,
        params: AuthorParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await authors.delete(request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );
  return Promise.resolve();
}
