/** Circuit breaker settings for one target. */
export interface BreakerPolicy {
  /** Consecutive failed attempts (5xx, timeout, network error) that open the circuit. */
  failureThreshold: number;
  /**
   * Open on a failure ratio over a sliding window instead of a count: 0 < ratio < 1 (0.5 = half
   * the attempts failed). When set, `failureThreshold` is not used.
   */
  failureRatio?: number;
  /** Window for `failureRatio`, in milliseconds. */
  windowMs?: number;
  /** Attempts the window must hold before `failureRatio` may open the circuit (default 10). */
  minimumCalls?: number;
  /** How long the circuit stays open before one trial call is let through (half-open). */
  halfOpenAfterMs: number;
}

/** How calls to one target are made. Every field has a default (`DEFAULT_POLICY`). */
export interface ResiliencePolicy {
  /** Time limit of each attempt: connect, headers and the whole body. */
  timeoutMs: number;
  /** Retries after the first attempt, for calls that may be retried (0: never retry). */
  retries: number;
  /** Exponential backoff with decorrelated jitter between attempts. */
  backoff: { initialDelayMs: number; maxDelayMs: number };
  /** Longest upstream `Retry-After` honoured; a longer one ends the call instead of waiting. */
  maxRetryAfterMs: number;
  breaker: BreakerPolicy;
  /** Connections kept to the target's origin (keep-alive pool). */
  connections: number;
  /** Idle keep-alive time of a pooled connection. */
  keepAliveTimeoutMs: number;
  /** Largest response body read; a larger one fails the call with `UPSTREAM_ERROR`. */
  maxResponseBytes: number;
}

/** Partial policy: what a client's defaults or a target override. */
export type PolicyOverrides = Partial<Omit<ResiliencePolicy, 'breaker' | 'backoff'>> & {
  breaker?: Partial<BreakerPolicy>;
  backoff?: Partial<ResiliencePolicy['backoff']>;
};

export const DEFAULT_POLICY: Readonly<ResiliencePolicy> = Object.freeze({
  timeoutMs: 5_000,
  retries: 2,
  backoff: { initialDelayMs: 100, maxDelayMs: 2_000 },
  maxRetryAfterMs: 10_000,
  breaker: { failureThreshold: 5, halfOpenAfterMs: 10_000 },
  connections: 10,
  keepAliveTimeoutMs: 4_000,
  maxResponseBytes: 10 * 1024 * 1024,
});

/** Layers overrides on a base policy (later wins; nested objects merged field by field). */
export function mergePolicy(
  base: ResiliencePolicy,
  ...layers: PolicyOverrides[]
): ResiliencePolicy {
  let out: ResiliencePolicy = {
    ...base,
    backoff: { ...base.backoff },
    breaker: { ...base.breaker },
  };
  for (const layer of layers) {
    const { breaker, backoff, ...rest } = layer;
    out = {
      ...out,
      ...definedOnly(rest),
      backoff: { ...out.backoff, ...definedOnly(backoff ?? {}) },
      breaker: { ...out.breaker, ...definedOnly(breaker ?? {}) },
    };
  }
  validatePolicy(out);
  return out;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validatePolicy(p: ResiliencePolicy): void {
  const positive = (name: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be > 0`);
  };
  positive('timeoutMs', p.timeoutMs);
  if (!Number.isInteger(p.retries) || p.retries < 0)
    throw new RangeError('retries must be an integer >= 0');
  positive('backoff.initialDelayMs', p.backoff.initialDelayMs);
  positive('backoff.maxDelayMs', p.backoff.maxDelayMs);
  if (p.maxRetryAfterMs < 0) throw new RangeError('maxRetryAfterMs must be >= 0');
  if (!Number.isInteger(p.breaker.failureThreshold) || p.breaker.failureThreshold < 1)
    throw new RangeError('breaker.failureThreshold must be an integer >= 1');
  positive('breaker.halfOpenAfterMs', p.breaker.halfOpenAfterMs);
  const { failureRatio } = p.breaker;
  if (failureRatio !== undefined && !(failureRatio > 0 && failureRatio < 1))
    throw new RangeError('breaker.failureRatio must be between 0 and 1');
  const { minimumCalls, windowMs } = p.breaker;
  if (minimumCalls !== undefined && !(Number.isInteger(minimumCalls) && minimumCalls >= 1))
    throw new RangeError('breaker.minimumCalls must be an integer >= 1');
  if (windowMs !== undefined) positive('breaker.windowMs', windowMs);
  if (!Number.isInteger(p.connections) || p.connections < 1)
    throw new RangeError('connections must be an integer >= 1');
  positive('keepAliveTimeoutMs', p.keepAliveTimeoutMs);
  positive('maxResponseBytes', p.maxResponseBytes);
}

/** Methods that may be repeated without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PUT',
  'DELETE',
]);

/** Whether a call may be sent again: its method is idempotent, or the caller says it is safe. */
export function mayRetry(method: string, idempotent: boolean | undefined): boolean {
  return idempotent ?? IDEMPOTENT_METHODS.has(method);
}

/** Statuses worth another attempt: request timeout, rate limited, and gateway/availability errors. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** Statuses the circuit breaker counts as failures of the upstream: any 5xx. 4xx are the caller's. */
export function isBreakerFailureStatus(status: number): boolean {
  return status >= 500;
}

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date (RFC 9110
 * §10.2.3). Undefined when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now = Date.now(),
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
