import { Type } from 'typebox';
import { defineJob } from '../../jobs/index.ts';
import { purgeOidcStates } from './repository.ts';

/** Hourly: authorization requests that ended (expired or spent) over a day ago are deleted. */
export const purgeOidcStatesJob = defineJob({
  name: 'platform.oidc-state-purge',
  payload: Type.Object({}),
  handler: async (_payload, ctx) => {
    const deleted = await purgeOidcStates(ctx.db);
    if (deleted > 0) ctx.log.info({ deleted }, 'ended OIDC authorization requests purged');
    return { deleted };
  },
  options: { cron: { expression: '23 * * * *', payload: {} }, retries: 1 },
});
