import type { AnyDb } from '../../../platform/db/index.ts';
import type { Platform } from '../../../platform/modules/index.ts';
import type { PublishingPostHooks } from '../platforms/types.ts';
import type { PublishingSettings } from '../settings.ts';
import { enqueueTarget } from './publish.ts';
import { postFailed } from './posts.events.ts';
import {
  findPostForPublish,
  postsDb,
  refreshPostStatus,
  targetsOfAccount,
  transitionTarget,
} from './posts.repository.ts';

/**
 * What the accounts half calls, inside its own transaction, when an account changes state. Every
 * change bumps the targets' versions, so the jobs they had enqueued exit when they run.
 */
export function createPostHooks(
  platform: Platform,
  settings: PublishingSettings,
): PublishingPostHooks {
  return {
    async onReauthRequired(trx: AnyDb, accountId: string) {
      const db = postsDb(trx);
      const targets = await targetsOfAccount(db, accountId, ['scheduled']);
      const error = {
        code: 'ACCOUNT_REAUTH_REQUIRED' as const,
        message: 'The account must be reconnected before this post can be published.',
        retryable: true,
        action: 'reconnect_account' as const,
      };
      for (const t of targets) {
        const row = await transitionTarget(db, t.id, t.version, {
          status: 'failed',
          paused: true,
          error,
          jobId: null,
        });
        if (!row) continue;
        await platform.events.publish(trx, postFailed, {
          data: {
            postId: t.postId,
            targetId: t.id,
            accountId,
            platform: t.platform,
            ...error,
            attempts: t.attempts,
          },
          subject: { type: 'publishing_post', id: t.postId },
          actorId: null,
          ownerId: t.userId,
        });
      }
      await refreshPostStatus(
        db,
        targets.map((t) => t.postId),
      );
    },

    async onReconnected(trx: AnyDb, accountId: string) {
      const db = postsDb(trx);
      const now = Date.now();
      const paused = (await targetsOfAccount(db, accountId, ['failed'])).filter((t) => t.paused);
      for (const t of paused) {
        const post = await findPostForPublish(db, t.postId);
        const at = post?.scheduledAt;
        if (post && !post.deleted && at && at.getTime() > now)
          await enqueueTarget(trx, platform, settings, t, at, { paused: false, error: null });
        // Its time has passed: left failed for the owner to retry (or not), no longer paused.
        else await transitionTarget(db, t.id, t.version, { paused: false });
      }
      await refreshPostStatus(
        db,
        paused.map((t) => t.postId),
      );
    },

    async onRemoved(trx: AnyDb, accountId: string) {
      const db = postsDb(trx);
      const targets = (
        await targetsOfAccount(db, accountId, ['draft', 'scheduled', 'failed'])
      ).filter((t) => t.status !== 'failed' || t.paused);
      for (const t of targets)
        await transitionTarget(db, t.id, t.version, {
          status: 'cancelled',
          paused: false,
          jobId: null,
        });
      await refreshPostStatus(
        db,
        targets.map((t) => t.postId),
      );
    },
  };
}
