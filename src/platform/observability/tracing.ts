/**
 * OpenTelemetry tracing: off by default, on when the standard `OTEL_*` variables ask for it
 * (`tracingRequested`). When off nothing of the SDK is loaded and every helper here returns at its
 * first test of one module-level flag: the only cost is that test.
 *
 * What is traced, and how (the cost is measured by bench/http, the behaviour by
 * test/e2e/tracing.test.ts):
 *
 * - **Incoming HTTP**: one SERVER span per request (`GET /api/v1/posts/:id`), child of the W3C
 *   `traceparent` the client sent, made by Fastify hooks added to every instance as it is
 *   created (Fastify's `fastify.initialization` diagnostics channel), so no app code changes.
 *   Written here rather than with `@opentelemetry/instrumentation-http` (which needs a loader
 *   hook under ESM, and wraps every request, response and socket event and records a dozen
 *   attributes for the same one span) or `@fastify/otel` (which by default makes a span for
 *   every hook and the handler; with those off it names every span `request` and loses the
 *   context after a body is read). The health and metrics routes are not traced (probes and
 *   scrapes every few seconds would be most of the traces).
 * - **PostgreSQL and Redis**: the official `pg` and `ioredis` instrumentations, applied to the
 *   loaded modules by their own patch functions (`applyPatches`). Under ESM their usual
 *   `require` hook never sees `pg` or `ioredis` (imported, not required), and an `import` hook
 *   needs `node --import` before the first module loads; the patches wrap methods on the shared
 *   prototypes (`Client.prototype.query`, `Redis.prototype.sendCommand`), so applying them after
 *   load reaches every pool and client, pg-boss's included, with no loader and no change to how
 *   the process starts. Only queries and commands inside a traced request or job make spans
 *   (`requireParentSpan`): pollers and health checks do not fill the backend. Redis spans carry
 *   the command name only, never keys or values (keys hold user ids and IPs).
 * - **Outbound HTTP** (undici and `fetch`: webhooks, social platforms, OIDC): the official undici
 *   instrumentation, which listens on undici's diagnostics channels (no patching) and sends
 *   `traceparent` with each request made inside a trace.
 * - **Jobs**: `send` stores the current `traceparent` in the job's metadata (beside `requestId`,
 *   never in the payload the schema checks); the worker runs the job inside a CONSUMER span that
 *   is a child of that context and links to it, so a request and the jobs it enqueued are one
 *   trace (`runInJobSpan`).
 * - **Logs**: every line written inside a span carries `trace_id` and `span_id` (`traceLogFields`,
 *   the logger's mixin and the request completion line).
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { subscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The variables read by `tracingRequested` (the SDK reads the rest of the `OTEL_*` family). */
export type TracingEnv = Readonly<Record<string, string | undefined>>;

/**
 * The process environment. The `OTEL_*` family is read here and by the SDK itself, not through
 * src/platform/config: the SDK reads the standard variables from the environment (the spec's
 * contract with operators), and the switch must read the same ones so the two never disagree.
 */
// eslint-disable-next-line no-restricted-syntax
const processEnv = (): TracingEnv => process.env;

const truthy = (value: string | undefined) => value?.trim().toLowerCase() === 'true';
const present = (value: string | undefined) => value !== undefined && value.trim() !== '';

/**
 * The switch: tracing is on when an exporter is asked for, by an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or by naming one in
 * `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `zipkin`); and off when `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none`, whatever else is set. Nothing set: off.
 */
export function tracingRequested(env: TracingEnv = processEnv()): boolean {
  if (truthy(env.OTEL_SDK_DISABLED)) return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (exporters.length > 0 && exporters.every((s) => s === 'none')) return false;
  return (
    exporters.length > 0 ||
    present(env.OTEL_EXPORTER_OTLP_ENDPOINT) ||
    present(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  );
}

/** The running SDK: `shutdown` exports the spans still buffered, then stops. */
export interface Tracing {
  readonly serviceName: string;
  shutdown(): Promise<void>;
}

/** Set once the SDK runs: every helper below tests it first (the whole cost when off). */
let tracer: Tracer | null = null;
let running: Tracing | null = null;

/** True once `startTracing` has started the SDK in this process. */
export function tracingEnabled(): boolean {
  return tracer !== null;
}

export interface StartTracingOptions {
  env?: TracingEnv;
  /** `service.name` when `OTEL_SERVICE_NAME` is not set. */
  defaultServiceName?: string;
  serviceVersion?: string;
}

/**
 * Starts the OpenTelemetry SDK when `tracingRequested(env)`; null (and nothing loaded) otherwise.
 * Exporter, protocol (`http/protobuf` by default, `http/json`, `grpc`), sampler
 * (`OTEL_TRACES_SAMPLER`, default `parentbased_always_on`), batching (`OTEL_BSP_*`), propagators
 * and resource attributes come from the standard variables, read by the SDK itself. Call it once,
 * before the Fastify instance is made; a second call returns the first SDK.
 */
export async function startTracing(options: StartTracingOptions = {}): Promise<Tracing | null> {
  const env = options.env ?? processEnv();
  if (running) return running;
  if (!tracingRequested(env)) return null;
  // Loaded only when on: the SDK and its exporters are a few hundred modules.
  const [
    { NodeSDK },
    { PgInstrumentation },
    { IORedisInstrumentation },
    { UndiciInstrumentation },
  ] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  const pgInstrumentation = new PgInstrumentation({
    requireParentSpan: true,
    // Statement text only (`$1` placeholders), never the values bound to it.
    enhancedDatabaseReporting: false,
  });
  const redisInstrumentation = new IORedisInstrumentation({
    requireParentSpan: true,
    dbStatementSerializer: (command) => command,
  });
  const undiciInstrumentation = new UndiciInstrumentation({ requireParentforSpans: true });
  const serviceName = present(env.OTEL_SERVICE_NAME)
    ? (env.OTEL_SERVICE_NAME as string)
    : (options.defaultServiceName ?? 'groundwork');
  const sdk = new NodeSDK({
    serviceName,
    instrumentations: [pgInstrumentation, redisInstrumentation, undiciInstrumentation],
    // Traces only: no metrics (Prometheus has them) and no log export (stdout has the lines).
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  applyPatches(pgInstrumentation, 'pg');
  applyPatches(redisInstrumentation, 'ioredis');
  tracer = trace.getTracer('groundwork', options.serviceVersion);
  subscribe('fastify.initialization', onFastifyInstance);
  running = {
    serviceName,
    async shutdown() {
      tracer = null;
      running = null;
      await sdk.shutdown();
    },
  };
  return running;
}

interface Patchable {
  getModuleDefinitions(): readonly {
    name: string;
    patch?: (exports: unknown, version?: string) => unknown;
  }[];
}

const requireHere = createRequire(import.meta.url);

/**
 * Applies an instrumentation's patch to the module as loaded (see the top of this file for why):
 * the module resolved from here is the one the platform and pg-boss import.
 */
function applyPatches(instrumentation: Patchable, moduleName: string): void {
  const exports: unknown = requireHere(moduleName);
  const { version } = requireHere(`${moduleName}/package.json`) as { version: string };
  for (const definition of instrumentation.getModuleDefinitions())
    if (definition.name === moduleName) definition.patch?.(exports, version);
}

// ---------------------------------------------------------------------------------------------
// Logs

/** `trace_id` and `span_id` of the active span; undefined outside one or when tracing is off. */
export function traceLogFields(): { trace_id: string; span_id: string } | undefined {
  if (tracer === null) return undefined;
  const span = trace.getSpan(context.active());
  if (span === undefined) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** The same fields as JSON text for a hand-written line (`,"trace_id":"…","span_id":"…"`). */
export function traceLogSuffix(): string {
  if (tracer === null) return '';
  const fields = traceLogFields();
  return fields ? `,"trace_id":"${fields.trace_id}","span_id":"${fields.span_id}"` : '';
}

// ---------------------------------------------------------------------------------------------
// Jobs

/**
 * The W3C `traceparent` of the active span, to store with a job; undefined outside a trace or
 * when tracing is off.
 */
export function currentTraceparent(): string | undefined {
  if (tracer === null) return undefined;
  if (trace.getSpan(context.active()) === undefined) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

export interface JobSpanInfo {
  queue: string;
  id: string;
  attempt: number;
  /** What `currentTraceparent` gave when the job was enqueued. */
  traceparent?: string | null;
}

/**
 * Runs one job inside its CONSUMER span: a child of the enqueuing context (same trace id) with a
 * link to it. `failure` tells from the job's result whether it failed (and why). Without tracing,
 * `run()` as is.
 */
export async function runInJobSpan<R>(
  info: JobSpanInfo,
  run: () => Promise<R>,
  failure: (result: R) => string | undefined,
): Promise<R> {
  if (tracer === null) return run();
  let parent = ROOT_CONTEXT;
  const links: Link[] = [];
  if (typeof info.traceparent === 'string') {
    parent = propagation.extract(ROOT_CONTEXT, { traceparent: info.traceparent });
    const enqueuer = trace.getSpanContext(parent);
    if (enqueuer) links.push({ context: enqueuer, attributes: { 'groundwork.link': 'enqueued' } });
  }
  const span = tracer.startSpan(
    `${info.queue} process`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': 'pg-boss',
        'messaging.operation.type': 'process',
        'messaging.destination.name': info.queue,
        'messaging.message.id': info.id,
        'groundwork.job.attempt': info.attempt,
      },
    },
    parent,
  );
  try {
    const result = await context.with(trace.setSpan(parent, span), run);
    const failed = failure(result);
    if (failed !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: failed });
    return result;
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
    throw error;
  } finally {
    span.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Incoming HTTP (Fastify)

const SPAN = Symbol('groundwork.tracing.span');
const CONTEXT = Symbol('groundwork.tracing.context');

interface TracedRequest {
  [SPAN]: Span | null;
  [CONTEXT]: Context | null;
}

/** Routes not traced: probes and scrapes. */
function untraced(route: string | undefined): boolean {
  return route === '/metrics' || (route !== undefined && route.startsWith('/health'));
}

function onFastifyInstance(message: unknown): void {
  const app = (message as { fastify?: FastifyInstance }).fastify;
  if (app) addTracingHooks(app);
}

/**
 * The server span's hooks: `onRequest` starts it (child of the client's `traceparent`) and runs
 * the rest of the request inside it; `preHandler` enters it again (reading a body runs the
 * parser's callbacks in the connection's context, not the request's); `onResponse` ends it and
 * runs the later completion hooks (the request's log line) inside it.
 */
export function addTracingHooks(app: FastifyInstance): void {
  app.decorateRequest(SPAN, null);
  app.decorateRequest(CONTEXT, null);
  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    if (tracer === null || untraced(route)) {
      done();
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const url = request.url;
    const query = url.indexOf('?');
    const span = tracer.startSpan(
      `${request.method} ${route ?? 'unmatched'}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'url.path': query === -1 ? url : url.slice(0, query),
          'url.scheme': request.protocol,
          ...(route === undefined ? {} : { 'http.route': route }),
          'client.address': request.ip,
          'groundwork.request_id': request.id,
        },
      },
      parent,
    );
    const traced = request as unknown as TracedRequest;
    traced[SPAN] = span;
    traced[CONTEXT] = trace.setSpan(parent, span);
    context.with(traced[CONTEXT], done);
  });
  app.addHook('preHandler', (request, _reply, done) => {
    const ctx = (request as unknown as TracedRequest)[CONTEXT];
    if (ctx === null) done();
    else context.with(ctx, done);
  });
  app.addHook('onError', (request, _reply, error, done) => {
    // Only unexpected errors (no HTTP status of their own, or a 5xx) become span events.
    const span = (request as unknown as TracedRequest)[SPAN];
    const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
    const code = typeof status === 'number' ? status : statusCode;
    if (span !== null && (typeof code !== 'number' || code >= 500)) span.recordException(error);
    done();
  });
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
    const traced = request as unknown as TracedRequest;
    const span = traced[SPAN];
    const ctx = traced[CONTEXT];
    if (span === null || ctx === null) {
      done();
      return;
    }
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    traced[SPAN] = null;
    context.with(ctx, done);
  });
}
