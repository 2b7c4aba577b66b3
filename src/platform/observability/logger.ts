import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

type SonicBoom = ReturnType<typeof pino.destination>;

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

let cachedSecond = Number.NaN;
let cachedPrefix = '';

/**
 * pino's `isoTime` (`,"time":"2026-01-02T03:04:05.678Z"`, the same text), with the date formatted
 * once per second rather than by `Date#toISOString()` on every line: that call was a measured
 * part of each request's log line in bench/http.
 */
export function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  const second = now - ms;
  if (second !== cachedSecond) {
    cachedSecond = second;
    // "2026-01-02T03:04:05." (the milliseconds and "Z" are the last four characters)
    cachedPrefix = `,"time":"${new Date(second).toISOString().slice(0, -4)}`;
  }
  return `${cachedPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${String(ms)}Z"`;
}

/** The level as its label (`"level":"info"`); the request-line fast path checks for it. */
function levelLabel(label: string): Record<string, unknown> {
  return { level: label };
}

export function loggerOptions(level: string, base: Record<string, unknown> = {}): LoggerOptions {
  return {
    level,
    base: { pid: process.pid, ...base },
    timestamp: isoTime,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: {
      level: levelLabel,
      log: (object) => scrub(object) as Record<string, unknown>,
    },
  };
}

const batched = new Set<BatchedDestination>();
let exitHookInstalled = false;

/**
 * An asynchronous log destination that hands sonic-boom the lines of one event-loop turn as one
 * write. sonic-boom's `write` measures the byte length of its whole pending chunk on every call
 * (and so flattens the concatenated string), and under load, with a write in flight, lines pile up
 * behind it: each line then cost time in proportion to the chunk (up to 16 KB), about half of a
 * request's logging cost in bench/http. Batched, that is paid once per turn. Lines keep their
 * order; at exit the pending lines are written synchronously, like sonic-boom's own.
 */
export class BatchedDestination implements DestinationStream {
  readonly stream: SonicBoom;
  #pending = '';
  #scheduled = false;

  constructor(stream: SonicBoom) {
    this.stream = stream;
    batched.add(this);
    stream.on('close', () => batched.delete(this));
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const destination of batched) destination.flushSync();
      });
    }
  }

  write(line: string): void {
    this.#pending += line;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#writePending);
    }
  }

  /** Hands the lines logged so far to sonic-boom (which writes them asynchronously). */
  writePending(): void {
    if (this.#pending === '') return;
    const lines = this.#pending;
    this.#pending = '';
    this.stream.write(lines);
  }

  readonly #writePending = (): void => {
    this.#scheduled = false;
    this.writePending();
  };

  /** pino's `logger.flush(cb)`. */
  flush(callback?: (error?: Error) => void): void {
    this.writePending();
    this.stream.flush(callback);
  }

  flushSync(): void {
    this.writePending();
    try {
      this.stream.flushSync();
    } catch {
      // Not open yet, or already closed: nothing more can be written.
    }
  }
}

/** The asynchronous destination the process logger writes to: stdout by default. */
export function createLogDestination(dest: string | number = 1): BatchedDestination {
  return new BatchedDestination(pino.destination({ dest, sync: false }));
}

const destinations = new WeakMap<Logger, BatchedDestination>();

/** The process logger: JSON lines on stdout with secrets redacted. */
export function createLogger(settings: LoggerSettings): Logger {
  const options = loggerOptions(settings.level, settings.base);
  const destination = settings.destination ?? createLogDestination();
  const logger = pino(options, destination);
  if (destination instanceof BatchedDestination) destinations.set(logger, destination);
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
  const destination = destinations.get(logger);
  if (!destination) return new Promise((resolve) => logger.flush(() => resolve()));
  destination.writePending();
  const stream = destination.stream;
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

const requestParents = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>();

/**
 * Fastify's `childLoggerFactory`: the per-request child that adds `requestId` to every line of the
 * request, made on pino's cheap path. Fastify's default passes an options object, which makes pino
 * rebuild the formatters of every child; and a child of the root logger always rebuilds them. So
 * each request's child is made, without options, from one intermediate child of the logger (the
 * same lines: it adds no bindings). Route log levels and serializers still take pino's full path.
 */
export const requestChildLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (
  logger,
  bindings,
  options,
) => {
  if (options.level !== undefined || options.serializers !== undefined)
    return logger.child(bindings, options);
  let parent = requestParents.get(logger);
  if (!parent) requestParents.set(logger, (parent = logger.child({})));
  return parent.child(bindings);
};

/** The fields of the one completion line each request gets. */
export interface RequestLine {
  method: string;
  route: string;
  url: string;
  statusCode: number;
  durationMs: number;
  ip: string;
  userId: string | undefined;
}

export type RequestLineLevel = 'info' | 'warn' | 'error';

const LEVEL_VALUES: Record<RequestLineLevel, number> = { info: 30, warn: 40, error: 50 };
const MESSAGE = 'request completed';
const MESSAGE_JSON = `,"msg":${JSON.stringify(MESSAGE)}}\n`;
const { chindingsSym, streamSym, timeSym, formattersSym } = pino.symbols;

// Query parameters whose values are credentials in someone's URL scheme (mail links, OAuth
// callbacks): their values never reach a log line.
const SENSITIVE_QUERY =
  /([?&](?:token|code|state|password|secret|access_token|refresh_token|api_key|key)=)[^&#]*/gi;

/** The request target as logged: at most 200 characters, credential-like query values masked. */
export function loggableUrl(url: string): string {
  const short = url.length > 200 ? `${url.slice(0, 200)}…` : url;
  return short.includes('?') ? short.replace(SENSITIVE_QUERY, `$1${CENSOR}`) : short;
}

type FastPathLogger = { levelVal: number } & Record<symbol, unknown>;

/**
 * Writes a request's completion line: the same JSON line as `log[level](line, 'request
 * completed')` (level, time, the logger's bindings, the fields, msg), built directly instead of
 * through pino's generic loop over the object, its log formatter and its per-value serializers.
 * That loop was the largest single cost of a request in bench/http; the fields here are fixed,
 * primitive and carry no secret (the URL's credential-like query values are masked), so nothing
 * is lost by skipping it. pino's public `symbols` give the bindings, time function and destination.
 * Loggers not made with `loggerOptions` take pino's ordinary path.
 */
export function writeRequestLine(
  log: FastifyBaseLogger,
  level: RequestLineLevel,
  line: RequestLine,
): void {
  const fast = log as unknown as FastPathLogger;
  const bindings = fast[chindingsSym];
  const stream = fast[streamSym] as { write(line: string): unknown } | undefined;
  const time = fast[timeSym] as (() => string) | undefined;
  const formatters = fast[formattersSym] as { level?: unknown } | undefined;
  // Only loggers made with `loggerOptions` (their level label and time): others take pino's path.
  if (
    typeof bindings !== 'string' ||
    stream === undefined ||
    time === undefined ||
    formatters?.level !== levelLabel
  ) {
    log[level](line, MESSAGE);
    return;
  }
  if (fast.levelVal > LEVEL_VALUES[level]) return;
  stream.write(
    `{"level":"${level}"${time()}${bindings},"method":${JSON.stringify(line.method)},"route":${JSON.stringify(line.route)},"url":${JSON.stringify(line.url)},"statusCode":${String(line.statusCode)},"durationMs":${String(line.durationMs)},"ip":${JSON.stringify(line.ip)}${line.userId === undefined ? '' : `,"userId":${JSON.stringify(line.userId)}`}${MESSAGE_JSON}`,
  );
}
