import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Platform } from '../../../platform/modules/index.ts';
import { CIRCUIT_STATE_VALUE, type KeyedBreakers } from '../../../platform/resilience/index.ts';
import { PLATFORM_IDS } from '../platforms/types.ts';
import { dueCounts, postsDb } from './posts.repository.ts';

export interface PostMetrics {
  readonly published: Counter<'platform'>;
  readonly failed: Counter<'platform' | 'code'>;
  readonly lag: Histogram<'platform'>;
  readonly quotaWaits: Counter<'platform' | 'endpoint'>;
  readonly retries: Counter<'platform' | 'reason'>;
}

const made = new WeakMap<Registry, PostMetrics>();

/**
 * The pipeline's metrics on the platform's registry (made once per registry): targets due,
 * published, failed by code, publish lag, quota waits, retries and waits, breaker state.
 */
export function postMetrics(
  platform: Platform,
  breakers: () => KeyedBreakers<unknown>,
): PostMetrics {
  const registry = platform.metrics;
  const existing = made.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: PostMetrics = {
    published: new Counter({
      name: 'publishing_published_total',
      help: 'Targets published, by platform.',
      labelNames: ['platform'],
      registers,
    }),
    failed: new Counter({
      name: 'publishing_failed_total',
      help: 'Targets failed for good (or paused), by platform and error code.',
      labelNames: ['platform', 'code'],
      registers,
    }),
    lag: new Histogram({
      name: 'publishing_publish_lag_seconds',
      help: 'From the post’s scheduled time to its publication on the platform.',
      labelNames: ['platform'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 86_400],
      registers,
    }),
    quotaWaits: new Counter({
      name: 'publishing_quota_waits_total',
      help: 'Targets held back because a declared quota (platform × account × endpoint) was spent.',
      labelNames: ['platform', 'endpoint'],
      registers,
    }),
    retries: new Counter({
      name: 'publishing_retries_total',
      help: 'Targets put back to wait: `retry` (retryable failure), `rate_limited` (the platform said when), `breaker` (circuit open), `lookup` (outcome unknown).',
      labelNames: ['platform', 'reason'],
      registers,
    }),
  };
  new Gauge({
    name: 'publishing_posts_due',
    help: 'Targets scheduled whose time has come and that no worker has taken yet, by platform.',
    labelNames: ['platform'],
    registers,
    async collect() {
      this.reset();
      for (const p of PLATFORM_IDS) this.set({ platform: p }, 0);
      if (!platform.live) return;
      for (const { platform: p, n } of await dueCounts(postsDb(platform.database.db)))
        this.set({ platform: p }, n);
    },
  });
  new Gauge({
    name: 'publishing_breaker_state',
    help: 'Each platform’s circuit breaker in this process: 0 closed, 1 open, 2 half-open.',
    labelNames: ['platform'],
    registers,
    collect() {
      for (const p of PLATFORM_IDS)
        this.set({ platform: p }, CIRCUIT_STATE_VALUE[breakers().state(p)]);
    },
  });
  made.set(registry, metrics);
  return metrics;
}
