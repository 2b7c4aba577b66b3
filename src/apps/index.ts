import type { AppModule } from '../platform/modules/index.ts';
import { authorsApp } from './authors/index.ts';
import { publicDataApp } from './public-data/index.ts';
import { publishingApp } from './publishing/index.ts';
import { shopApp } from './shop/index.ts';
import { spotsApp } from './spots/index.ts';

/** Every app Groundwork ships; `APPS` selects among them (all by default). */
export const allApps: readonly AppModule[] = [
  publishingApp,
  spotsApp,
  shopApp,
  authorsApp,
  publicDataApp,
];
