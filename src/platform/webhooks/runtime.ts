import { Type } from 'typebox';
import type { AnyDb } from '../db/index.ts';
import { defineJob } from '../jobs/index.ts';
import { accountContact } from '../identity/index.ts';
import type { Platform } from '../modules/index.ts';
import type { WebhooksConfig } from './settings.ts';
import { webhookSettings, type WebhookSettings } from './settings.ts';
import { SealedBox } from '../encoding/index.ts';
import { webhookMetrics, type WebhookMetrics } from './metrics.ts';
import { Deliverer } from './delivery.ts';
import { endpointDisabledTemplate } from './mail.ts';
import { attemptDelivery, createDeliveryAgent, type DeliveryAgent } from './transport.ts';

/** What the webhooks area keeps per platform (one per process): settings, keys, the deliverer. */
export interface WebhooksRuntime {
  readonly settings: WebhookSettings;
  readonly box: SealedBox;
  readonly metrics: WebhookMetrics;
  readonly agent: DeliveryAgent;
  readonly deliverer: Deliverer;
  /** Enqueues delivery jobs for these messages (inside `trx` when given). */
  wake(ids: readonly string[], options?: { startAfter?: Date; trx?: AnyDb }): Promise<void>;
}

const runtimes = new WeakMap<Platform, WebhooksRuntime>();

/** The module's settings slice of this platform's configuration. */
export function settingsOf(platform: Platform): WebhookSettings {
  const slice = platform.config.modules.webhooks as WebhooksConfig | undefined;
  if (!slice) throw new Error('the webhooks module is not enabled in this configuration');
  return webhookSettings(platform.config, slice);
}

/** The owner's address for the disabled-endpoint mail, asked of identity. */
async function ownerEmail(platform: Platform, userId: string): Promise<string | null> {
  return (await accountContact(platform.database.db, userId))?.email ?? null;
}

/** The webhooks runtime of a platform, made at first use. */
export function webhooksRuntime(platform: Platform): WebhooksRuntime {
  const existing = runtimes.get(platform);
  if (existing) return existing;
  const settings = settingsOf(platform);
  const box = new SealedBox(platform.config.secrets.appSecret, 'webhook secrets');
  const metrics = webhookMetrics(platform.metrics);
  const agent = createDeliveryAgent({ connectionsPerPool: settings.concurrencyPerEndpoint });
  const log = platform.logger.child({ component: 'webhooks' });
  const wake: WebhooksRuntime['wake'] = async (ids, options = {}) => {
    if (ids.length === 0) return;
    await platform.jobs.sendMany(
      deliverJob,
      ids.map((messageId) => ({ messageId })),
      {
        ...(options.startAfter ? { startAfter: options.startAfter } : {}),
        ...(options.trx ? { trx: options.trx } : {}),
      },
    );
  };
  const deliverer = new Deliverer({
    platform,
    settings,
    box,
    metrics,
    log,
    userAgent: `Groundwork-Webhooks/${platform.version}`,
    attempt: (req) => attemptDelivery(req, { agent }),
    wake: (ids, startAfter) => wake(ids, startAfter ? { startAfter } : {}),
    notifyDisabled: async (endpoint) => {
      const to = await ownerEmail(platform, endpoint.ownerId);
      if (!to) return;
      await platform.mail.send({
        template: endpointDisabledTemplate,
        to,
        vars: {
          endpointUrl: endpoint.url.slice(0, 2048),
          endpointId: endpoint.id,
          reason:
            endpoint.reason === 'gone'
              ? 'it answered 410 Gone'
              : `its deliveries failed continuously for ${formatDuration(settings.disableAfterS)}`,
        },
        userId: endpoint.ownerId,
      });
    },
  });
  platform.lifecycle.onShutdown(() => deliverer.abort());
  const runtime: WebhooksRuntime = { settings, box, metrics, agent, deliverer, wake };
  runtimes.set(platform, runtime);
  return runtime;
}

/** Waits for this platform's running deliveries and closes its connections (tests, shutdown). */
export async function stopWebhooks(platform: Platform): Promise<void> {
  const runtime = runtimes.get(platform);
  if (!runtime) return;
  await runtime.deliverer.drain();
  await runtime.agent.close();
}

function formatDuration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600} hour${seconds === 3_600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minute${seconds === 60 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/**
 * (Defined beside the runtime it calls, so the runtime can enqueue it without a cycle.)
 * Hands one message to this process's deliverer, which claims it and runs the attempt without
 * holding the job (see `Deliverer`). Retries of a failed attempt are new jobs due at the retry
 * time; the job's own retries only cover a failure to claim (the database unavailable).
 */
export const deliverJob = defineJob({
  name: 'webhooks.deliver',
  payload: Type.Object({ messageId: Type.String({ format: 'uuid' }) }),
  options: {
    concurrency: 200,
    batchSize: 100,
    retries: 5,
    backoff: { initialSeconds: 1, maxSeconds: 60 },
    timeoutSeconds: 60,
    keepCompletedSeconds: 3_600,
  },
  handler: async ({ messageId }, ctx) => {
    await webhooksRuntime(ctx.platform).deliverer.deliver(messageId);
  },
});
