export { defineJob, InvalidJobPayloadError, DEAD_SUFFIX } from './definition.ts';
export type {
  AnyJob,
  JobContext,
  JobPlatform,
  JobDefinition,
  JobOptions,
  CronSchedule,
} from './definition.ts';
export { JobQueue, JOBS_SCHEMA } from './queue.ts';
export type {
  DeadJob,
  Enqueued,
  EnqueueOptions,
  JobQueueOptions,
  JobState,
  JobStatus,
  QueueCounts,
} from './queue.ts';
export { JobCodes, JOBS_ADMIN_PERMISSION, registerJobRoutes } from './routes.ts';
