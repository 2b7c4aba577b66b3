import type { Platform } from '../../platform/modules/index.ts';
import { createAccounts, createAdapters } from './accounts/index.ts';
import { provideRuntimeFactory, type PublishingRuntime } from './context.ts';
import { createPostHooks } from './posts/index.ts';
import type { PublishingSettings } from './settings.ts';

export { publishingRuntime, type PublishingRuntime } from './context.ts';

/** Wires the two halves for one platform: adapters, the posts' hooks, then the accounts. */
function createRuntime(platform: Platform): PublishingRuntime {
  const settings = platform.config.modules.publishing as PublishingSettings;
  const adapters = createAdapters(settings, platform);
  const hooks = createPostHooks(platform, settings);
  const accounts = createAccounts({ platform, settings, adapters, hooks });
  return { platform, settings, adapters, accounts, hooks };
}

provideRuntimeFactory(createRuntime);
