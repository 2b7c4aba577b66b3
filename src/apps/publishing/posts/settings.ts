import { Type, type TSchema } from 'typebox';
import { configDuration as duration } from '../../../platform/config/index.ts';

const concurrency = (platform: string, def: number) =>
  Type.Integer({
    default: def,
    minimum: 1,
    maximum: 256,
    description: `Targets published to ${platform} at once per worker process (its queue's concurrency).`,
  });

/** The posts half's settings (queues, retries, quotas): `PUBLISHING_*`. */
export const postsConfig = {
  PUBLISHING_MAX_SCHEDULE_AHEAD: duration(
    'How far ahead a post may be scheduled; later times are refused (422 SCHEDULED_TOO_FAR).',
    '365d',
  ),
  PUBLISHING_INSTAGRAM_CONCURRENCY: concurrency('Instagram', 8),
  PUBLISHING_FACEBOOK_CONCURRENCY: concurrency('Facebook', 8),
  PUBLISHING_YOUTUBE_CONCURRENCY: concurrency('YouTube', 4),
  PUBLISHING_MAX_ATTEMPTS: Type.Integer({
    default: 5,
    minimum: 1,
    maximum: 50,
    description:
      'Failed calls (retryable errors) before a target is failed for good (dead-lettered with its reason). Waits for quotas, rate limits and an open breaker do not count.',
  }),
  PUBLISHING_RETRY_INITIAL: duration(
    'The first retry delay after a retryable failure; doubled each time, with ±50 % jitter.',
    '10s',
  ),
  PUBLISHING_RETRY_MAX: duration('The longest retry delay.', '30m'),
  PUBLISHING_PUBLISH_TIMEOUT: duration(
    'How long one publish attempt may take (an upload and container polling included). A target claimed longer than this plus a margin is settled by the sweep through its marker.',
    '10m',
  ),
  PUBLISHING_BREAKER_FAILURES: Type.Integer({
    default: 5,
    minimum: 1,
    maximum: 1000,
    description:
      'Consecutive unavailable answers (5xx, timeouts) from one platform that open its circuit breaker.',
  }),
  PUBLISHING_BREAKER_HALF_OPEN_AFTER: duration(
    'How long a platform’s open breaker holds its targets before one trial call.',
    '30s',
  ),
  PUBLISHING_MEDIA_URL_TTL: duration(
    'How long the signed media URLs handed to a platform stay valid.',
    '1h',
  ),
} satisfies Record<string, TSchema>;
