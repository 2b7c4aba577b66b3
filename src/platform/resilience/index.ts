export { createHttpClient, expandPath } from './client.ts';
export type {
  HttpClient,
  HttpClientOptions,
  QueryValue,
  TargetOptions,
  UpstreamRequest,
  UpstreamResponse,
  UpstreamTarget,
} from './client.ts';
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
