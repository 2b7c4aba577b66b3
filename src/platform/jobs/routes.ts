import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { DbCodes, decodeCursor, encodeCursor, pageSchema } from '../db/index.ts';
import { HttpCodes, HttpError, defineErrorCodes } from '../http/index.ts';
import type { JobQueue } from './queue.ts';

export const JobCodes = defineErrorCodes('jobs', {
  JOB_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Job not found',
    description:
      'No job with this id was triggered by the caller (unknown ids and other users’ jobs look the same).',
  },
  QUEUE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Queue not found',
    description: 'No job queue has this name.',
  },
  DEAD_JOB_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Dead letter not found',
    description:
      'The queue holds no dead-lettered job with this id (replayed or deleted already?).',
  },
});

const StateSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('active'),
  Type.Literal('retrying'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);

const JobStatusSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  queue: Type.String(),
  state: StateSchema,
  attempts: Type.Integer({ description: 'Attempts started so far.' }),
  maxAttempts: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  startAfter: Type.String({ format: 'date-time' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  result: Type.Optional(Type.Unknown({ description: 'What the job returned, once completed.' })),
  error: Type.Optional(
    Type.Object(
      { message: Type.String() },
      { description: 'The last failure, while retrying or once failed.' },
    ),
  ),
});

const QueueCountsSchema = Type.Object({
  queue: Type.String(),
  queued: Type.Integer(),
  retrying: Type.Integer(),
  active: Type.Integer(),
  failed: Type.Integer(),
  dead: Type.Integer(),
  oldestWaitingSeconds: Type.Number(),
});

const DeadJobSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  queue: Type.String(),
  originalId: Type.Union([Type.String(), Type.Null()]),
  deadAt: Type.String({ format: 'date-time' }),
  originalCreatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  attempts: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([
    Type.Object({
      name: Type.Optional(Type.String()),
      message: Type.String(),
      stack: Type.Optional(Type.String()),
    }),
    Type.Null(),
  ]),
  payload: Type.Unknown(),
  userId: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
});

const QueueParams = Type.Object({ queue: Type.String({ minLength: 1, maxLength: 200 }) });
const DeadParams = Type.Object({
  queue: Type.String({ minLength: 1, maxLength: 200 }),
  id: Type.String({ minLength: 1, maxLength: 100 }),
});

/**
 * The permission of the admin API over queues. Enforced by the identity area's check on routes
 * declaring `config.permission` (the platform's jobs area does not import identity: identity
 * depends on mail, which depends on jobs).
 */
export const JOBS_ADMIN_PERMISSION = 'jobs:admin';

const DEAD_SIGNATURE = 'dead:created_on desc,id desc';

/** `GET /jobs/:id` for the triggering user, and the admin API over queues and dead letters. */
export async function registerJobRoutes(
  app: FastifyInstance,
  options: { jobs: JobQueue; cursorSecret: string },
): Promise<void> {
  const { jobs, cursorSecret } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        errorCodes: [JobCodes.JOB_NOT_FOUND],
        summary: 'Status of a job you triggered',
        description:
          'State, attempts, timestamps, and the result or last error. Another user’s job and an unknown id are both 404.',
        security: [{ bearerAuth: [] }],
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: JobStatusSchema },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (request.userId === undefined) {
        throw new HttpError(HttpCodes.UNAUTHORIZED, {
          detail: 'Sign in to see the status of your jobs.',
        });
      }
      const status = await jobs.status(id, request.userId);
      if (!status) throw new HttpError(JobCodes.JOB_NOT_FOUND);
      return status;
    },
  );

  await app.register(async (scope) => {
    const admin = scope.withTypeProvider<TypeBoxTypeProvider>();
    const common = { tags: ['admin'], security: [{ bearerAuth: [] }] };
    const config = { permission: JOBS_ADMIN_PERMISSION };
    const queueOf = (queue: string) => {
      if (!jobs.hasQueue(queue)) throw new HttpError(JobCodes.QUEUE_NOT_FOUND);
      return queue;
    };

    admin.get(
      '/admin/queues',
      {
        config,
        schema: {
          ...common,
          summary: 'Job queues with their counts',
          description:
            'Per queue: jobs waiting, retrying, running, failed and dead-lettered, and how long the oldest due job has waited.',
          response: { 200: Type.Object({ items: Type.Array(QueueCountsSchema) }) },
        },
      },
      async () => ({ items: await jobs.counts() }),
    );

    admin.get(
      '/admin/queues/:queue/dead',
      {
        config,
        schema: {
          ...common,
          errorCodes: [JobCodes.QUEUE_NOT_FOUND, DbCodes.INVALID_CURSOR],
          summary: 'Dead-lettered jobs of a queue, newest first',
          params: QueueParams,
          querystring: Type.Object({
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ maxLength: 2048 })),
          }),
          response: { 200: pageSchema(DeadJobSchema) },
        },
      },
      async (request) => {
        const queue = queueOf(request.params.queue);
        const { limit, cursor } = request.query;
        let after: { deadAt: string; id: string } | undefined;
        if (cursor !== undefined) {
          const [deadAt, id] = decodeCursor(cursorSecret, `${DEAD_SIGNATURE}:${queue}`, cursor, 2);
          after = { deadAt: String(deadAt), id: String(id) };
        }
        const rows = await jobs.listDead(queue, limit + 1, after);
        const hasMore = rows.length > limit;
        const items = rows.slice(0, limit);
        const last = items.at(-1);
        return {
          items,
          page: {
            limit,
            hasMore,
            nextCursor:
              hasMore && last
                ? encodeCursor(cursorSecret, `${DEAD_SIGNATURE}:${queue}`, [last.deadAt, last.id])
                : null,
          },
        };
      },
    );

    admin.get(
      '/admin/queues/:queue/dead/:id',
      {
        config,
        schema: {
          ...common,
          errorCodes: [JobCodes.QUEUE_NOT_FOUND, JobCodes.DEAD_JOB_NOT_FOUND],
          summary: 'One dead-lettered job: payload, error with stack, attempts',
          params: DeadParams,
          response: { 200: DeadJobSchema },
        },
      },
      async (request) => {
        const { queue, id } = request.params;
        const dead = await jobs.getDead(queueOf(queue), id);
        if (!dead) throw new HttpError(JobCodes.DEAD_JOB_NOT_FOUND);
        return dead;
      },
    );

    admin.post(
      '/admin/queues/:queue/dead/:id/replay',
      {
        config,
        schema: {
          ...common,
          errorCodes: [JobCodes.QUEUE_NOT_FOUND, JobCodes.DEAD_JOB_NOT_FOUND],
          summary: 'Replay a dead-lettered job',
          description:
            'Enqueues its payload again as a new job with fresh attempts and removes the dead letter, atomically.',
          params: DeadParams,
          response: { 202: Type.Object({ jobId: Type.String({ format: 'uuid' }) }) },
        },
      },
      async (request, reply) => {
        const { queue, id } = request.params;
        const replayed = await jobs.replayDead(queueOf(queue), id);
        if (!replayed) throw new HttpError(JobCodes.DEAD_JOB_NOT_FOUND);
        request.log.info({ queue, deadJobId: id, jobId: replayed.id }, 'dead letter replayed');
        reply.code(202);
        return { jobId: replayed.id };
      },
    );

    admin.delete(
      '/admin/queues/:queue/dead/:id',
      {
        config,
        schema: {
          ...common,
          errorCodes: [JobCodes.QUEUE_NOT_FOUND, JobCodes.DEAD_JOB_NOT_FOUND],
          summary: 'Delete a dead-lettered job',
          params: DeadParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { queue, id } = request.params;
        if (!(await jobs.deleteDead(queueOf(queue), id)))
          throw new HttpError(JobCodes.DEAD_JOB_NOT_FOUND);
        request.log.info({ queue, deadJobId: id }, 'dead letter deleted');
        reply.code(204);
        return null;
      },
    );
  });
}
