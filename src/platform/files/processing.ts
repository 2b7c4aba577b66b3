import type { Readable } from 'node:stream';
import { withTransaction } from '../db/index.ts';
import type { JobContext } from '../jobs/index.ts';
import type { Platform } from '../modules/index.ts';
import { objectKey } from '../storage/index.ts';
import { extensionOf } from './detect.ts';
import { fileFailed, fileReady } from './events.ts';
import { ImageProcessingError, processImage } from './images.ts';
import { findFile, finishProcessing, releaseQuota } from './repository.ts';
import { filesRuntime } from './runtime.ts';
import { filesDb, type StoredVariant } from './tables.ts';

/** Reasons a file fails (the four image failures, and the platform giving up on it). */
export type FailureReason =
  'UNSUPPORTED_TYPE' | 'TOO_LARGE' | 'CORRUPT' | 'TOO_MANY_PIXELS' | 'PROCESSING_ERROR';

async function readAll(body: Readable, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > max) {
      body.destroy();
      return null;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Processes one uploaded image: decodes it (with the purpose's pixel and frame limits), stores
 * the stripped, auto-oriented original and every variant, then records `ready` (or `failed` with
 * a reason) and publishes `file.ready` / `file.failed` in the same transaction. The upload (with
 * its metadata) is removed after the commit. Idempotent: a file no longer processing is skipped.
 */
export async function processFile(
  platform: Platform,
  fileId: string,
  ctx: Pick<JobContext, 'signal' | 'attempt' | 'log' | 'requestId'> & { lastAttempt: boolean },
): Promise<{ status: string; reason?: string }> {
  const runtime = filesRuntime(platform);
  const { storage } = platform;
  const db = platform.database.db;
  const started = performance.now();
  const file = await findFile(filesDb(db), fileId);
  if (!file || file.status !== 'processing' || file.uploadKey === null)
    return { status: file?.status ?? 'gone' };
  const purpose = runtime.purposes.get(file.purpose);

  const fail = async (reason: FailureReason): Promise<{ status: string; reason: string }> => {
    await withTransaction(db, async (trx) => {
      const locked = await findFile(filesDb(trx), fileId, { lock: true });
      if (!locked || locked.status !== 'processing') return;
      await finishProcessing(filesDb(trx), fileId, { status: 'failed', reason });
      await releaseQuota(filesDb(trx), locked.ownerId, locked.quotaBytes);
      await platform.events.publish(trx, fileFailed, {
        data: { fileId, purpose: locked.purpose, reason },
        subject: { type: 'file', id: fileId },
        ownerId: locked.ownerId,
        requestId: ctx.requestId,
      });
    });
    if (file.uploadKey !== null) await storage.delete(file.uploadKey);
    runtime.metrics.failures.inc({ reason });
    runtime.metrics.processing.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
    ctx.log.info({ fileId, reason }, 'file processing failed');
    return { status: 'failed', reason };
  };

  if (!purpose?.image) return fail('UNSUPPORTED_TYPE');
  const written: string[] = [];
  try {
    const object = await storage.get(file.uploadKey);
    if (!object) return await fail('PROCESSING_ERROR');
    const input = await readAll(object.body, purpose.maxBytes);
    if (!input) return await fail('TOO_LARGE');
    const result = await processImage(input, {
      variants: purpose.image.variants,
      limits: { maxPixels: purpose.image.maxPixels, maxFrames: purpose.image.maxFrames },
      signal: ctx.signal,
    });
    const originalKey = objectKey(
      'files',
      fileId,
      `original.${extensionOf(result.original.contentType)}`,
    );
    await storage.put(originalKey, result.original.data, {
      contentType: result.original.contentType,
      signal: ctx.signal,
    });
    written.push(originalKey);
    const variants: StoredVariant[] = [];
    for (const v of result.variants) {
      const key = objectKey('files', fileId, `${v.name}.${v.format}`);
      await storage.put(key, v.data, { contentType: v.contentType, signal: ctx.signal });
      written.push(key);
      variants.push({
        name: v.name,
        format: v.format,
        width: v.width,
        height: v.height,
        contentType: v.contentType,
        size: v.data.length,
        key,
      });
    }
    const recorded = await withTransaction(db, async (trx) => {
      const locked = await findFile(filesDb(trx), fileId, { lock: true });
      // Deleted (or settled) while it was processing: what was written goes.
      if (!locked || locked.status !== 'processing') return false;
      await finishProcessing(filesDb(trx), fileId, {
        status: 'ready',
        original: {
          key: originalKey,
          contentType: result.original.contentType,
          size: result.original.data.length,
        },
        width: result.width,
        height: result.height,
        blurhash: result.blurhash,
        variants,
      });
      await platform.events.publish(trx, fileReady, {
        data: {
          fileId,
          purpose: locked.purpose,
          contentType: locked.contentType,
          size: locked.size,
          variants: variants.map((v) => `${v.name}.${v.format}`),
        },
        subject: { type: 'file', id: fileId },
        ownerId: locked.ownerId,
        requestId: ctx.requestId,
      });
      return true;
    });
    if (!recorded) {
      await Promise.all(written.map((k) => storage.delete(k)));
      return { status: 'gone' };
    }
    await storage.delete(file.uploadKey);
    runtime.metrics.processing.observe({ outcome: 'ready' }, (performance.now() - started) / 1000);
    return { status: 'ready' };
  } catch (error) {
    if (error instanceof ImageProcessingError) {
      await Promise.all(written.map((k) => storage.delete(k)));
      return fail(error.code);
    }
    // Storage or database trouble: retried by the queue; the last attempt gives up.
    if (ctx.lastAttempt) {
      await Promise.all(written.map((k) => storage.delete(k).catch(() => undefined)));
      ctx.log.error({ err: error, fileId }, 'file processing gave up');
      return fail('PROCESSING_ERROR');
    }
    throw error;
  }
}
