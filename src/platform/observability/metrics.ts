import type { FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Route label for requests that matched no route, so unknown paths cannot grow label cardinality. */
export const UNMATCHED_ROUTE = '__unmatched__';

/** One Prometheus registry per app instance, with default process metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

type HttpLabels = Readonly<{ method: string; route: string; status_code: string }>;

/**
 * Makes `http_requests_total` and `http_request_duration_seconds`, labelled by method, route
 * template and status, and returns the function that records one completed request (called from
 * the single completion hook in `plugin.ts`). The label objects are made once per route, method
 * and status and reused, rather than built and stringified on every request.
 */
export function instrumentHttp(
  registry: Registry,
): (method: string, route: string, statusCode: number, seconds: number) => void {
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests completed',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration from arrival to response',
    labelNames,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // route -> "METHOD status" -> labels; bounded by the routes and the status codes they answer.
  const cache = new Map<string, Map<string, HttpLabels>>();
  return (method, route, statusCode, seconds) => {
    let byRoute = cache.get(route);
    if (!byRoute) cache.set(route, (byRoute = new Map<string, HttpLabels>()));
    const key = `${method} ${String(statusCode)}`;
    let labels = byRoute.get(key);
    if (!labels) {
      labels = Object.freeze({ method, route, status_code: String(statusCode) });
      byRoute.set(key, labels);
    }
    requests.inc(labels);
    duration.observe(labels, seconds);
  };
}

/** The route template of a request (`/api/v1/posts/:id`), or the unmatched label. */
export function routeLabel(request: FastifyRequest): string {
  return request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE);
}
