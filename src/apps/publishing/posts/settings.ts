import type { TSchema } from 'typebox';

/** The posts half's settings (queues, retries, quotas): `PUBLISHING_*`. */
export const postsConfig = {} satisfies Record<string, TSchema>;
