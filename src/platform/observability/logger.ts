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

/** The process logger: JSON lines on stdout with secrets redacted. */
export function createLogger(settings: LoggerSettings): Logger {
  const options = loggerOptions(settings.level, settings.base);
  return settings.destination
    ? pino(options, settings.destination)
    : pino(options, pino.destination({ sync: false }));
}

export type { Logger };
