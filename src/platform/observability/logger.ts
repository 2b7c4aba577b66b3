import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Keys whose values never reach a log line, at any depth up to `SCRUB_DEPTH`. */
export const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'accessToken',
  'refreshToken',
  'mfaToken',
  'secret',
  'apiKey',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
]);
const SCRUB_DEPTH = 4;
const CENSOR = '[REDACTED]';

/** Header paths pino redacts when request/response objects are logged. */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/**
 * Replaces sensitive keys in one pass over a log object, copying only objects that hold one.
 * Written here rather than with pino's wildcard redact paths (`*.*.password`): those re-walk every
 * path on each line and cost more than half of a request's time in the HTTP benchmark.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth >= SCRUB_DEPTH || value === null || typeof value !== 'object' || value instanceof Error)
    return value;
  if (Array.isArray(value)) {
    const items = value as unknown[];
    let copy: unknown[] | undefined;
    items.forEach((item, i) => {
      const clean = scrub(item, depth + 1);
      if (clean !== item) (copy ??= [...items])[i] = clean;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    const clean = SENSITIVE_KEYS.has(key) ? CENSOR : scrub(item, depth + 1);
    if (clean !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = clean;
  }
  return copy ?? value;
}

export interface LoggerSettings {
  level: string;
  /** Where lines go; stdout by default (tests pass a capture stream). */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function loggerOptions(level: string, base: Record<string, unknown> = {}): LoggerOptions {
  return {
    level,
    base: { pid: process.pid, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => scrub(object) as Record<string, unknown>,
    },
  };
}

const destinations = new WeakMap<Logger, ReturnType<typeof pino.destination>>();

/** The process logger: JSON lines on stdout with secrets redacted. */
export function createLogger(settings: LoggerSettings): Logger {
  const options = loggerOptions(settings.level, settings.base);
  if (settings.destination) return pino(options, settings.destination);
  const stdout = pino.destination({ sync: false });
  const logger = pino(options, stdout);
  destinations.set(logger, stdout);
  return logger;
}

/**
 * Resolves once every line logged so far has reached stdout (at most `capMs` later).
 * `logger.flush(cb)` is not enough: for the unbuffered async destination it calls back at once
 * even with a write in flight, and pino's exit hook then writes later lines first, so the last
 * lines came out of order or not at all. An empty write makes the destination emit 'drain' once
 * everything before it is written.
 */
export function flushLogger(logger: Logger, capMs = 1_000): Promise<void> {
  const stream = destinations.get(logger);
  if (!stream) return new Promise((resolve) => logger.flush(() => resolve()));
  return new Promise((resolve) => {
    const timer = setTimeout(done, capMs);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    stream.once('drain', done);
    stream.write('');
  });
}

export type { Logger };
