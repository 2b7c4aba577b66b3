import type { TSchema } from 'typebox';

/** The accounts half's settings (platform apps, OAuth endpoints, token keys): `PUBLISHING_*`. */
export const accountsConfig = {} satisfies Record<string, TSchema>;
