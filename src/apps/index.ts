import type { AppModule } from '../platform/modules/index.ts';

/** Every app Groundwork ships; `APPS` selects among them. Each app issue adds its module here. */
export const allApps: readonly AppModule[] = [];
