import { Counter, type Registry } from 'prom-client';

export interface AccountMetrics {
  /** Token refreshes by platform and outcome (`refreshed`, `reauth_required`, `failed`). */
  readonly refreshes: Counter<'platform' | 'outcome'>;
  /** Reauth episodes started, by platform. */
  readonly reauth: Counter<'platform'>;
}

const made = new WeakMap<Registry, AccountMetrics>();

/** The accounts half's metrics on the platform's registry (made once per registry). */
export function accountMetrics(registry: Registry): AccountMetrics {
  const existing = made.get(registry);
  if (existing) return existing;
  const metrics: AccountMetrics = {
    refreshes: new Counter({
      name: 'publishing_token_refreshes_total',
      help: 'Platform token refreshes, by platform and outcome (refreshed, reauth_required, failed).',
      labelNames: ['platform', 'outcome'],
      registers: [registry],
    }),
    reauth: new Counter({
      name: 'publishing_account_reauth_total',
      help: 'Connected accounts that became reauth_required (one per episode), by platform.',
      labelNames: ['platform'],
      registers: [registry],
    }),
  };
  made.set(registry, metrics);
  return metrics;
}
