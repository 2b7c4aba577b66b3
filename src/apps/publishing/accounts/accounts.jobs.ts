import { Type } from 'typebox';
import { defineJob, type AnyJob } from '../../../platform/jobs/index.ts';
import type { Platform } from '../../../platform/modules/index.ts';
import type { PublishingSettings } from '../settings.ts';
import type { AccountsService } from './accounts.service.ts';

/**
 * The accounts service of a platform, reached from job handlers (which get only the platform):
 * `resolve` builds the publishing runtime when this process has not yet (a worker-only process).
 */
export type ServiceOf = (platform: Platform) => Promise<AccountsService>;

/** Renews tokens before they expire (and purges old connect states). */
export function refreshTokensJob(settings: PublishingSettings, serviceOf: ServiceOf) {
  return defineJob({
    name: 'publishing.refresh-tokens',
    payload: Type.Object({}, { additionalProperties: false }),
    options: {
      retries: 0,
      timeoutSeconds: 600,
      singletonKey: () => 'publishing.refresh-tokens',
      cron: { expression: settings.PUBLISHING_REFRESH_CRON, payload: {} },
    },
    handler: async (_payload, ctx) => (await serviceOf(ctx.platform)).refreshDue(ctx.signal),
  });
}

/**
 * Re-seals tokens sealed under an older key of `PUBLISHING_TOKEN_KEYS` (after putting a new key
 * first): daily, and on demand through the jobs API. Idempotent.
 */
export function rotateTokenKeysJob(serviceOf: ServiceOf) {
  return defineJob({
    name: 'publishing.rotate-token-keys',
    payload: Type.Object({}, { additionalProperties: false }),
    options: {
      retries: 3,
      timeoutSeconds: 3_600,
      singletonKey: () => 'publishing.rotate-token-keys',
      cron: { expression: '17 4 * * *', payload: {} },
    },
    handler: async (_payload, ctx) => ({
      resealed: await (await serviceOf(ctx.platform)).rotateTokenKeys(),
    }),
  });
}

export function jobsOf(settings: PublishingSettings, serviceOf: ServiceOf): readonly AnyJob[] {
  return [refreshTokensJob(settings, serviceOf), rotateTokenKeysJob(serviceOf)];
}
