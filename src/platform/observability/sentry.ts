import * as Sentry from '@sentry/node';

export interface ErrorReporter {
  report(error: unknown, context: { requestId: string; method: string; route: string }): void;
  flush(timeoutMs: number): Promise<void>;
}

/** Sends unexpected 5xx errors to Sentry when a DSN is configured; nothing is sent otherwise. */
export function createErrorReporter(
  dsn: string | null,
  environment: string,
  release: string,
): ErrorReporter | null {
  if (!dsn) return null;
  // Errors only: no default integrations, so nothing is patched and no traces or PII leave the process.
  Sentry.initWithoutDefaultIntegrations({ dsn, environment, release, tracesSampleRate: 0 });
  return {
    report(error, context) {
      Sentry.withScope((scope) => {
        scope.setTag('requestId', context.requestId);
        scope.setTag('route', context.route);
        scope.setTag('method', context.method);
        Sentry.captureException(error);
      });
    },
    async flush(timeoutMs) {
      await Sentry.flush(timeoutMs);
    },
  };
}
