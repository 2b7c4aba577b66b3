import { Type } from 'typebox';
import { defineJob } from '../../jobs/index.ts';
import { identityDb } from '../db.ts';
import { purgeChallenges } from './repository.ts';

/** How long an ended challenge is kept (for a look at a recent sign-in), in seconds. */
const KEEP_S = 3_600;

/**
 * Hourly: sign-in MFA challenges and passkey ceremonies spent or expired over an hour ago are
 * deleted, and SMS codes once they no longer count towards the hourly send limits.
 */
export const purgeMfaChallengesJob = defineJob({
  name: 'identity.mfa-challenge-purge',
  payload: Type.Object({}),
  handler: async (_payload, ctx) => {
    const deleted = await purgeChallenges(identityDb(ctx.db), KEEP_S);
    if (deleted > 0) ctx.log.info({ deleted }, 'ended MFA challenges purged');
    return { deleted };
  },
  options: { cron: { expression: '37 * * * *', payload: {} }, retries: 1 },
});
