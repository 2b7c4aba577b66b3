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
import { PostCodes as C } from './posts.errors.ts';
import { localIso } from './posts.time.ts';

const TAG = 'publishing';
const security = [{ bearerAuth: [] }];
const config = { auth: 'required' as const };

// The answers of the checks a post goes through (create, change, schedule, retry).
const TIME = [
  C.POST_SCHEDULED_AT_NO_OFFSET,
  C.POST_SCHEDULED_AT_PAST,
  C.POST_SCHEDULED_AT_TOO_FAR,
  C.POST_SCHEDULED_AT_NONEXISTENT,
  C.POST_SCHEDULED_AT_OFFSET_MISMATCH,
  C.POST_TIME_ZONE_INVALID,
];
const CONTENT = [
  C.POST_ACCOUNT_UNKNOWN,
  C.POST_ACCOUNT_REAUTH_REQUIRED,
  C.POST_PLATFORM_DISABLED,
  C.POST_MEDIA_UNKNOWN,
  C.POST_MEDIA_NOT_READY,
  C.POST_CONTENT_REJECTED,
];
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
      config: { ...config, idempotency: true },
      schema: {
        errorCodes: [...CONTENT, ...TIME],
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
        .header('location', `${request.url.split('?')[0] ?? ''}/${post.id}`)
        .send(postJson(post));
    },
  );

  app.get(
    '/posts',
    {
      config,
      schema: {
        errorCodes: ['INVALID_LIST_QUERY', 'INVALID_CURSOR'],
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
      config,
      schema: {
        errorCodes: [C.POST_CALENDAR_RANGE_INVALID, C.POST_TIME_ZONE_INVALID],
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
      config,
      schema: {
        errorCodes: [C.POST_NOT_FOUND],
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
      config,
      schema: {
        errorCodes: [C.POST_NOT_FOUND, C.POST_NOT_SCHEDULABLE, ...CONTENT, ...TIME],
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
      config,
      schema: {
        errorCodes: [C.POST_NOT_FOUND, C.POST_NOT_SCHEDULABLE],
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
      config,
      // No body means `{}`: scheduled again at the post's own time.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        errorCodes: [
          C.POST_NOT_FOUND,
          C.POST_NOT_SCHEDULABLE,
          C.POST_SCHEDULE_MISSING,
          ...CONTENT,
          ...TIME,
        ],
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
      config,
      schema: {
        errorCodes: [C.POST_NOT_FOUND, C.POST_NOT_SCHEDULED],
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
      config: { ...config, idempotency: true },
      schema: {
        errorCodes: [C.POST_NOT_FOUND, ...CONTENT, C.POST_TIME_ZONE_INVALID],
        tags: [TAG],
        summary: 'Duplicate a post as a draft',
        description:
          'A new draft with the same text, media, targets and zone. Honours `Idempotency-Key`.',
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
      config,
      schema: {
        errorCodes: [
          C.POST_NOT_FOUND,
          C.POST_TARGET_NOT_FOUND,
          C.POST_TARGET_NOT_RETRYABLE,
          ...CONTENT,
        ],
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
