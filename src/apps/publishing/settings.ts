import { Type, type Static } from 'typebox';
import { accountsConfig } from './accounts/settings.ts';
import { postsConfig } from './posts/settings.ts';

/** Every `PUBLISHING_*` setting: the accounts half's (platforms, OAuth, tokens) and the posts half's. */
export const PublishingConfig = Type.Object({ ...accountsConfig, ...postsConfig });
export type PublishingSettings = Static<typeof PublishingConfig>;
