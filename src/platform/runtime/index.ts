export { createPlatform } from './platform.ts';
export type { PlatformOptions } from './platform.ts';
export {
  applyPermissions,
  devMailModule,
  enabledModules,
  jobsModule,
  permissionsModule,
  platformModules,
} from './modules.ts';
export { packageVersion } from './version.ts';
