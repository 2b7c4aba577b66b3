/**
 * The accounts half of publishing: platform adapters, OAuth connect, encrypted tokens, refresh.
 * (Skeleton: the accounts helper fills every export; the names are the contract with index.ts.)
 */
import type { EventType } from '../../../platform/events/index.ts';
import type { AnyJob } from '../../../platform/jobs/index.ts';
import type { MailTemplate } from '../../../platform/mail/index.ts';
import type { MigrationSet } from '../../../platform/db/index.ts';
import * as accountsCreate from '../migrations/202612070900_publishing_accounts.ts';
import type { ModuleApp, Platform } from '../../../platform/modules/index.ts';
import type {
  PlatformAdapter,
  PlatformId,
  PublishingAccounts,
  PublishingPostHooks,
} from '../platforms/types.ts';
import type { PublishingRuntime } from '../runtime.ts';
import type { PublishingSettings } from '../settings.ts';

export const accountsMigrations: MigrationSet = {
  '202612070900_publishing_accounts': accountsCreate,
};
export const accountEvents: readonly EventType[] = [];
export const accountMailTemplates: readonly MailTemplate[] = [];
export function accountJobs(_settings: PublishingSettings): readonly AnyJob[] {
  return [];
}

/** The adapters of the platforms enabled by the settings. */
export function createAdapters(
  _settings: PublishingSettings,
  _platform: Platform,
): ReadonlyMap<PlatformId, PlatformAdapter> {
  return new Map();
}

export function createAccounts(_deps: {
  platform: Platform;
  settings: PublishingSettings;
  adapters: ReadonlyMap<PlatformId, PlatformAdapter>;
  hooks: PublishingPostHooks;
}): PublishingAccounts {
  const missing = (): never => {
    throw new Error('publishing accounts: not built yet');
  };
  return { ownedBy: missing, credentials: missing, requireReauth: missing };
}

/** `GET /platforms` and the `/accounts` routes. */
export async function registerAccountRoutes(
  _app: ModuleApp,
  _runtime: PublishingRuntime,
): Promise<void> {}
