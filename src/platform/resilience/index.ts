export { createHttpClient } from './client.ts';
export type { HttpClient, HttpClientOptions, TargetOptions } from './client.ts';
export type { UpstreamTarget } from './target.ts';
export { expandPath } from './message.ts';
export type { QueryValue, UpstreamRequest, UpstreamResponse } from './message.ts';
export { ResilienceCodes } from './errors.ts';
export { CIRCUIT_STATE_VALUE } from './metrics.ts';
export type { AttemptOutcome, CircuitStateName } from './metrics.ts';
export {
  DEFAULT_POLICY,
  isRetryableStatus,
  mayRetry,
  mergePolicy,
  parseRetryAfter,
} from './policy.ts';
export type { BreakerPolicy, PolicyOverrides, ResiliencePolicy } from './policy.ts';
export { breakerStrategy, createKeyedBreakers } from './breakers.ts';
export type { BreakerRun, KeyedBreakers, KeyedBreakersOptions } from './breakers.ts';
