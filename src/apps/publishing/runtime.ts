import type { Platform } from '../../platform/modules/index.ts';
import { createAccounts, createAdapters } from './accounts/index.ts';
import type {
  PlatformAdapter,
  PlatformId,
  PublishingAccounts,
  PublishingPostHooks,
} from './platforms/types.ts';
import { createPostHooks } from './posts/index.ts';
import type { PublishingSettings } from './settings.ts';

/** The publishing app's services for one platform: made once, shared by routes and jobs. */
export interface PublishingRuntime {
  readonly platform: Platform;
  readonly settings: PublishingSettings;
  /** The enabled platforms' adapters. */
  readonly adapters: ReadonlyMap<PlatformId, PlatformAdapter>;
  readonly accounts: PublishingAccounts;
  readonly hooks: PublishingPostHooks;
}

const runtimes = new WeakMap<Platform, PublishingRuntime>();

/** The runtime of `platform` (routes and job handlers alike reach it from `platform`). */
export function publishingRuntime(platform: Platform): PublishingRuntime {
  const existing = runtimes.get(platform);
  if (existing) return existing;
  const settings = platform.config.modules.publishing as PublishingSettings;
  const adapters = createAdapters(settings, platform);
  const hooks = createPostHooks(platform, settings);
  const accounts = createAccounts({ platform, settings, adapters, hooks });
  const runtime: PublishingRuntime = { platform, settings, adapters, accounts, hooks };
  runtimes.set(platform, runtime);
  return runtime;
}
