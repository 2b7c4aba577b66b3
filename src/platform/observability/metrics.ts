import type { FastifyRequest } from 'fastify';
import { statfsSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Route label for requests that matched no route, so unknown paths cannot grow label cardinality. */
export const UNMATCHED_ROUTE = '__unmatched__';

/** One Prometheus registry per app instance, with default process metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

type HttpLabels = Readonly<{ method: string; route: string; status_code: string }>;

/** Upper bounds of `http_request_duration_seconds`, in seconds. */
export const HTTP_DURATION_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10,
];

/** One method, route and status: its request count, duration sum, and count per bucket. */
interface Series {
  readonly labels: HttpLabels;
  count: number;
  sum: number;
  /** Requests per bucket, not cumulative; the last slot counts those above every bound. */
  readonly buckets: Float64Array;
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  sharedLabels?: Record<string, string>;
  /** What prom-client's histogram buckets carry when exemplars are off. */
  exemplar?: null;
}

/**
 * A metric registered with prom-client's registry whose values are read from the series at scrape
 * time (the registry formats and serves it like its own: `get`, `getForPromString`, `reset`).
 */
class SeriesMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  readonly #values: () => MetricValue[];
  readonly #reset: () => void;
  /** The fast counter this metric shows, for a second registration under the name. */
  owner: unknown;

  constructor(
    name: string,
    help: string,
    type: 'counter' | 'histogram',
    values: () => MetricValue[],
    reset: () => void,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#values = values;
    this.#reset = reset;
  }

  getForPromString() {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.#values(),
      aggregator: this.aggregator,
    });
  }

  async get() {
    const data = await this.getForPromString();
    const values = data.values.map(({ labels, sharedLabels, ...rest }) => ({
      ...rest,
      labels: { ...sharedLabels, ...labels },
    }));
    return { ...data, values };
  }

  reset(): void {
    this.#reset();
  }
}

/**
 * A counter for a hot path: `child(labels)`, asked once per label set by the caller, gives an
 * `inc()` that adds to a plain number, read by prom-client's registry at scrape time. prom-client's own Counter hashes
 * its label object on every `inc` (a measured cost per request). Registered under its name once
 * per registry: a second `fastCounter` call with the name returns the first.
 */
export interface FastCounter<L extends string> {
  child(labels: Readonly<Record<L, string>>): { inc(amount?: number): void };
}

export function fastCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
): FastCounter<L> {
  const existing = registry.getSingleMetric(name) as unknown;
  if (existing instanceof SeriesMetric && existing.owner !== undefined)
    return existing.owner as FastCounter<L>;
  const series: { labels: Readonly<Record<string, string>>; value: number }[] = [];
  // One series per label set, however often (and by whom) `child` is asked for it.
  const children = new Map<string, { inc(amount?: number): void }>();
  const counter: FastCounter<L> = {
    child(labels) {
      const id = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
      let child = children.get(id);
      if (child === undefined) {
        const entry = { labels: { ...labels } as Readonly<Record<string, string>>, value: 0 };
        series.push(entry);
        child = {
          inc(amount = 1) {
            entry.value += amount;
          },
        };
        children.set(id, child);
      }
      return child;
    },
  };
  const metric = new SeriesMetric(
    name,
    help,
    'counter',
    () => series.map((s) => ({ value: s.value, labels: { ...s.labels } })),
    () => {
      for (const s of series) s.value = 0;
    },
  );
  metric.owner = counter;
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  return counter;
}

/**
 * Makes `http_requests_total` and `http_request_duration_seconds`, labelled by method, route
 * template and status, and returns the function that records one completed request (called from
 * the single completion hook in `plugin.ts`).
 *
 * Written here rather than with prom-client's Counter and Histogram, which hash the label object
 * (sorting and joining its values) on every `inc` and `observe`: together about 4% of a request's
 * CPU time in bench/http. Here each request finds its series through two map lookups (route, then
 * method and status) and adds to plain numbers; prom-client's registry still formats and serves
 * both metrics (the text is the same as its own Counter's and Histogram's), from the series at
 * scrape time. Series are bounded by the routes and the status codes they answer.
 */
export function instrumentHttp(
  registry: Registry,
): (method: string, route: string, statusCode: number, seconds: number) => void {
  const bounds = HTTP_DURATION_BUCKETS;
  const series = new Map<string, Map<string, Series>>();
  const all: Series[] = [];

  const seriesFor = (method: string, route: string, statusCode: number): Series => {
    let byRoute = series.get(route);
    if (!byRoute) series.set(route, (byRoute = new Map<string, Series>()));
    const key = `${method} ${String(statusCode)}`;
    let found = byRoute.get(key);
    if (!found) {
      const labels = Object.freeze({ method, route, status_code: String(statusCode) });
      found = { labels, count: 0, sum: 0, buckets: new Float64Array(bounds.length + 1) };
      byRoute.set(key, found);
      all.push(found);
    }
    return found;
  };
  const reset = () => {
    for (const s of all) {
      s.count = 0;
      s.sum = 0;
      s.buckets.fill(0);
    }
  };

  registry.registerMetric(
    new SeriesMetric(
      'http_requests_total',
      'HTTP requests completed',
      'counter',
      () => all.map((s) => ({ value: s.count, labels: { ...s.labels } })),
      reset,
    ) as unknown as Parameters<Registry['registerMetric']>[0],
  );
  const name = 'http_request_duration_seconds';
  registry.registerMetric(
    new SeriesMetric(
      name,
      'HTTP request duration from arrival to response',
      'histogram',
      () =>
        all.flatMap((s) => {
          let cumulative = 0;
          const sharedLabels = { ...s.labels };
          const values: MetricValue[] = bounds.map((le, i) => {
            cumulative += s.buckets[i] ?? 0;
            return {
              value: cumulative,
              labels: { le },
              metricName: `${name}_bucket`,
              exemplar: null,
              sharedLabels,
            };
          });
          values.push(
            {
              value: s.count,
              labels: { le: '+Inf' },
              metricName: `${name}_bucket`,
              exemplar: null,
              sharedLabels,
            },
            { value: s.sum, labels: {}, metricName: `${name}_sum`, sharedLabels },
            { value: s.count, labels: {}, metricName: `${name}_count`, sharedLabels },
          );
          return values;
        }),
      reset,
    ) as unknown as Parameters<Registry['registerMetric']>[0],
  );

  return (method, route, statusCode, seconds) => {
    const s = seriesFor(method, route, statusCode);
    s.count += 1;
    s.sum += seconds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    (s.buckets[i] as number) += 1;
  };
}

/**
 * `health_ready` (1 ready, 0 not: a check down or shutting down) and `health_check_up{check}`,
 * from the readiness checks run at scrape time, so an alert does not depend on a balancer probing.
 */
export function readinessGauges(
  registry: Registry,
  run: () => Promise<{ ok: boolean; checks: Record<string, { status: 'up' | 'down' }> }>,
): void {
  if (registry.getSingleMetric('health_ready')) return;
  let pending: ReturnType<typeof run> | null = null;
  // One run serves both gauges of a scrape.
  const read = () =>
    (pending ??= run().finally(() => {
      pending = null;
    }));
  new Gauge({
    name: 'health_ready',
    help: 'Readiness as /health/ready answers it: 1 ready, 0 not (a check down, or shutting down)',
    registers: [registry],
    async collect() {
      this.set((await read()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'health_check_up',
    help: 'Each readiness check at scrape time: 1 up, 0 down',
    labelNames: ['check'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [check, result] of Object.entries((await read()).checks))
        this.set({ check }, result.status === 'up' ? 1 : 0);
    },
  });
}

/**
 * `disk_free_bytes{volume}` and `disk_size_bytes{volume}` of the file systems holding these
 * folders, read at scrape time; a folder that does not exist (yet) has no series.
 */
export function diskGauges(registry: Registry, volumes: Readonly<Record<string, string>>): void {
  if (registry.getSingleMetric('disk_free_bytes')) return;
  const read = (pick: (s: { bavail: number; blocks: number; bsize: number }) => number) =>
    function collect(this: Gauge<'volume'>) {
      this.reset();
      for (const [volume, path] of Object.entries(volumes)) {
        try {
          const stats = statfsSync(path);
          this.set({ volume }, pick(stats) * stats.bsize);
        } catch {
          continue;
        }
      }
    };
  new Gauge({
    name: 'disk_free_bytes',
    help: 'Bytes available to the process on the file system of each volume (data: DATA_DIR, files: the local storage folder)',
    labelNames: ['volume'],
    registers: [registry],
    collect: read((s) => s.bavail),
  });
  new Gauge({
    name: 'disk_size_bytes',
    help: 'Size in bytes of the file system of each volume',
    labelNames: ['volume'],
    registers: [registry],
    collect: read((s) => s.blocks),
  });
}

/** The route template of a request (`/api/v1/posts/:id`), or the unmatched label. */
export function routeLabel(request: FastifyRequest): string {
  return request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE);
}
