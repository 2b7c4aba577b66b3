import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** `circuit_state` gauge values. */
export const CIRCUIT_STATE_VALUE = { closed: 0, open: 1, 'half-open': 2 } as const;
export type CircuitStateName = keyof typeof CIRCUIT_STATE_VALUE;

/** What one attempt (or refused call) came to, the `outcome` label of `upstream_requests_total`. */
export type AttemptOutcome =
  'success' | 'client_error' | 'server_error' | 'timeout' | 'network_error' | 'circuit_open';

export interface ResilienceMetrics {
  attempt(target: string, outcome: AttemptOutcome, seconds?: number): void;
  /** Adds a source of circuit states, read on every scrape. */
  addStates(source: () => Record<string, CircuitStateName>): void;
}

const byRegistry = new WeakMap<Registry, ResilienceMetrics>();

/** The upstream metrics of a registry, made on first use (several clients may share a registry). */
export function resilienceMetrics(registry: Registry): ResilienceMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const sources: (() => Record<string, CircuitStateName>)[] = [];
  const requests = new Counter({
    name: 'upstream_requests_total',
    help: 'Outbound HTTP attempts by target and outcome (circuit_open: refused without a request)',
    labelNames: ['target', 'outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'upstream_request_duration_seconds',
    help: 'Outbound HTTP attempt duration, from sending to the whole body read',
    labelNames: ['target'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'circuit_state',
    help: 'Circuit breaker state per outbound target: 0 closed, 1 open, 2 half-open',
    labelNames: ['target'] as const,
    registers: [registry],
    collect() {
      for (const source of sources)
        for (const [target, state] of Object.entries(source()))
          this.set({ target }, CIRCUIT_STATE_VALUE[state]);
    },
  });
  const metrics: ResilienceMetrics = {
    attempt(target, outcome, seconds) {
      requests.inc({ target, outcome });
      if (seconds !== undefined) duration.observe({ target }, seconds);
    },
    addStates(source) {
      sources.push(source);
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
