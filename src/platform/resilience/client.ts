import type { Registry } from 'prom-client';
import { Pool } from 'undici';
import type { Logger } from '../observability/index.ts';
import { lowerCaseKeys } from './message.ts';
import { resilienceMetrics, type CircuitStateName } from './metrics.ts';
import { DEFAULT_POLICY, mergePolicy, type PolicyOverrides } from './policy.ts';
import { makeTarget, type UpstreamTarget } from './target.ts';

export interface TargetOptions extends PolicyOverrides {
  /** `https://api.example.com/v2`: the origin gets a connection pool, the path prefixes every call. */
  baseUrl: string;
  /** Sent with every call (an API key, a user agent). Never logged. */
  headers?: Record<string, string>;
}

export interface HttpClientOptions {
  logger: Logger;
  /** Registry for `upstream_requests_total`, `upstream_request_duration_seconds`, `circuit_state`. */
  metrics?: Registry;
  /** Policy for every target, over `DEFAULT_POLICY`; targets may override any field. */
  defaults?: PolicyOverrides;
}

export interface HttpClient {
  /** Declares a target; names are unique per client (`[a-z0-9_-]`, they label metrics). */
  target(name: string, options: TargetOptions): UpstreamTarget;
  /** Each target's breaker state, for `GET /health`. */
  breakerStates(): Record<string, CircuitStateName>;
  /** Closes every target's connections (waits for calls in flight). */
  close(): Promise<void>;
}

const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** An HTTP client for calling other services: per-attempt timeouts, retries, a breaker per target. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const base = mergePolicy(DEFAULT_POLICY, options.defaults ?? {});
  const log = options.logger.child({ component: 'upstream' });
  const metrics = options.metrics ? resilienceMetrics(options.metrics) : undefined;
  const targets = new Map<string, { target: UpstreamTarget; pool: Pool }>();

  const breakerStates = () =>
    Object.fromEntries([...targets].map(([name, { target }]) => [name, target.state()]));
  metrics?.addStates(breakerStates);

  return {
    target(name, targetOptions) {
      if (!TARGET_NAME.test(name))
        throw new Error(`upstream target name "${name}" is not [a-z0-9_-]`);
      if (targets.has(name)) throw new Error(`upstream target "${name}" is already declared`);
      const { baseUrl, headers, ...overrides } = targetOptions;
      const policy = mergePolicy(base, overrides);
      const url = new URL(baseUrl);
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash)
        throw new Error(`upstream target "${name}": baseUrl must be http(s) without query or hash`);
      const pool = new Pool(url.origin, {
        connections: policy.connections,
        keepAliveTimeout: policy.keepAliveTimeoutMs,
      });
      const target = makeTarget({
        name,
        policy,
        pool,
        basePath: url.pathname.replace(/\/+$/, ''),
        headers: lowerCaseKeys(headers ?? {}),
        log: log.child({ target: name }),
        record: (outcome, seconds) => metrics?.attempt(name, outcome, seconds),
      });
      targets.set(name, { target, pool });
      return target;
    },
    breakerStates,
    async close() {
      await Promise.all([...targets.values()].map(({ pool }) => pool.close()));
    },
  };
}
