import { withTransaction } from '../db/index.ts';
import type { Platform } from '../modules/index.ts';
import {
  deleteFiles,
  existingFileIds,
  deleteUploads,
  purgeableFiles,
  purgeableUploads,
  releaseQuota,
} from './repository.ts';
import { filesRuntime } from './runtime.ts';
import { filesDb } from './tables.ts';

const BATCH = 200;
/** How far before the grace limit the storage sweep looks (it runs hourly: a day overlaps). */
const SWEEP_WINDOW_MS = 86_400_000;

/** The first 48 bits of a UUID v7 made at `ms`, as its key text starts (`xxxxxxxx-xxxx`). */
function uuidV7Prefix(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}`;
}

/** The time a UUID v7 was made, or null for another id. */
function uuidV7Time(id: string): number | null {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-7/.exec(id);
  return m ? parseInt(`${m[1] ?? ''}${m[2] ?? ''}`, 16) : null;
}

/**
 * Objects under `files/` that no file or upload row knows (a process that died between storing
 * and recording), made in the day before the grace limit: ids are UUID v7, so keys list in time
 * order and only that window is read. Removed.
 */
async function sweepStorage(
  platform: Platform,
  olderThan: Date,
  signal: AbortSignal | undefined,
): Promise<number> {
  const db = filesDb(platform.database.db);
  const end = olderThan.getTime();
  let after = `files/${uuidV7Prefix(end - SWEEP_WINDOW_MS)}`;
  let removed = 0;
  for (let page = 0; page < 100 && !signal?.aborted; page++) {
    const objects = await platform.storage.list('files/', { limit: 1_000, after });
    const last = objects.at(-1);
    if (!last) break;
    after = last.key;
    const byId = new Map<string, string[]>();
    let done = false;
    for (const o of objects) {
      const id = o.key.split('/')[1] ?? '';
      const made = uuidV7Time(id);
      if (made === null) continue;
      if (made >= end) {
        done = true;
        break;
      }
      byId.set(id, [...(byId.get(id) ?? []), o.key]);
    }
    const known = await existingFileIds(db, [...byId.keys()]);
    for (const [id, keys] of byId) {
      if (known.has(id)) continue;
      await Promise.all(keys.map((k) => platform.storage.delete(k)));
      removed += keys.length;
    }
    if (done || objects.length < 1_000) break;
  }
  return removed;
}

/**
 * Purges what is past the grace period: the objects of soft-deleted files (then their rows),
 * uploads never completed (their object if any, their quota reservation, their row), rows of
 * settled uploads, and objects no row knows. Objects go before rows, so a crash in between leaves a row to retry, never an
 * object nobody knows of.
 */
export async function purgeFiles(
  platform: Platform,
  options: { signal?: AbortSignal; now?: Date } = {},
): Promise<{ files: number; uploads: number; orphanObjects: number }> {
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
      // Never completed: its object (if the client sent one), then its reservation and its row
      // together (a crash in between cannot give the reservation back twice).
      await platform.storage.delete(u.key);
      await withTransaction(platform.database.db, async (trx) => {
        await releaseQuota(filesDb(trx), u.ownerId, u.size);
        await deleteUploads(filesDb(trx), [u.id]);
      });
    }
    await deleteUploads(
      db,
      batch.filter((u) => u.state !== 'pending').map((u) => u.id),
    );
    uploads += batch.filter((u) => u.state === 'pending').length;
    if (batch.length < BATCH) break;
  }
  const orphanObjects = await sweepStorage(platform, olderThan, options.signal);
  return { files, uploads, orphanObjects };
}
