import {
  CircuitState,
  ConsecutiveBreaker,
  SamplingBreaker,
  circuitBreaker,
  handleAll,
  isBrokenCircuitError,
  isIsolatedCircuitError,
  type CircuitBreakerPolicy,
  type IBreaker,
} from 'cockatiel';
import type { CircuitStateName } from './metrics.ts';
import { DEFAULT_POLICY, type BreakerPolicy } from './policy.ts';

/** The counting strategy a breaker policy describes: consecutive failures, or a failure ratio. */
export function breakerStrategy(policy: BreakerPolicy): IBreaker {
  const { failureRatio, failureThreshold } = policy;
  if (failureRatio === undefined) return new ConsecutiveBreaker(failureThreshold);
  const windowMs = policy.windowMs ?? 30_000;
  const minimumCalls = policy.minimumCalls ?? 10;
  // cockatiel counts a minimum rate: the window must hold at least minimumRps * window seconds calls.
  return new SamplingBreaker({
    threshold: failureRatio,
    duration: windowMs,
    minimumRps: (minimumCalls * 1000) / windowMs,
  });
}

export interface KeyedBreakersOptions<T> {
  /** Over `DEFAULT_POLICY.breaker`. */
  policy?: Partial<BreakerPolicy>;
  /** Whether a result counts as a failure (a thrown error always does). */
  isFailure(result: T): boolean;
  /** Keys remembered at most; the least recently used closed breakers are forgotten first. */
  maxKeys?: number;
}

export type BreakerRun<T> = { ran: true; value: T } | { ran: false; openForMs: number };

/**
 * Circuit breakers made on demand, one per key (an outbound host for calls whose targets are not
 * known in advance, such as webhook endpoints). A key's breaker opens as the policy says and
 * refuses calls without running them until its half-open trial.
 */
export interface KeyedBreakers<T> {
  /** Runs `fn` under the key's breaker, or refuses it (`ran: false`) while the circuit is open. */
  run(key: string, fn: () => Promise<T>): Promise<BreakerRun<T>>;
  state(key: string): CircuitStateName;
  /** Keys currently remembered. */
  size(): number;
}

/** Makes a set of keyed breakers (`KeyedBreakers`). */
export function createKeyedBreakers<T>(options: KeyedBreakersOptions<T>): KeyedBreakers<T> {
  const policy: BreakerPolicy = { ...DEFAULT_POLICY.breaker, ...options.policy };
  const maxKeys = options.maxKeys ?? 10_000;
  const entries = new Map<string, { breaker: CircuitBreakerPolicy; openedAt: number }>();
  const counted = handleAll.orWhenResult((result) => options.isFailure(result as T));

  const entry = (key: string) => {
    let found = entries.get(key);
    if (found) {
      entries.delete(key); // re-inserted below: Map order is least recently used first
    } else {
      const breaker = circuitBreaker(counted, {
        halfOpenAfter: policy.halfOpenAfterMs,
        breaker: breakerStrategy(policy),
      });
      const made = { breaker, openedAt: 0 };
      breaker.onBreak(() => {
        made.openedAt = Date.now();
      });
      found = made;
      evict();
    }
    entries.set(key, found);
    return found;
  };

  const evict = () => {
    if (entries.size < maxKeys) return;
    for (const [key, { breaker }] of entries) {
      if (breaker.state === CircuitState.Closed) {
        entries.delete(key);
        if (entries.size < maxKeys) return;
      }
    }
    // Every remembered breaker is open: forget the least recently used anyway (bounded memory).
    const oldest = entries.keys().next();
    if (!oldest.done) entries.delete(oldest.value);
  };

  const openForMs = (openedAt: number) =>
    Math.max(0, openedAt + policy.halfOpenAfterMs - Date.now());

  return {
    async run(key, fn) {
      const found = entry(key);
      try {
        return { ran: true, value: await found.breaker.execute(fn) };
      } catch (error) {
        if (isBrokenCircuitError(error) || isIsolatedCircuitError(error))
          return { ran: false, openForMs: openForMs(found.openedAt) };
        throw error;
      }
    },
    state(key) {
      const found = entries.get(key);
      if (!found) return 'closed';
      switch (found.breaker.state) {
        case CircuitState.Closed:
          return 'closed';
        case CircuitState.HalfOpen:
          return 'half-open';
        case CircuitState.Open:
          return openForMs(found.openedAt) > 0 ? 'open' : 'half-open';
        case CircuitState.Isolated:
          return 'open';
      }
    },
    size: () => entries.size,
  };
}
