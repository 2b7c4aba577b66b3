import { defineModule } from '../modules/index.ts';
import { registerFlagRoutes } from './routes.ts';
import { featureFlags, stopFlags } from './runtime.ts';
import { FlagAdminService, FLAGS_ADMIN_PERMISSION } from './service.ts';
import { checkFlagsConfig, FlagsConfig } from './settings.ts';

export {
  BOOLEAN_VARIANTS,
  definitionErrors,
  evaluateFlag,
  inRollout,
  rolloutBucket,
  ROLLOUT_BUCKETS,
} from './definition.ts';
export type {
  EnvironmentRule,
  EnvironmentRules,
  Evaluation,
  FlagDefinition,
  FlagOverride,
  FlagReason,
  FlagType,
  FlagValue,
  Rollout,
} from './definition.ts';
export { FlagCodes } from './errors.ts';
export { DatabaseFlagProvider } from './provider.ts';
export { featureFlags, flagContext, stopFlags } from './runtime.ts';
export type { FeatureFlags, FlagUser } from './runtime.ts';
export { FLAGS_ADMIN_PERMISSION, FlagAdminService } from './service.ts';
export { FlagsConfig, flagSettings } from './settings.ts';
export type { FlagSettings } from './settings.ts';
export { FLAGS_CACHE_TAG, FlagStore } from './store.ts';

/**
 * Feature flags: definitions in the database, evaluated through OpenFeature (this area's
 * provider) per `APP_ENV` and user (overrides, percentage rollouts by a stable hash), cached per
 * process and in the platform's cache with invalidation on every change; the admin API under
 * `/api/v1/admin/flags`. Apps evaluate with `featureFlags(platform).isEnabled(key, user)`.
 */
export const flagsModule = defineModule({
  name: 'flags',
  description: 'Feature flags: per-environment defaults, percentage rollouts, user overrides.',
  // identity: authentication and the permission check of its routes.
  dependsOn: ['identity'],
  config: FlagsConfig,
  checkConfig: checkFlagsConfig,
  tags: [],
  permissions: [
    {
      name: FLAGS_ADMIN_PERMISSION,
      description: 'List, create, change and delete feature flags.',
      roles: ['admin'],
    },
  ],
  routes: (app, { platform }) => {
    registerFlagRoutes(
      app,
      () =>
        new FlagAdminService({
          database: platform.database,
          store: featureFlags(platform).store,
          paging: {
            secret: platform.config.secrets.appSecret,
            estimateAbove: platform.config.database.estimateAbove,
          },
        }),
    );
    return Promise.resolve();
  },
  onStop: ({ platform }) => stopFlags(platform),
});
