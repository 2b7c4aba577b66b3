/**
 * The accounts half of publishing: platform adapters, OAuth connect, encrypted tokens, refresh.
 * The export names are the contract with `../index.ts` and `../runtime.ts`.
 */
import type { MigrationSet } from '../../../platform/db/index.ts';
import type { EventType } from '../../../platform/events/index.ts';
import type { AnyJob } from '../../../platform/jobs/index.ts';
import type { MailTemplate } from '../../../platform/mail/index.ts';
import type { ModuleApp, Platform } from '../../../platform/modules/index.ts';
import * as accountsCreate from '../migrations/202612070900_publishing_accounts.ts';
import { buildAdapters } from '../platforms/index.ts';
import type { ConnectableAdapter } from '../platforms/oauth.ts';
import type {
  PlatformAdapter,
  PlatformId,
  PublishingAccounts,
  PublishingPostHooks,
} from '../platforms/types.ts';
import { publishingRuntime, type PublishingRuntime } from '../context.ts';
import type { PublishingSettings } from '../settings.ts';
import { accountReauthRequired } from './accounts.events.ts';
import { jobsOf } from './accounts.jobs.ts';
import { reauthRequiredTemplate } from './accounts.mail.ts';
import { registerAccountRoutesOn } from './accounts.routes.ts';
import { AccountsService } from './accounts.service.ts';

export { AccountsService } from './accounts.service.ts';
export { TokenKeys } from './token-keys.ts';

export const accountsMigrations: MigrationSet = {
  '202612070900_publishing_accounts': accountsCreate,
};
export const accountEvents: readonly EventType[] = [accountReauthRequired];
export const accountMailTemplates: readonly MailTemplate[] = [reauthRequiredTemplate];

/** The adapters and the service of each platform, made once by the runtime. */
const adaptersByPlatform = new WeakMap<Platform, Map<PlatformId, ConnectableAdapter>>();
const services = new WeakMap<Platform, AccountsService>();

/** The accounts service of `platform` (building the publishing runtime when needed). */
export async function accountsServiceOf(platform: Platform): Promise<AccountsService> {
  const existing = services.get(platform);
  if (existing) return existing;
  // A worker-only process has not built the runtime yet (no routes were registered).
  publishingRuntime(platform);
  const made = services.get(platform);
  if (!made) throw new Error('publishing: the accounts service was not built');
  return made;
}

export function accountJobs(settings: PublishingSettings): readonly AnyJob[] {
  return jobsOf(settings, accountsServiceOf);
}

/** The adapters of the platforms enabled by the settings (a client id set). */
export function createAdapters(
  settings: PublishingSettings,
  platform: Platform,
): ReadonlyMap<PlatformId, PlatformAdapter> {
  const adapters = buildAdapters(settings);
  adaptersByPlatform.set(platform, adapters);
  return adapters;
}

export function createAccounts(deps: {
  platform: Platform;
  settings: PublishingSettings;
  adapters: ReadonlyMap<PlatformId, PlatformAdapter>;
  hooks: PublishingPostHooks;
}): PublishingAccounts {
  const adapters = adaptersByPlatform.get(deps.platform) ?? buildAdapters(deps.settings);
  const service = new AccountsService({ ...deps, adapters });
  services.set(deps.platform, service);
  return service;
}

/** `GET /platforms` and the `/accounts` routes. */
export async function registerAccountRoutes(
  app: ModuleApp,
  runtime: PublishingRuntime,
): Promise<void> {
  const service = services.get(runtime.platform) ?? (runtime.accounts as AccountsService);
  registerAccountRoutesOn(
    app,
    service,
    runtime.adapters,
    runtime.settings.PUBLISHING_CONNECT_RETURN_URL,
  );
}
