import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

const SENSITIVE_KEYS = [
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
];

/** Paths pino redacts: auth headers, cookies, and any password/token/secret field up to three levels deep. */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  ...SENSITIVE_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
];

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
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label) => ({ level: label }) },
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
