import { Type } from 'typebox';
import { recordAudits } from '../../audit/index.ts';
import { withTransaction } from '../../db/index.ts';
import { defineJob } from '../../jobs/index.ts';
import { purgeDeletedUsers } from './repository.ts';

/** Accounts deleted for good per transaction (a large backlog is purged in several). */
const PURGE_BATCH = 500;

/**
 * The daily purge of accounts soft-deleted more than `retentionS` ago (`AUTH_ACCOUNT_RETENTION`):
 * the rows go for good with their tokens, sessions, sign-in and password history (foreign-key
 * cascades); each purge is audited (`user.purge`, the trail keeps only the id). Registered by
 * `main.ts` with the configured retention.
 */
export function purgeDeletedAccountsJob(retentionS: number) {
  return defineJob({
    name: 'identity.account-purge',
    payload: Type.Object({}),
    handler: async (_payload, ctx) => {
      let purged = 0;
      for (;;) {
        if (ctx.signal.aborted) break;
        const ids = await withTransaction(ctx.db, async (trx) => {
          const batch = await purgeDeletedUsers(trx, retentionS, PURGE_BATCH);
          await recordAudits(
            trx,
            batch.map((id) => ({
              action: 'user.purge',
              subjectType: 'user',
              subjectId: id,
              requestId: ctx.requestId,
              data: { retentionSeconds: retentionS },
            })),
          );
          return batch;
        });
        purged += ids.length;
        if (ids.length < PURGE_BATCH) break;
      }
      if (purged > 0) ctx.log.info({ purged }, 'deleted accounts purged after the retention');
      return { purged };
    },
    options: { cron: { expression: '29 4 * * *', payload: {} }, retries: 1 },
  });
}
