import { API_PREFIX } from '../../platform/http/index.ts';
import { defineModule } from '../../platform/modules/index.ts';
import {
  accountEvents,
  accountJobs,
  accountMailTemplates,
  accountsMigrations,
  registerAccountRoutes,
} from './accounts/index.ts';
import {
  postEvents,
  postFilePurposes,
  postJobs,
  postMailTemplates,
  postPermissions,
  postsMigrations,
  registerPostRoutes,
  startPosts,
} from './posts/index.ts';
import { TokenKeys } from './accounts/token-keys.ts';
import { publishingRuntime } from './runtime.ts';
import { PublishingConfig, type PublishingSettings } from './settings.ts';

/**
 * Publishing (seed 001): social accounts connected by OAuth, posts scheduled to Instagram,
 * Facebook Pages and YouTube, published once and on time by jobs.
 */
export const publishingApp = defineModule({
  name: 'publishing',
  description:
    'Scheduled social posts: connected Instagram, Facebook Page and YouTube accounts, posts published exactly once.',
  dependsOn: ['identity', 'events', 'files'],
  config: PublishingConfig,
  // The token keys are checked at start, with every other setting (exit 78), not at first use.
  checkConfig: (values) => {
    const setting = values.PUBLISHING_TOKEN_KEYS;
    if (setting.trim() === '') return [];
    const kids = setting.split(',').map((entry) => entry.slice(0, entry.indexOf(':')));
    if (new Set(kids).size !== kids.length)
      return [{ key: 'PUBLISHING_TOKEN_KEYS', message: 'a key id is listed twice' }];
    try {
      TokenKeys.fromSettings(setting, '');
      return [];
    } catch {
      return [{ key: 'PUBLISHING_TOKEN_KEYS', message: 'every key must be 32 bytes (base64)' }];
    }
  },
  prefix: `${API_PREFIX}/publishing`,
  migrations: { ...accountsMigrations, ...postsMigrations },
  permissions: postPermissions,
  events: [...accountEvents, ...postEvents],
  mailTemplates: [...accountMailTemplates, ...postMailTemplates],
  filePurposes: postFilePurposes,
  jobs: ({ config }) => [...accountJobs(config), ...postJobs(config)],
  routes: async (app, { platform }) => {
    const runtime = publishingRuntime(platform);
    await registerAccountRoutes(app, runtime);
    await registerPostRoutes(app, runtime);
  },
  onStart: async ({ platform }) => startPosts(publishingRuntime(platform)),
});

export type { PublishingSettings };
