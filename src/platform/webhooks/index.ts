import { defineModule } from '../modules/index.ts';
import { fanOutSubscriber } from './fan-out.ts';
import { webhookJobs } from './jobs.ts';
import { endpointDisabledTemplate } from './mail.ts';
import { registerWebhookRoutes } from './routes.ts';
import { webhooksRuntime, stopWebhooks } from './runtime.ts';
import { WebhookService, WEBHOOKS_ADMIN, WEBHOOKS_MANAGE } from './service.ts';
import { checkWebhooksConfig, WebhooksConfig, webhookSettings } from './settings.ts';

export { WebhookCodes } from './errors.ts';
export { fanOut, webhookBody } from './fan-out.ts';
export { deliverJob, purgeJob, sweepJob } from './jobs.ts';
export { endpointDisabledTemplate } from './mail.ts';
export { stopWebhooks, webhooksRuntime } from './runtime.ts';
export type { WebhooksRuntime } from './runtime.ts';
export { WEBHOOKS_ADMIN, WEBHOOKS_MANAGE, WebhookService } from './service.ts';
export { WebhooksConfig, webhookSettings } from './settings.ts';
export type { WebhookSettings } from './settings.ts';
export {
  attemptDelivery,
  checkWebhookUrl,
  createDeliveryAgent,
  newWebhookSecret,
  signWebhook,
} from './transport.ts';
export type { AttemptRequest, AttemptResult, UrlPolicy } from './transport.ts';

/**
 * Webhooks (Standard Webhooks): endpoints owned by users, signed deliveries with retries, the
 * delivery log, replays and the event catalog. Every committed domain event is fanned out by
 * the `webhooks.fan-out` subscriber.
 */
export const webhooksModule = defineModule({
  name: 'webhooks',
  description:
    'Webhook endpoints, signed deliveries of domain events with retries, delivery logs, replays and the event catalog.',
  // identity: authentication and permissions of its routes; events: the fan-out subscriber.
  dependsOn: ['identity', 'events'],
  config: WebhooksConfig,
  checkConfig: checkWebhooksConfig,
  permissions: [
    {
      name: WEBHOOKS_MANAGE,
      description: 'Create and manage one’s own webhook endpoints; read the event catalog.',
      roles: ['user', 'admin'],
    },
    {
      name: WEBHOOKS_ADMIN,
      description: 'Act on every owner’s webhook endpoints, deliveries and messages.',
      roles: ['admin'],
    },
  ],
  // Settings are checked here too: every process role builds the jobs at start.
  jobs: ({ platform, config }) => {
    webhookSettings(platform, config);
    return webhookJobs;
  },
  mailTemplates: [endpointDisabledTemplate],
  subscribers: [fanOutSubscriber],
  routes: async (app, { platform, config }) => {
    webhookSettings(platform.config, config);
    registerWebhookRoutes(
      app,
      new WebhookService({
        platform,
        runtime: () => webhooksRuntime(platform),
        paging: {
          secret: platform.config.secrets.appSecret,
          estimateAbove: platform.config.database.estimateAbove,
        },
      }),
    );
    return Promise.resolve();
  },
  onStop: ({ platform }) => stopWebhooks(platform),
});
