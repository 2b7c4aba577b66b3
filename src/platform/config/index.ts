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
export {
  ConfigSchema,
  metaOf,
  APP_ENVS,
  v as configVar,
  duration as configDuration,
  ms as configMilliseconds,
  deployed as DEPLOYED_ENVS,
} from './schema.ts';
export type { AppEnv, Env, VarMeta } from './schema.ts';
export { parseDuration } from './load.ts';
export { renderConfigDocs, renderEnvExample } from './docs.ts';
export { sliceMeta as configSliceMeta } from './modules.ts';
export type { ConfigSlice, SliceContext } from './modules.ts';
