import { Type } from 'typebox';
import { defineJob } from '../jobs/index.ts';
import { strandedMessages } from './delivery.ts';
import { purgeOld } from './repository.ts';
import { deliverJob, webhooksRuntime } from './runtime.ts';
import { webhooksDb } from './tables.ts';

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

export { deliverJob };
export const webhookJobs = [deliverJob, sweepJob, purgeJob];
