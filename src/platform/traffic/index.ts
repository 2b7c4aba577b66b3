import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Redis } from '../redis/index.ts';
import { MemoryRateStore, RedisRateStore, type RateStore } from './gcra.ts';
import { registerIdempotency } from './idempotency.ts';
import { registerRateLimits } from './rate-limit.ts';

export {
  gcra,
  LOCAL_MIN_LIMIT,
  localAllowance,
  MAX_ALLOWANCE,
  MemoryRateStore,
  RedisRateStore,
} from './gcra.ts';
export type { Decision, RateStore, RedisRateStoreOptions, RedisRateStoreStats } from './gcra.ts';
export { AuthLimits, TrafficCodes, registerRateLimits } from './rate-limit.ts';
export type { RateLimitPolicy, Tier } from './rate-limit.ts';
export {
  IdempotencyCodes,
  IDEMPOTENCY_TTL_HOURS,
  purgeIdempotencyKeys,
  registerIdempotency,
} from './idempotency.ts';

export interface TrafficOptions {
  config: Config;
  logger: Logger;
  redis: Redis | null;
  database: Database | null;
  metrics?: Registry;
  /** A rate store to use instead of the one made from `redis` (tests). */
  store?: RateStore;
}

/**
 * Client IP warning, rate limits (Redis store when configured, bounded in-process store
 * otherwise) and idempotency keys (when there is a database).
 */
export function registerTraffic(app: FastifyInstance, options: TrafficOptions): RateStore {
  const { config, logger } = options;
  if (config.isProduction && config.http.trustProxy === false) {
    logger.warn(
      'TRUST_PROXY is not set: client IPs are the socket peers. Behind a load balancer every client then shares its address (one rate-limit bucket for all); list the proxy addresses in TRUST_PROXY.',
    );
  }
  const store =
    options.store ??
    (options.redis
      ? new RedisRateStore(options.redis, config.rateLimit)
      : new MemoryRateStore(config.rateLimit.memoryMaxKeys));
  registerRateLimits(app, { config, store, logger, metrics: options.metrics });
  if (options.database) {
    registerIdempotency(app, {
      db: options.database.db,
      logger,
      leaseMs: config.http.handlerTimeoutMs + 5_000,
    });
  }
  return store;
}
