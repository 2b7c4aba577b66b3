import { Type } from 'typebox';
import { currentUser } from '../../../platform/identity/index.ts';
import type { ModuleApp } from '../../../platform/modules/index.ts';
import type { FastifyRequest } from 'fastify';
import {
  CalendarQuery,
  CalendarResponse,
  CreatePostBody,
  PostIdParams,
  PostListQuery,
  PostPage,
  PostResponse,
  ScheduleBody,
  TargetIdParams,
  UpdatePostBody,
} from './posts.schemas.ts';
import type { PostWithTargets, TargetRow } from './posts.repository.ts';
import type { PostsService } from './posts.service.ts';
import { localIso } from './posts.time.ts';

const TAG = 'publishing';
const security = [{ bearerAuth: [] }];
const iso = (d: Date | null) => (d === null ? null : d.toISOString());

function targetJson(t: TargetRow) {
  return {
    id: t.id,
    accountId: t.accountId,
    platform: t.platform,
    options: t.options,
    status: t.status,
    attempts: t.attempts,
    nextAttemptAt: t.status === 'scheduled' ? iso(t.dueAt) : null,
    publishedAt: iso(t.publishedAt),
    externalId: t.externalId,
    url: t.externalUrl,
    error: t.error
      ? {
          code: t.error.code,
          message: t.error.message,
          retryable: t.error.retryable,
          action: t.error.action,
        }
      : null,
  };
}

export function postJson(p: PostWithTargets) {
  return {
    id: p.id,
    text: p.text,
    mediaFileIds: p.mediaFileIds,
    status: p.status,
    scheduledAt: iso(p.scheduledAt),
    scheduledAtLocal: p.scheduledAt ? localIso(p.scheduledAt, p.timeZone) : null,
    timeZone: p.timeZone,
    targets: p.targets.map(targetJson),
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

const actor = (request: FastifyRequest) => ({
  userId: currentUser(request).userId,
  requestId: request.id,
});

/** The `/posts` routes (HTTP only: the rules are the service's). */
export async function registerPostsRoutes(app: ModuleApp, posts: PostsService): Promise<void> {
  app.post(
    '/posts',
    {
      config: { idempotency: true },
      schema: {
        tags: [TAG],
        summary: 'Create a post',
        description:
          'One target per account. Without `scheduledAt` the post is a draft; with it, each target’s job is enqueued in the same transaction. Checked against each platform’s rules (422 `POST_CONTENT_REJECTED` with `problems`). Honours `Idempotency-Key`.',
        security,
        body: CreatePostBody,
        response: { 201: PostResponse },
      },
    },
    async (request, reply) => {
      const post = await posts.create(actor(request), request.body);
      return reply
        .code(201)
        .header('location', `${request.url.replace(/\/+$/, '')}/${post.id}`)
        .send(postJson(post));
    },
  );

  app.get(
    '/posts',
    {
      schema: {
        tags: [TAG],
        summary: 'List posts',
        description:
          'The caller’s posts, newest first (keyset pages), each with its targets; filters `status`, `platform`, `account`, `scheduledAt[gte]`, `scheduledAt[lte]`.',
        security,
        querystring: PostListQuery,
        response: { 200: PostPage },
      },
    },
    async (request) => {
      const page = await posts.list(actor(request), request.query);
      return { page: page.page, items: page.items.map(postJson) };
    },
  );

  app.get(
    '/posts/calendar',
    {
      schema: {
        tags: [TAG],
        summary: 'Scheduled posts by day',
        description:
          'Posts scheduled between the local days `from` and `to` in `timeZone` (default: the zone of the caller’s latest post), grouped by local day: days are 23 or 25 hours long across daylight-saving changes.',
        security,
        querystring: CalendarQuery,
        response: { 200: CalendarResponse },
      },
    },
    async (request) => {
      const calendar = await posts.calendar(actor(request), request.query);
      return {
        ...calendar,
        days: calendar.days.map((d) => ({ date: d.date, posts: d.posts.map(postJson) })),
      };
    },
  );

  app.get(
    '/posts/:id',
    {
      schema: {
        tags: [TAG],
        summary: 'Show a post with its targets',
        security,
        params: PostIdParams,
        response: { 200: PostResponse },
      },
    },
    async (request) => postJson(await posts.get(actor(request), request.params.id)),
  );

  app.patch(
    '/posts/:id',
    {
      schema: {
        tags: [TAG],
        summary: 'Change a post',
        description:
          'Text, media, targets (replaced whole), time or zone; a scheduled post is rescheduled atomically (its jobs replaced), `scheduledAt: null` makes it a draft again. 409 once a target is publishing or published.',
        security,
        params: PostIdParams,
        body: UpdatePostBody,
        response: { 200: PostResponse },
      },
    },
    async (request) =>
      postJson(await posts.update(actor(request), request.params.id, request.body)),
  );

  app.delete(
    '/posts/:id',
    {
      schema: {
        tags: [TAG],
        summary: 'Delete a post',
        description:
          'Its waiting targets are cancelled with it; posts already on a platform stay there. 409 while a target is being published.',
        security,
        params: PostIdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await posts.remove(actor(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/posts/:id/schedule',
    {
      schema: {
        tags: [TAG],
        summary: 'Schedule (or reschedule) a post',
        description:
          'Every target not yet published gets a job for `scheduledAt` (default: the post’s time if still ahead); jobs it had are replaced in the same transaction.',
        security,
        params: PostIdParams,
        body: ScheduleBody,
        response: { 200: PostResponse },
      },
    },
    async (request) =>
      postJson(await posts.schedule(actor(request), request.params.id, request.body ?? {})),
  );

  app.post(
    '/posts/:id/cancel',
    {
      schema: {
        tags: [TAG],
        summary: 'Cancel a scheduled post',
        description: 'Its waiting (and paused) targets are cancelled; published ones stay.',
        security,
        params: PostIdParams,
        response: { 200: PostResponse },
      },
    },
    async (request) => postJson(await posts.cancel(actor(request), request.params.id)),
  );

  app.post(
    '/posts/:id/duplicate',
    {
      schema: {
        tags: [TAG],
        summary: 'Duplicate a post as a draft',
        security,
        params: PostIdParams,
        response: { 201: PostResponse },
      },
    },
    async (request, reply) =>
      reply.code(201).send(postJson(await posts.duplicate(actor(request), request.params.id))),
  );

  app.post(
    '/posts/:id/targets/:targetId/retry',
    {
      schema: {
        tags: [TAG],
        summary: 'Retry a failed target',
        description:
          'Checked again (account connected, content valid), then scheduled now (or at the post’s time if still ahead) with fresh attempts. A call whose outcome was unknown is still looked up on the platform first.',
        security,
        params: TargetIdParams,
        response: { 200: PostResponse },
      },
    },
    async (request) =>
      postJson(await posts.retry(actor(request), request.params.id, request.params.targetId)),
  );
}
