import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import { Type } from 'typebox';
import { HttpCodes, HttpError } from '../http/index.ts';
import type { Lifecycle } from '../lifecycle/index.ts';
import type { HealthChecks } from './health.ts';
import { loggableUrl, writeRequestLine, type RequestLine } from './logger.ts';
import { instrumentHttp, readinessGauges, routeLabel } from './metrics.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user, set by the identity area; logged on the completion line. */
    userId?: string;
  }
}

export interface ObservabilityOptions {
  registry: Registry;
  health: HealthChecks;
  lifecycle: Lifecycle;
  metricsToken: string | null;
  version: string;
  /** Extra status for `GET /health` (circuit breakers, queues) from later areas. */
  details?: () => Record<string, unknown>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant-time check of `Authorization: Bearer <token>` (hashing first makes lengths equal). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7)), digest(token));
}

function requireToken(token: string | null) {
  return async function requireMetricsToken(request: FastifyRequest, reply: FastifyReply) {
    if (token !== null && !bearerMatches(request.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(HttpCodes.UNAUTHORIZED, { detail: 'A valid bearer token is required.' });
    }
  };
}

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  latencyMs: Type.Number(),
  error: Type.Optional(Type.String()),
});
const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Record(Type.String(), CheckSchema),
});
const HealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
    version: Type.String(),
    uptimeSeconds: Type.Integer({ minimum: 0 }),
    shuttingDown: Type.Boolean(),
    memory: Type.Object({
      rssBytes: Type.Integer(),
      heapUsedBytes: Type.Integer(),
      heapTotalBytes: Type.Integer(),
      externalBytes: Type.Integer(),
    }),
    checks: Type.Record(Type.String(), CheckSchema),
  },
  {
    additionalProperties: true,
    description:
      'Readiness with version, uptime and memory, plus what later areas add (`circuits`).',
  },
);

/** One completion log line per request, Prometheus metrics, and the health endpoints. */
export async function registerObservability(
  app: FastifyInstance,
  options: ObservabilityOptions,
): Promise<void> {
  const { registry, health, lifecycle } = options;

  // One completion hook for the log line and the metrics: each hook is a per-request cost.
  const recordMetrics = instrumentHttp(registry);
  app.addHook('onResponse', (request, reply, done) => {
    const route = routeLabel(request);
    const statusCode = reply.statusCode;
    const elapsedMs = reply.elapsedTime;
    const line: RequestLine = {
      method: request.method,
      route,
      url: loggableUrl(request.url),
      statusCode,
      durationMs: Math.round(elapsedMs * 100) / 100,
      ip: request.ip,
      userId: request.userId,
    };
    // 503s are expected answers (draining, shedding, a dependency down): warn, and keep error for failures.
    writeRequestLine(
      request.log,
      statusCode === 503 ? 'warn' : statusCode >= 500 ? 'error' : 'info',
      line,
    );
    recordMetrics(line.method, route, statusCode, elapsedMs / 1000);
    done();
  });

  const operational = { tags: ['operations'] };
  app.get(
    '/metrics',
    {
      onRequest: requireToken(options.metricsToken),
      schema: {
        ...operational,
        summary: 'Prometheus metrics',
        security: [{ metricsToken: [] }],
        errorCodes: [HttpCodes.UNAUTHORIZED],
        produces: ['text/plain'],
        response: {
          200: {
            description: 'The Prometheus text exposition format.',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );

  app.get(
    '/health/live',
    {
      schema: {
        ...operational,
        summary: 'Liveness: the process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  const readiness = async () => {
    if (lifecycle.shuttingDown)
      return { ok: false, checks: {} as Record<string, never>, shuttingDown: true };
    return { ...(await health.run()), shuttingDown: false };
  };
  readinessGauges(registry, readiness);

  app.get(
    '/health/ready',
    {
      schema: {
        ...operational,
        summary: 'Readiness: every dependency answers',
        description:
          'Runs every registered check with its own timeout. 503 while any is down or the process is shutting down.',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (_request, reply) => {
      const result = await readiness();
      reply.code(result.ok ? 200 : 503);
      return {
        status: result.ok ? ('ok' as const) : ('unavailable' as const),
        checks: result.checks,
      };
    },
  );

  const started = Date.now();
  app.get(
    '/health',
    {
      onRequest: requireToken(options.metricsToken),
      schema: {
        ...operational,
        summary: 'Status: readiness plus version, uptime and memory',
        description: '503 (with the same body) while a check is down or the process shuts down.',
        security: [{ metricsToken: [] }],
        errorCodes: [HttpCodes.UNAUTHORIZED],
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const result = await readiness();
      const memory = process.memoryUsage();
      reply.code(result.ok ? 200 : 503);
      return {
        status: result.ok ? 'ok' : 'unavailable',
        version: options.version,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        shuttingDown: result.shuttingDown,
        memory: {
          rssBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
          heapTotalBytes: memory.heapTotal,
          externalBytes: memory.external,
        },
        checks: result.checks,
        ...(options.details?.() ?? {}),
      };
    },
  );
}
