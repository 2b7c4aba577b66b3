/**
 * The posts half of publishing: posts and targets, scheduling, the publishing pipeline.
 * (Skeleton: the posts helper fills every export; the names are the contract with index.ts.)
 */
import type { MigrationSet } from '../../../platform/db/index.ts';
import type { EventType } from '../../../platform/events/index.ts';
import type {
  FilePurpose,
  ModuleApp,
  ModulePermission,
  Platform,
} from '../../../platform/modules/index.ts';
import type { AnyJob } from '../../../platform/jobs/index.ts';
import type { MailTemplate } from '../../../platform/mail/index.ts';
import type { PublishingPostHooks } from '../platforms/types.ts';
import type { PublishingRuntime } from '../runtime.ts';
import type { PublishingSettings } from '../settings.ts';

export const postsMigrations: MigrationSet = {};
export const postEvents: readonly EventType[] = [];
export const postMailTemplates: readonly MailTemplate[] = [];
export const postPermissions: readonly ModulePermission[] = [];
export const postFilePurposes: readonly FilePurpose[] = [];
export function postJobs(_settings: PublishingSettings): readonly AnyJob[] {
  return [];
}

export function createPostHooks(
  _platform: Platform,
  _settings: PublishingSettings,
): PublishingPostHooks {
  return {
    onReauthRequired: async () => {},
    onReconnected: async () => {},
    onRemoved: async () => {},
  };
}

/** The `/posts` routes. */
export async function registerPostRoutes(
  _app: ModuleApp,
  _runtime: PublishingRuntime,
): Promise<void> {}

/** Called once the app is ready (metrics gauges, recovery of targets left `publishing`). */
export async function startPosts(_runtime: PublishingRuntime): Promise<void> {}
