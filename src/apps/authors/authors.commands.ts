import { defineCommand, type CommandContext } from '../../platform/realtime/index.ts';
import { AUTHORS_DELETE, AUTHORS_READ, AUTHORS_WRITE } from './authors.routes.ts';
import {
  AuthorListQuery,
  CreateAuthorBody,
  DeleteAuthorPayload,
  GetAuthorPayload,
  UpdateAuthorPayload,
} from './authors.schemas.ts';
import type { Actor, AuthorsService } from './authors.service.ts';

function actorOf(ctx: CommandContext): Actor {
  // The hub answers 401 before the handler when a command needs a user.
  return { userId: ctx.userId ?? '', requestId: ctx.requestId, ip: ctx.ip };
}

/**
 * The same operations as the HTTP routes, as WebSocket commands: the same permissions, the
 * same payload schemas (the body; the path's `id` beside it) and the same service calls.
 */
export function authorsCommands(authors: AuthorsService) {
  return [
    defineCommand({
      name: 'authors.list',
      description: 'A page of authors (the query of `GET /authors` as the payload).',
      permission: AUTHORS_READ,
      payload: AuthorListQuery,
      handle: (payload) => authors.list(payload as Readonly<Record<string, unknown>>),
    }),
    defineCommand({
      name: 'authors.get',
      description: 'One author.',
      permission: AUTHORS_READ,
      payload: GetAuthorPayload,
      handle: (payload) => authors.get(payload.id),
    }),
    defineCommand({
      name: 'authors.create',
      description: 'Creates an author (the body of `POST /authors`).',
      permission: AUTHORS_WRITE,
      payload: CreateAuthorBody,
      handle: (payload, ctx) => authors.create(payload, actorOf(ctx)),
    }),
    defineCommand({
      name: 'authors.update',
      description: 'Changes an author (`id` and the body of `PATCH /authors/:id`).',
      permission: AUTHORS_WRITE,
      payload: UpdateAuthorPayload,
      handle: ({ id, ...patch }, ctx) => authors.update(id, patch, actorOf(ctx)),
    }),
    defineCommand({
      name: 'authors.delete',
      description: 'Deletes an author.',
      permission: AUTHORS_DELETE,
      payload: DeleteAuthorPayload,
      handle: async ({ id }, ctx) => {
        await authors.delete(id, actorOf(ctx));
        return { deleted: id };
      },
    }),
  ];
}
