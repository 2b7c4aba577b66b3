export {
  loadConfig,
  loadProcessConfig,
  maskEnv,
  maskSecret,
  isPlaceholderSecret,
  ConfigError,
  EXIT_CONFIG,
} from './load.ts';
export type { Config, ConfigIssue, LoadOptions } from './load.ts';
export { ConfigSchema, metaOf, APP_ENVS } from './schema.ts';
export type { AppEnv, Env, VarMeta } from './schema.ts';
export { parseDuration } from './load.ts';
export { renderConfigDocs, renderEnvExample } from './docs.ts';
export type { OidcProviderConfig } from './oidc-providers.ts';
export { sliceMeta as configSliceMeta } from './modules.ts';
export type { ConfigSlice } from './modules.ts';
