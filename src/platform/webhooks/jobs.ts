import { Type } from 'typebox';
import { defineJob } from '../jobs/index.ts';
import { strandedMessages } from './delivery.ts';
import { purgeOld } from './repository.ts';
import { webhooksRuntime } from './runtime.ts';
import { webhooksDb } from './tables.ts';

/**
 * Hands one message to this process's deliverer, which claims it and runs the attempt without
 * holding the job (see `Deliverer`). Retries of a failed attempt are new jobs due at the retry
 * time; the job's own retries only cover a failure to claim (the database unavailable).
 */
export const deliverJob = defineJob({
  name: 'webhooks.deliver',
  payload: Type.Object({ messageId: Type.String({ format: 'uuid' }) }),
  options: {
    concurrency: 200,
    batchSize: 100,
    retries: 5,
    backoff: { initialSeconds: 1, maxSeconds: 60 },
    timeoutSeconds: 60,
    keepCompletedSeconds: 3_600,
  },
  handler: async ({ messageId }, ctx) => {
    await webhooksRuntime(ctx.platform).deliverer.deliver(messageId);
  },
});

/**
 * Every minute: wakes due messages nobody is delivering (a worker died holding them, or they
 * waited behind their endpoint's concurrency cap and no slot was freed in this process).
 */
export const sweepJob = defineJob({
  name: 'webhooks.sweep',
  payload: Type.Object({}),
  options: { retries: 0, timeoutSeconds: 60, cron: { expression: '* * * * *', payload: {} } },
  handler: async (_payload, ctx) => {
    const runtime = webhooksRuntime(ctx.platform);
    const ids = await strandedMessages(
      webhooksDb(ctx.platform.database.db),
      runtime.settings.concurrencyPerEndpoint,
      5_000,
    );
    await runtime.wake(ids);
    return { woken: ids.length };
  },
});

/** Daily: deletes delivery logs older than `WEBHOOKS_RETENTION`. */
export const purgeJob = defineJob({
  name: 'webhooks.purge',
  payload: Type.Object({}),
  options: { retries: 2, timeoutSeconds: 3_600, cron: { expression: '23 3 * * *', payload: {} } },
  handler: async (_payload, ctx) => {
    const { settings } = webhooksRuntime(ctx.platform);
    const removed = await purgeOld(webhooksDb(ctx.platform.database.db), settings.retentionS);
    return { removed };
  },
});

export const webhookJobs = [deliverJob, sweepJob, purgeJob];
