import { Type, type Static } from 'typebox';
import {
  ConfigError,
  configDuration as duration,
  parseDuration,
  type Config,
  type ConfigIssue,
} from '../config/index.ts';

/** The webhooks module's settings (`WEBHOOKS_*`), validated with the platform's at start. */
export const WebhooksConfig = Type.Object({
  WEBHOOKS_ALLOW_PRIVATE_NETWORKS: Type.Boolean({
    default: false,
    description:
      'Allow endpoint URLs that resolve to loopback, private, link-local and other internal addresses. For tests and development only: refused with `APP_ENV=production`.',
  }),
  WEBHOOKS_TIMEOUT: duration(
    'How long one delivery attempt may take (connect to last byte).',
    '15s',
  ),
  WEBHOOKS_RETRY_SCHEDULE: Type.String({
    default: '5s,5m,30m,2h,5h,10h,10h',
    pattern: '^[1-9][0-9]{0,6}(s|m|h|d)(,[1-9][0-9]{0,6}(s|m|h|d)){0,19}$',
    description:
      'Delays before each retry after a failed attempt, comma separated (each with a unit); a message fails for good after the last. Each delay gets ±20 % jitter.',
  }),
  WEBHOOKS_MAX_RETRY_AFTER: duration(
    'The longest `Retry-After` (on 429 and 503) honoured; longer ones are cut to this.',
    '1h',
  ),
  WEBHOOKS_SECRET_OVERLAP: duration(
    'After a secret rotation, how long the previous secret keeps signing alongside the new one.',
    '24h',
  ),
  WEBHOOKS_PAYLOAD_MAX_BYTES: Type.Integer({
    default: 262_144,
    minimum: 1_024,
    maximum: 16_777_216,
    description:
      'The largest webhook body; an event whose body is larger is recorded as failed, not sent.',
  }),
  WEBHOOKS_RETENTION: duration('How long delivery logs (messages and attempts) are kept.', '30d'),
  WEBHOOKS_DISABLE_AFTER: duration(
    'An endpoint whose deliveries fail continuously this long is disabled and its owner mailed.',
    '5d',
  ),
  WEBHOOKS_CONCURRENCY_PER_ENDPOINT: Type.Integer({
    default: 10,
    minimum: 1,
    maximum: 1_000,
    description:
      'Deliveries in flight at once per endpoint (endpoints with `ordered: true` get one).',
  }),
});
export type WebhooksConfig = Static<typeof WebhooksConfig>;

/** The module's settings, parsed (durations in seconds) and checked against the platform's. */
export interface WebhookSettings {
  readonly allowPrivateNetworks: boolean;
  readonly requireHttps: boolean;
  readonly timeoutMs: number;
  /** Seconds before retry 1, 2...; its length is the number of retries. */
  readonly retryScheduleS: readonly number[];
  readonly maxRetryAfterS: number;
  readonly secretOverlapS: number;
  readonly payloadMaxBytes: number;
  readonly retentionS: number;
  readonly disableAfterS: number;
  readonly concurrencyPerEndpoint: number;
}

/**
 * The module's cross-field rule (its `checkConfig`, run with every other configuration check at
 * start): no private networks in production.
 */
export function checkWebhooksConfig(
  slice: WebhooksConfig,
  context: { env: Config['env'] },
): ConfigIssue[] {
  return context.env === 'production' && slice.WEBHOOKS_ALLOW_PRIVATE_NETWORKS
    ? [
        {
          key: 'WEBHOOKS_ALLOW_PRIVATE_NETWORKS',
          message: 'must be false in production (it lets webhooks reach internal addresses)',
        },
      ]
    : [];
}

/** Parses the slice (checked again: a slice made by hand cannot skip the production rule). */
export function webhookSettings(platform: Config, slice: WebhooksConfig): WebhookSettings {
  const production = platform.env === 'production';
  const issues = checkWebhooksConfig(slice, platform);
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    allowPrivateNetworks: slice.WEBHOOKS_ALLOW_PRIVATE_NETWORKS,
    requireHttps: production,
    timeoutMs: parseDuration(slice.WEBHOOKS_TIMEOUT) * 1000,
    retryScheduleS: slice.WEBHOOKS_RETRY_SCHEDULE.split(',').map(parseDuration),
    maxRetryAfterS: parseDuration(slice.WEBHOOKS_MAX_RETRY_AFTER),
    secretOverlapS: parseDuration(slice.WEBHOOKS_SECRET_OVERLAP),
    payloadMaxBytes: slice.WEBHOOKS_PAYLOAD_MAX_BYTES,
    retentionS: parseDuration(slice.WEBHOOKS_RETENTION),
    disableAfterS: parseDuration(slice.WEBHOOKS_DISABLE_AFTER),
    concurrencyPerEndpoint: slice.WEBHOOKS_CONCURRENCY_PER_ENDPOINT,
  };
}
