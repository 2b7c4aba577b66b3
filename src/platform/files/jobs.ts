import { Type } from 'typebox';
import { defineJob, type AnyJob } from '../jobs/index.ts';
import { processFile } from './processing.ts';
import { purgeFiles } from './purge.ts';

const PROCESS_RETRIES = 3;

const processPayload = Type.Object({ fileId: Type.String({ format: 'uuid' }) });

/** The processing job with this many images at once per worker process. */
export function processFileJobWith(concurrency: number) {
  return defineJob({
    name: 'files.process',
    payload: processPayload,
    options: {
      concurrency,
      batchSize: Math.min(concurrency, 100),
      retries: PROCESS_RETRIES,
      backoff: { initialSeconds: 2, maxSeconds: 60 },
      timeoutSeconds: 300,
    },
    handler: ({ fileId }, ctx) =>
      processFile(ctx.platform, fileId, {
        signal: ctx.signal,
        attempt: ctx.attempt,
        log: ctx.log,
        requestId: ctx.requestId,
        lastAttempt: ctx.attempt > PROCESS_RETRIES,
      }),
  });
}

/** `files.process` as enqueued (the queue runs the definition registered with the settings). */
export const processFileJob = processFileJobWith(1);

/**
 * Hourly: removes from storage the files deleted more than `FILES_PURGE_AFTER` ago and uploads
 * never completed that long after their URL expired, then their rows.
 */
export const purgeFilesJob = defineJob({
  name: 'files.purge',
  payload: Type.Object({}),
  options: { retries: 2, timeoutSeconds: 3_600, cron: { expression: '17 * * * *', payload: {} } },
  handler: (_payload, ctx) => purgeFiles(ctx.platform, { signal: ctx.signal }),
});

/** The module's jobs for these settings. */
export function fileJobs(concurrency: number): readonly AnyJob[] {
  return [processFileJobWith(concurrency), purgeFilesJob];
}
