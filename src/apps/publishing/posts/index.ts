/**
 * The posts half of publishing: posts and targets, scheduling, the publishing pipeline.
 * The export names are the contract with the app's index.ts and runtime.ts.
 */
import type { MigrationSet } from '../../../platform/db/index.ts';
import type { EventType } from '../../../platform/events/index.ts';
import { defineFilePurpose } from '../../../platform/files/index.ts';
import type {
  FilePurpose,
  ModuleApp,
  ModulePermission,
  Platform,
} from '../../../platform/modules/index.ts';
import type { AnyJob } from '../../../platform/jobs/index.ts';
import type { MailTemplate } from '../../../platform/mail/index.ts';
import * as postsCreate from '../migrations/202612070910_publishing_posts.ts';
import type { PublishingPostHooks } from '../platforms/types.ts';
import type { PublishingRuntime } from '../context.ts';
import type { PublishingSettings } from '../settings.ts';
import { createPostHooks as makeHooks } from './hooks.ts';
import {
  postFailed,
  postPublished,
  postScheduled,
  publishFailedTemplate,
  PUBLISHING_ADMIN,
} from './posts.events.ts';
import { registerPostsRoutes } from './posts.routes.ts';
import { PostsService } from './posts.service.ts';
import { allPostJobs, MEDIA_PURPOSE, metricsOf, sweepExpiredClaims } from './publish.ts';

export const postsMigrations: MigrationSet = {
  '202612070910_publishing_posts': postsCreate,
};
export const postEvents: readonly EventType[] = [postScheduled, postPublished, postFailed];
export const postMailTemplates: readonly MailTemplate[] = [publishFailedTemplate];
export const postPermissions: readonly ModulePermission[] = [
  {
    name: PUBLISHING_ADMIN,
    description: 'See every user’s publishing events (webhooks).',
    roles: ['admin'],
  },
];

/**
 * A post's media: images and videos, stored as sent. `document`, because the files area
 * processes only images and a purpose has one kind: no variants, no metadata stripping, and no
 * dimensions known (null), so aspect-ratio rules are the platform's to check at publish time.
 */
export const mediaPurpose = defineFilePurpose({
  name: MEDIA_PURPOSE,
  description:
    'A post’s image or video, read by its owner and fetched by the platforms through signed URLs.',
  kind: 'document',
  maxBytes: 1024 * 1024 * 1024,
  contentTypes: [
    'image/jpeg',
    'image/png',
    'image/gif',
    'image/webp',
    'video/mp4',
    'video/quicktime',
  ],
  read: 'owner',
});
export const postFilePurposes: readonly FilePurpose[] = [mediaPurpose];

export function postJobs(settings: PublishingSettings): readonly AnyJob[] {
  return allPostJobs(settings);
}

export function createPostHooks(
  platform: Platform,
  settings: PublishingSettings,
): PublishingPostHooks {
  return makeHooks(platform, settings);
}

/** The `/posts` routes. */
export async function registerPostRoutes(
  app: ModuleApp,
  runtime: PublishingRuntime,
): Promise<void> {
  await registerPostsRoutes(app, new PostsService(runtime));
}

/** Called once the app is ready (metrics gauges, recovery of targets left `publishing`). */
export async function startPosts(runtime: PublishingRuntime): Promise<void> {
  metricsOf(runtime);
  if (!runtime.platform.live) return;
  // Claims a dead worker left past their lease: settled now rather than at the next sweep.
  try {
    await sweepExpiredClaims(runtime);
  } catch (error) {
    runtime.platform.logger.warn(
      { err: error },
      'publishing: start-up sweep failed; the cron sweep retries',
    );
  }
}

export { PostsService } from './posts.service.ts';
export { publishTarget, sweepExpiredClaims } from './publish.ts';
