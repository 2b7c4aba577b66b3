import type { Platform } from '../modules/index.ts';
import {
  deleteFiles,
  deleteUploads,
  purgeableFiles,
  purgeableUploads,
  releaseQuota,
} from './repository.ts';
import { filesRuntime } from './runtime.ts';
import { filesDb } from './tables.ts';

const BATCH = 200;

/**
 * Purges what is past the grace period: the objects of soft-deleted files (then their rows),
 * uploads never completed (their object if any, their quota reservation, their row), and rows of
 * settled uploads. Objects go before rows, so a crash in between leaves a row to retry, never an
 * object nobody knows of.
 */
export async function purgeFiles(
  platform: Platform,
  options: { signal?: AbortSignal; now?: Date } = {},
): Promise<{ files: number; uploads: number }> {
  const { settings } = filesRuntime(platform);
  const db = filesDb(platform.database.db);
  const olderThan = new Date((options.now ?? new Date()).getTime() - settings.purgeAfterS * 1000);
  let files = 0;
  let uploads = 0;
  for (;;) {
    if (options.signal?.aborted) break;
    const batch = await purgeableFiles(db, olderThan, BATCH);
    if (batch.length === 0) break;
    for (const f of batch) await Promise.all(f.keys.map((k) => platform.storage.delete(k)));
    await deleteFiles(
      db,
      batch.map((f) => f.id),
    );
    files += batch.length;
    if (batch.length < BATCH) break;
  }
  for (;;) {
    if (options.signal?.aborted) break;
    const batch = await purgeableUploads(db, olderThan, BATCH);
    if (batch.length === 0) break;
    for (const u of batch) {
      if (u.state !== 'pending') continue;
      // Never completed: its object (if the client sent one) and its reservation go.
      await platform.storage.delete(u.key);
      await releaseQuota(db, u.ownerId, u.size);
    }
    await deleteUploads(
      db,
      batch.map((u) => u.id),
    );
    uploads += batch.filter((u) => u.state === 'pending').length;
    if (batch.length < BATCH) break;
  }
  return { files, uploads };
}
