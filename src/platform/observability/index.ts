export {
  BatchedDestination,
  createLogDestination,
  createLogger,
  flushLogger,
  loggerOptions,
  REDACT_PATHS,
  registerLogMetrics,
  requestChildLogger,
} from './logger.ts';
export type { Logger, LoggerSettings } from './logger.ts';
export {
  createMetricsRegistry,
  diskGauges,
  fastCounter,
  readinessGauges,
  routeLabel,
  UNMATCHED_ROUTE,
  type FastCounter,
} from './metrics.ts';
export { HealthChecks } from './health.ts';
export type { CheckResult, HealthCheck } from './health.ts';
export { createErrorReporter } from './sentry.ts';
export type { ErrorReporter } from './sentry.ts';
export { registerObservability, bearerMatches } from './plugin.ts';
export {
  currentTraceparent,
  runInJobSpan,
  startTracing,
  traceLogFields,
  tracingEnabled,
  tracingRequested,
} from './tracing.ts';
export type { JobSpanInfo, StartTracingOptions, Tracing, TracingEnv } from './tracing.ts';
export type { ObservabilityOptions } from './plugin.ts';
