import { Type } from 'typebox';
import { withTransaction } from '../../platform/db/index.ts';
import { defineJob } from '../../platform/jobs/index.ts';
import { invalidateSpot } from './spots.cache.ts';
import { recountFavourites } from './spots.repository.ts';

/**
 * Recounts one spot's favourites. Favouriting writes only the user's own row; this job, one
 * waiting per spot at a time (singleton key), a few seconds later, writes the counter: a viral
 * spot gets one counter update per delay, not one per tap, and no request waits on its row lock.
 */
export const recountFavouritesJob = defineJob({
  name: 'spots.favourites-recount',
  payload: Type.Object({ spotId: Type.String({ format: 'uuid' }) }),
  options: { retries: 5, singletonKey: (p) => p.spotId, concurrency: 2 },
  handler: async ({ spotId }, ctx) => {
    const result = await withTransaction(ctx.platform.database.db, (trx) =>
      recountFavourites(trx, spotId),
    );
    if (result?.changed) await invalidateSpot(ctx.platform.cache, spotId, [result]);
    return { count: result?.count ?? null };
  },
});
