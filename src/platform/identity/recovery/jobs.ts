import { Type } from 'typebox';
import { defineJob, type JobContext } from '../../jobs/index.ts';
import type { RecoveryService } from './service.ts';

/**
 * Every minute: the recoveries whose waiting period has passed remove the account's second
 * factors. `resolve` gives the platform's recovery service (built by the identity module, in a
 * worker process too).
 */
export function completeRecoveriesJob(
  resolve: (ctx: JobContext) => Promise<RecoveryService | null>,
) {
  return defineJob({
    name: 'platform.mfa-recovery-complete',
    payload: Type.Object({}),
    handler: async (_payload, ctx) => {
      const service = await resolve(ctx);
      if (!service) return { completed: 0 };
      const completed = await service.completeDue();
      if (completed > 0) ctx.log.info({ completed }, 'lost-device recoveries completed');
      return { completed };
    },
    options: { cron: { expression: '* * * * *', payload: {} }, retries: 1 },
  });
}
