import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { traceLogFields, traceLogSuffix, tracingEnabled } from './tracing.ts';

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

/**
 * `trace_id` and `span_id` on each line written inside a span (pino's mixin, only when tracing).
 * A new object each time: pino merges the line's fields into what the mixin returns.
 */
const traceMixin = () => traceLogFields() ?? {};

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
    // Without tracing there is no mixin at all: pino then skips the call on every line.
    ...(tracingEnabled() ? { mixin: traceMixin } : {}),
  };
}

const batched = new Set<BatchedDestination>();
let exitHookInstalled = false;

/** Bytes of the slab lines are encoded into. */
const SLAB_BYTES = 64 * 1024;
/** Lines go to sonic-boom once this many bytes are pending (its own largest write)... */
const WRITE_BYTES = 16 * 1024;
/** ...or this long after the first of them was logged. */
export const WRITE_DELAY_MS = 50;

/**
 * An asynchronous log destination that encodes each line into a byte slab as it is logged, and
 * hands sonic-boom (in its buffer mode) the pending lines as one view of the slab once 16 KB are
 * pending or 50 ms after the first of them. In its text mode sonic-boom measures the byte length
 * of its pending string on every write (and so flattens the concatenated lines), then `fs.write`
 * encodes the string again; and each write is a round trip through libuv's thread pool. Per
 * request, under load, these were the largest part of its logging cost in bench/http. Here each
 * line is encoded once, straight into its final bytes, and a write carries up to 16 KB of lines.
 * Lines keep their order; a slab is never written over (a full one is left to sonic-boom and a
 * new one taken). Pending lines are written synchronously at exit (like sonic-boom's own), by
 * `flushLogger` at shutdown and after a fatal error: only a process killed outright (SIGKILL, the
 * OOM killer) loses them, at most the last 50 ms of lines, as with any asynchronous logger.
 */
export class BatchedDestination implements DestinationStream {
  readonly stream: SonicBoom;
  #slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Where the lines not yet handed to sonic-boom start, and where the next line goes. */
  #start = 0;
  #end = 0;
  #scheduled = false;

  /** Lines dropped because the destination failed (a full disk) until `MAX_PENDING_BYTES` filled. */
  droppedLines = 0;
  /** Writes the destination refused (ENOSPC, EIO...): each is retried with the next lines. */
  writeErrors = 0;

  constructor(stream: SonicBoom) {
    this.stream = stream;
    batched.add(this);
    // A failed write (a full disk) must not take the process down: sonic-boom keeps the lines and
    // tries them again with the next write; past `MAX_PENDING_BYTES` it drops new ones ('drop').
    stream.on('error', () => {
      this.writeErrors += 1;
      // Once the kept lines reach the cap, new writes are dropped without a retry: retry here.
      if (this.#retry === undefined)
        this.#retry = setTimeout(this.#retryWrite, WRITE_RETRY_MS).unref();
    });
    stream.on('drop', (data: Buffer | string) => {
      this.droppedLines += countLines(data);
    });
    stream.on('close', () => batched.delete(this));
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const destination of batched) destination.flushSync();
      });
    }
  }

  write(line: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    if (this.#end + line.length * 3 > this.#slab.length) {
      this.writePending();
      if (line.length * 3 > SLAB_BYTES) {
        this.stream.write(Buffer.from(line) as unknown as string);
        return;
      }
      this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.#start = this.#end = 0;
    }
    this.#end += this.#slab.write(line, this.#end);
    if (this.#end - this.#start >= WRITE_BYTES) this.writePending();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#writePending, WRITE_DELAY_MS).unref();
    }
  }

  /** Hands the lines logged so far to sonic-boom (which writes them asynchronously). */
  writePending(): void {
    if (this.#end === this.#start) return;
    const lines = this.#slab.subarray(this.#start, this.#end);
    this.#start = this.#end;
    // sonic-boom's buffer mode takes bytes; its type only declares strings.
    this.stream.write(lines as unknown as string);
  }

  #retry: NodeJS.Timeout | undefined;

  readonly #retryWrite = (): void => {
    this.#retry = undefined;
    try {
      // An empty write makes sonic-boom write what it kept (or fail again, and retry later).
      this.stream.write(Buffer.alloc(0) as unknown as string);
    } catch {
      // Closed meanwhile: nothing more can be written.
    }
  };

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

/** How soon a destination that refused a write is tried again when no new line comes. */
const WRITE_RETRY_MS = 1_000;

/** Bytes of lines kept for a destination that refuses writes (a full disk) before new ones drop. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;

function countLines(data: Buffer | string): number {
  let lines = 0;
  for (let at = data.indexOf('\n'); at >= 0; at = data.indexOf('\n', at + 1)) lines += 1;
  return lines;
}

/** The asynchronous destination the process logger writes to: stdout by default. */
export function createLogDestination(dest: string | number = 1): BatchedDestination {
  return new BatchedDestination(
    pino.destination({ dest, sync: false, contentMode: 'buffer', maxLength: MAX_PENDING_BYTES }),
  );
}

/**
 * Counts, on `registry`, the log lines `logger` dropped and the writes its destination refused
 * (`log_lines_dropped_total`, `log_write_errors_total`): a full log disk is seen in the metrics.
 */
export function registerLogMetrics(logger: Logger, registry: Registry): void {
  const destination = destinations.get(logger);
  new Counter({
    name: 'log_lines_dropped_total',
    help: 'Log lines dropped because the log destination refused writes (a full disk) for too long.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(destination?.droppedLines ?? 0);
    },
  });
  new Counter({
    name: 'log_write_errors_total',
    help: 'Writes the log destination refused (ENOSPC, EIO); their lines are retried.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(destination?.writeErrors ?? 0);
    },
  });
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
    stream.write(Buffer.alloc(0) as unknown as string);
  });
}

export type { Logger };

const requestParents = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>();

type LogArguments = Parameters<FastifyBaseLogger['info']>;

/**
 * A request's logger, made on demand. Most requests log nothing but their completion line, which
 * `writeRequestLine` writes from the parent's bindings and the request id without a pino child;
 * making that child on every request (pino copies its bindings and rebuilds its prototype chain)
 * was a measured part of each request in bench/http. The child is made the first time the
 * request logs anything else, asks for a child or changes its level, and every line is pino's.
 */
export class RequestLogger implements FastifyBaseLogger {
  readonly parent: FastifyBaseLogger;
  readonly bindings: Readonly<Record<string, unknown>>;
  #pino: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Readonly<Record<string, unknown>>) {
    this.parent = parent;
    this.bindings = bindings;
  }

  /** The pino child, once something has needed it. */
  get made(): FastifyBaseLogger | undefined {
    return this.#pino;
  }

  #logger(): FastifyBaseLogger {
    return (this.#pino ??= this.parent.child(this.bindings));
  }

  get level(): string {
    return (this.#pino ?? this.parent).level;
  }

  set level(level: string) {
    this.#logger().level = level;
  }

  fatal(...args: LogArguments): void {
    this.#logger().fatal(...args);
  }
  error(...args: LogArguments): void {
    this.#logger().error(...args);
  }
  warn(...args: LogArguments): void {
    this.#logger().warn(...args);
  }
  info(...args: LogArguments): void {
    this.#logger().info(...args);
  }
  debug(...args: LogArguments): void {
    this.#logger().debug(...args);
  }
  trace(...args: LogArguments): void {
    this.#logger().trace(...args);
  }
  silent(...args: LogArguments): void {
    this.#logger().silent(...args);
  }

  child(...args: Parameters<FastifyBaseLogger['child']>): FastifyBaseLogger {
    return this.#logger().child(...args);
  }
}

/**
 * Fastify's `childLoggerFactory`: the per-request logger that adds `requestId` to every line of
 * the request, made lazily (above) and then on pino's cheap path. Fastify's default passes an
 * options object, which makes pino rebuild the formatters of every child; and a child of the root
 * logger always rebuilds them. So each request's child is made, without options, from one
 * intermediate child of the logger (the same lines: it adds no bindings). Route log levels and
 * serializers take pino's full path at once.
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
  return new RequestLogger(parent, bindings);
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
  /([?&](?:token|code|state|password|secret|access_token|refresh_token|id_token|api_key|apikey|key|jwt|bearer|authorization|auth|signature)=)[^&#]*/gi;

/** The request target as logged: at most 200 characters, credential-like query values masked. */
export function loggableUrl(url: string): string {
  const short = url.length > 200 ? `${url.slice(0, 200)}…` : url;
  return short.includes('?') ? short.replace(SENSITIVE_QUERY, `$1${CENSOR}`) : short;
}

/** pino's text for a child's bindings (`,"key":value`), for loggers without binding formatters. */
function chindingsOf(bindings: Readonly<Record<string, unknown>>): string {
  let text = '';
  for (const key in bindings) {
    const value = bindings[key];
    if (value !== undefined && Object.hasOwn(bindings, key))
      text += `,"${key}":${JSON.stringify(value)}`;
  }
  return text;
}

type FastPathLogger = { levelVal: number } & Record<symbol, unknown>;

/**
 * Writes a request's completion line: the same JSON line as `log[level](line, 'request
 * completed')` (level, time, the logger's bindings, the fields, msg), built directly instead of
 * through pino's generic loop over the object, its log formatter and its per-value serializers.
 * That loop was the largest single cost of a request in bench/http; the fields here are fixed,
 * primitive and carry no secret (the URL's credential-like query values are masked), so nothing
 * is lost by skipping it. pino's public `symbols` give the bindings, time function and destination.
 * With tracing on, the line ends with the request span's `trace_id` and `span_id` (the mixin's
 * fields: the tracing hooks run this hook inside the span).
 * Loggers not made with `loggerOptions` take pino's ordinary path.
 */
export function writeRequestLine(
  log: FastifyBaseLogger,
  level: RequestLineLevel,
  line: RequestLine,
): void {
  // A request logger with no pino child yet: its parent's bindings plus its own, as pino would add.
  let target = log;
  let ownBindings = '';
  if (log instanceof RequestLogger) {
    target = log.made ?? log.parent;
    if (log.made === undefined) ownBindings = chindingsOf(log.bindings);
  }
  const fast = target as unknown as FastPathLogger;
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
    `{"level":"${level}"${time()}${bindings}${ownBindings},"method":${JSON.stringify(line.method)},"route":${JSON.stringify(line.route)},"url":${JSON.stringify(line.url)},"statusCode":${String(line.statusCode)},"durationMs":${String(line.durationMs)},"ip":${JSON.stringify(line.ip)}${line.userId === undefined ? '' : `,"userId":${JSON.stringify(line.userId)}`}${traceLogSuffix()}${MESSAGE_JSON}`,
  );
}
