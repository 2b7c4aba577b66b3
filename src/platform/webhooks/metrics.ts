import { Counter, Histogram, type Registry } from 'prom-client';

/** The webhooks area's metrics. */
export interface WebhookMetrics {
  attempts: Counter<'outcome'>;
  lag: Histogram;
  disabled: Counter<'reason'>;
}

const byRegistry = new WeakMap<Registry, WebhookMetrics>();

/** The metrics in this registry (made once per registry: several platforms may share one). */
export function webhookMetrics(registry: Registry): WebhookMetrics {
  let m = byRegistry.get(registry);
  if (m) return m;
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  m = {
    attempts:
      existing<Counter<'outcome'>>('webhook_attempts_total') ??
      new Counter({
        name: 'webhook_attempts_total',
        help: 'Webhook delivery attempts by outcome (success, retry, gone, blocked)',
        labelNames: ['outcome'],
        registers: [registry],
      }),
    lag:
      existing<Histogram>('webhook_delivery_lag_seconds') ??
      new Histogram({
        name: 'webhook_delivery_lag_seconds',
        help: 'From the event (its commit) to the first delivery attempt of each message',
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [registry],
      }),
    disabled:
      existing<Counter<'reason'>>('webhook_endpoints_disabled_total') ??
      new Counter({
        name: 'webhook_endpoints_disabled_total',
        help: 'Webhook endpoints disabled by deliveries (reason: failing, gone)',
        labelNames: ['reason'],
        registers: [registry],
      }),
  };
  byRegistry.set(registry, m);
  return m;
}
