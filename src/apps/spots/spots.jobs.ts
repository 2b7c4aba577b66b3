import { Type } from 'typebox';
import { withTransaction } from '../../platform/db/index.ts';
import { defineJob } from '../../platform/jobs/index.ts';
import { invalidateSpot } from './spots.cache.ts';
import { recountFavourites } from './spots.repository.ts';

const BATCH = 5_000;

/**
 * Recounts the favourite counters of the spots whose favourites changed since the last run.
 * Favouriting writes only the user's own row and appends a change (see the migration); this job
 * writes the counters: one waiting
 * at a time (singleton key), a few seconds after a change, and every minute as a sweep (a change
 * whose send was merged into a run that had already started is counted by the next one). So a
 * viral spot gets one counter update per run, not one per tap, and no request waits on its row.
 */
export const recountFavouritesJob = defineJob({
  name: 'spots.favourites-recount',
  payload: Type.Object({}),
  options: {
    retries: 5,
    singletonKey: () => 'all',
    cron: { expression: '* * * * *', payload: {} },
  },
  handler: async (_payload, ctx) => {
    let counted = 0;
    let changed = 0;
    for (;;) {
      const batch = await withTransaction(ctx.platform.database.db, (trx) =>
        recountFavourites(trx, BATCH),
      );
      for (const spot of batch.changed) await invalidateSpot(ctx.platform.cache, spot.id, [spot]);
      counted += batch.taken;
      changed += batch.changed.length;
      if (batch.taken < BATCH || ctx.signal.aborted) break;
    }
    return { counted, changed };
  },
});
