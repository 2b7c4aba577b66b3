import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.ts';
import type { Lifecycle } from '../lifecycle/index.ts';
import { HttpCodes, HttpError } from './errors.ts';
import { registerOpenApi, type OpenApiInfo } from './openapi.ts';
import { recordRoutes } from './route-errors.ts';
import { makeErrorHandler } from './problem.ts';
import { registerNotFound } from './not-found.ts';
import { createHandlerDeadlines } from './deadlines.ts';
import { makeArrivalCheck, makeSecurityHeaders, registerSecurity } from './security.ts';
import { registerVersioning, setVersionHeaders } from './versioning.ts';

export interface HttpOptions {
  config: Config;
  lifecycle: Lifecycle;
  openapi: OpenApiInfo;
  reportError?: (error: unknown, request: FastifyRequest) => void;
  translators?: readonly ((error: unknown) => HttpError | undefined)[];
}

/** Routes that must answer even when the server sheds load. */
const NEVER_SHED = new Set(['/health/live', '/health/ready', '/metrics']);

/** The HTTP contract: problem errors, security, versioning, load shedding, OpenAPI. */
export async function registerHttp(app: FastifyInstance, options: HttpOptions): Promise<void> {
  const { config, lifecycle } = options;
  const typeBase = config.http.problemTypeBase;
  // First: every route added after this is recorded with its final config, schema and hooks.
  recordRoutes(app);

  app.setErrorHandler(
    makeErrorHandler({
      typeBase,
      exposeInternalErrors: config.env === 'development',
      reportError: options.reportError,
      translators: options.translators,
    }),
  );
  // 404 ROUTE_NOT_FOUND, or 405 METHOD_NOT_ALLOWED with `Allow` when the path has other methods.
  registerNotFound(app);
  // JSON only: a JSON body sent as text/plain is refused with 415, not parsed as a string.
  app.removeContentTypeParser('text/plain');

  await registerSecurity(app, config);
  // One arrival hook: the handler deadline starts, then the URL and host checks.
  const deadlines = createHandlerDeadlines(app, config.http.handlerTimeoutMs);
  const arrivalCheck = makeArrivalCheck(config);
  app.addHook('onRequest', (request, reply, done) => {
    deadlines.start(reply, request.routeOptions.config.handlerTimeoutMs);
    done(arrivalCheck(request));
  });
  registerVersioning(app);

  if (config.http.maxEventLoopDelayMs > 0) {
    const interval = config.http.pressureSampleIntervalMs;
    const retryAfter = Math.max(1, Math.ceil(interval / 1000) * 2);
    // under-pressure samples from registration on, so the first sample after start-up averages in
    // the synchronous build (schema compilation, plugin set-up: seconds on a loaded machine) and
    // shed the first requests of a server that had just become ready. Nothing is shed until two
    // samples have been taken after `ready`: the second covers only time after it.
    let readyAt = Number.POSITIVE_INFINITY;
    app.addHook('onReady', (done) => {
      readyAt = performance.now();
      done();
    });
    await app.register(underPressure, {
      maxEventLoopDelay: config.http.maxEventLoopDelayMs,
      sampleInterval: interval,
      retryAfter,
      pressureHandler: async (request: FastifyRequest) => {
        if (NEVER_SHED.has(request.routeOptions.url ?? '')) return;
        if (performance.now() - readyAt < 2 * interval) return;
        throw new HttpError(HttpCodes.OVERLOADED, {
          headers: { 'retry-after': String(retryAfter) },
        });
      },
    });
  }

  // One synchronous onSend hook for every header the platform adds: hooks are per-request cost.
  const securityHeaders = makeSecurityHeaders(config);
  app.addHook('onSend', (request, reply, payload, done) => {
    deadlines.finish(reply);
    securityHeaders(request, reply);
    setVersionHeaders(request, reply);
    reply.header('x-request-id', request.id);
    if (lifecycle.closingConnections) reply.header('connection', 'close');
    done(null, payload);
  });

  await registerOpenApi(app, options.openapi);
}
