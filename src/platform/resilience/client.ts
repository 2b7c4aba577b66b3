import {
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  SamplingBreaker,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  isIsolatedCircuitError,
  type CircuitBreakerPolicy,
  type FailureReason,
  type IBackoff,
  type IBreaker,
} from 'cockatiel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { HttpError } from '../http/index.ts';
import type { Logger } from '../observability/index.ts';
import { ResilienceCodes } from './errors.ts';
import { resilienceMetrics, type AttemptOutcome, type CircuitStateName } from './metrics.ts';
import {
  DEFAULT_POLICY,
  isBreakerFailureStatus,
  isRetryableStatus,
  mayRetry,
  mergePolicy,
  parseRetryAfter,
  type PolicyOverrides,
  type ResiliencePolicy,
} from './policy.ts';

export type QueryValue = string | number | boolean | null | undefined;

/** One outbound call. Only `path` is required; the method defaults to GET. */
export interface UpstreamRequest {
  method?: string;
  /** Path under the target's base URL; `/:name` segments are filled from `params` (and logged as written). */
  path: string;
  params?: Record<string, string | number>;
  /** Query string; arrays repeat the key, null and undefined are left out. Never logged. */
  query?: Record<string, QueryValue | readonly QueryValue[]>;
  /** Added to (and overriding) the target's headers. Never logged. */
  headers?: Record<string, string>;
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /** Sent as is (give the content type in `headers`). */
  body?: string | Uint8Array;
  /**
   * May this call be sent more than once? Defaults to true for GET, HEAD, OPTIONS, TRACE, PUT and
   * DELETE and false otherwise; set true for a POST the upstream deduplicates (an idempotency key).
   */
  idempotent?: boolean;
  /** Per-attempt time limit (overrides the target's `timeoutMs`). */
  timeoutMs?: number;
  /** Time limit for the whole call, retries and waits included. */
  deadlineMs?: number;
  /** Abort the call (the client went away): the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The upstream's answer, body read in full. */
export interface UpstreamResponse {
  readonly status: number;
  /** 2xx. */
  readonly ok: boolean;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Attempts made, this one included. */
  readonly attempts: number;
  readonly body: Buffer;
  text(): string;
  /** The body parsed as JSON (unchecked `T`); unreadable JSON throws `UPSTREAM_ERROR`. */
  json<T = unknown>(): T;
}

export interface TargetOptions extends PolicyOverrides {
  /** `https://api.example.com/v2`: the origin gets a connection pool, the path prefixes every call. */
  baseUrl: string;
  /** Sent with every call (an API key, a user agent). Never logged. */
  headers?: Record<string, string>;
}

/** One upstream service with its connection pool and circuit breaker. */
export interface UpstreamTarget {
  readonly name: string;
  readonly policy: Readonly<ResiliencePolicy>;
  /**
   * Sends the call with retries and the breaker. Resolves with any 1xx-4xx answer (a 4xx is the
   * app's business). Rejects with an `HttpError`: `UPSTREAM_UNAVAILABLE` (circuit open, with
   * `Retry-After`; or connection failures), `UPSTREAM_TIMEOUT`, or `UPSTREAM_ERROR` (a 5xx after
   * retries, or an unreadable or oversized body).
   */
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** The breaker's state; `half-open` once the open period is over (the next call is the trial). */
  state(): CircuitStateName;
}

export interface HttpClientOptions {
  logger: Logger;
  /** Registry for `upstream_requests_total`, `upstream_request_duration_seconds`, `circuit_state`. */
  metrics?: Registry;
  /** Policy for every target, over `DEFAULT_POLICY`; targets may override any field. */
  defaults?: PolicyOverrides;
}

export interface HttpClient {
  /** Declares a target; names are unique per client (`[a-z0-9_-]`, they label metrics). */
  target(name: string, options: TargetOptions): UpstreamTarget;
  /** Each target's breaker state, for `GET /health`. */
  breakerStates(): Record<string, CircuitStateName>;
  /** Closes every target's connections (waits for calls in flight). */
  close(): Promise<void>;
}

/** An attempt that failed without an HTTP answer; counted by the breaker and retried. */
class AttemptFailure extends Error {
  readonly reason: 'timeout' | 'network';
  readonly errorCode: string;
  constructor(reason: 'timeout' | 'network', errorCode: string, cause: unknown) {
    super(`upstream ${reason}`, { cause });
    this.name = 'AttemptFailure';
    this.reason = reason;
    this.errorCode = errorCode;
  }
}

/** The caller's signal aborted the call: not the upstream's fault, never counted or retried. */
class CallerAbort extends Error {
  readonly reason: unknown;
  constructor(reason: unknown) {
    super('aborted by the caller');
    this.reason = reason;
  }
}

/** The answer could not be used (too large): not retried, not counted by the breaker. */
class InvalidResponse extends Error {}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** An HTTP client for calling other services: per-attempt timeouts, retries, a breaker per target. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const base = mergePolicy(DEFAULT_POLICY, options.defaults ?? {});
  const log = options.logger.child({ component: 'upstream' });
  const metrics = options.metrics ? resilienceMetrics(options.metrics) : undefined;
  const targets = new Map<string, { target: UpstreamTarget; pool: Pool }>();

  const breakerStates = () =>
    Object.fromEntries([...targets].map(([name, { target }]) => [name, target.state()]));
  metrics?.addStates(breakerStates);

  return {
    target(name, targetOptions) {
      if (!TARGET_NAME.test(name))
        throw new Error(`upstream target name "${name}" is not [a-z0-9_-]`);
      if (targets.has(name)) throw new Error(`upstream target "${name}" is already declared`);
      const { baseUrl, headers, ...overrides } = targetOptions;
      const policy = mergePolicy(base, overrides);
      const url = new URL(baseUrl);
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash)
        throw new Error(`upstream target "${name}": baseUrl must be http(s) without query or hash`);
      const pool = new Pool(url.origin, {
        connections: policy.connections,
        keepAliveTimeout: policy.keepAliveTimeoutMs,
      });
      const target = makeTarget({
        name,
        policy,
        pool,
        basePath: url.pathname.replace(/\/+$/, ''),
        headers: lowerCaseKeys(headers ?? {}),
        log: log.child({ target: name }),
        record: (outcome, seconds) => metrics?.attempt(name, outcome, seconds),
      });
      targets.set(name, { target, pool });
      return target;
    },
    breakerStates,
    async close() {
      await Promise.all([...targets.values()].map(({ pool }) => pool.close()));
    },
  };
}

interface TargetContext {
  name: string;
  policy: ResiliencePolicy;
  pool: Pool;
  basePath: string;
  headers: Record<string, string>;
  log: Logger;
  record: (outcome: AttemptOutcome, seconds?: number) => void;
}

type Attempt =
  | { response: UpstreamResponse; failure?: undefined }
  | { response?: undefined; failure: AttemptFailure };

function makeTarget(ctx: TargetContext): UpstreamTarget {
  const { name, policy, pool, log, record } = ctx;
  const breaker = makeBreaker(policy);
  const backoffFactory = new ExponentialBackoff({
    initialDelay: policy.backoff.initialDelayMs,
    maxDelay: policy.backoff.maxDelayMs,
  });
  let openedAt = 0;

  breaker.onBreak((reason) => {
    openedAt = Date.now();
    log.warn(
      { halfOpenAfterMs: policy.breaker.halfOpenAfterMs, reason: describeFailure(reason) },
      'circuit opened',
    );
  });
  breaker.onHalfOpen(() => log.info('circuit half-open, trial call'));
  breaker.onReset(() => log.info('circuit closed'));

  const state = (): CircuitStateName => {
    switch (breaker.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      case CircuitState.Open:
        return openRemainingMs() > 0 ? 'open' : 'half-open';
      case CircuitState.Isolated:
        return 'open';
    }
  };
  const openRemainingMs = () => openedAt + policy.breaker.halfOpenAfterMs - Date.now();
  const openSeconds = () => Math.max(1, Math.ceil(openRemainingMs() / 1000));

  async function send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | Uint8Array | undefined,
    timeoutMs: number,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<UpstreamResponse> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(new Error('attempt timed out')), timeoutMs);
    try {
      const res = await pool.request({
        method,
        path,
        headers,
        body: body ?? null,
        signal: signal ? AbortSignal.any([timer.signal, signal]) : timer.signal,
      });
      const content = await readBody(res, policy.maxResponseBytes);
      record(outcomeOf(res.statusCode), seconds());
      return makeResponse(name, res.statusCode, res.headers, content, attempt);
    } catch (error) {
      if (signal?.aborted && !timer.signal.aborted) throw new CallerAbort(signal.reason);
      if (error instanceof InvalidResponse) {
        record('server_error', seconds());
        throw error;
      }
      const code = errorCode(error);
      const timedOut = timer.signal.aborted || TIMEOUT_CODES.has(code);
      record(timedOut ? 'timeout' : 'network_error', seconds());
      throw new AttemptFailure(
        timedOut ? 'timeout' : 'network',
        timedOut ? 'TIMEOUT' : code,
        error,
      );
    } finally {
      clearTimeout(timeout);
    }
  }

  async function request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const method = (req.method ?? 'GET').toUpperCase();
    const maxAttempts = mayRetry(method, req.idempotent) ? policy.retries + 1 : 1;
    const timeoutMs = req.timeoutMs ?? policy.timeoutMs;
    const deadline = req.deadlineMs === undefined ? Infinity : performance.now() + req.deadlineMs;
    const path = ctx.basePath + expandPath(req.path, req.params) + queryString(req.query);
    const { headers, body } = encode(ctx.headers, req);
    const where = { method, path: req.path };
    let backoff: IBackoff<unknown> | undefined;

    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw req.signal.reason;
      const limit = Math.max(1, Math.min(timeoutMs, deadline - performance.now()));
      let outcome: Attempt;
      try {
        outcome = {
          response: await breaker.execute(() =>
            send(method, path, headers, body, limit, attempt, req.signal),
          ),
        };
      } catch (error) {
        if (isBrokenCircuitError(error) || isIsolatedCircuitError(error)) {
          record('circuit_open');
          log.warn({ ...where, attempt }, 'circuit open, call refused');
          throw unavailable(`The ${name} service is unavailable.`, openSeconds(), error);
        }
        if (error instanceof CallerAbort) throw error.reason;
        if (error instanceof InvalidResponse)
          throw new HttpError(ResilienceCodes.UPSTREAM_ERROR, {
            detail: `The ${name} service sent a response that could not be read.`,
            cause: error,
          });
        if (!(error instanceof AttemptFailure)) throw error;
        outcome = { failure: error };
      }

      const { response, failure } = outcome;
      if (response && !isRetryableStatus(response.status)) {
        if (response.status >= 500) {
          log.warn({ ...where, attempt, status: response.status }, 'upstream call failed');
          throw upstreamError(response);
        }
        return response;
      }

      // A failure worth retrying: decide the wait, or give up.
      let delayMs: number | undefined;
      if (attempt < maxAttempts) {
        const retryAfter = response && parseRetryAfter(response.headers['retry-after']);
        if (retryAfter !== undefined) {
          delayMs = retryAfter <= policy.maxRetryAfterMs ? retryAfter : undefined;
        } else {
          backoff = backoff ? backoff.next(undefined) : backoffFactory.next();
          delayMs = Math.round(backoff.duration);
        }
        if (delayMs !== undefined && performance.now() + delayMs >= deadline) delayMs = undefined;
      }
      log.warn(
        {
          ...where,
          attempt,
          status: response?.status,
          error: failure?.errorCode,
          retryInMs: delayMs,
        },
        delayMs === undefined ? 'upstream call failed' : 'upstream attempt failed, retrying',
      );

      if (delayMs === undefined) {
        if (response) {
          if (response.status < 500) return response;
          throw upstreamError(response);
        }
        if (failure.reason === 'timeout')
          throw new HttpError(ResilienceCodes.UPSTREAM_TIMEOUT, {
            detail: `The ${name} service did not answer in time.`,
            ...retryAfterHeader(),
            cause: failure,
          });
        throw unavailable(`The ${name} service could not be reached.`, undefined, failure);
      }
      try {
        await sleep(delayMs, undefined, { signal: req.signal });
      } catch {
        throw req.signal?.reason;
      }
    }
  }

  /** `Retry-After` for a failure: the time left in the open state when the breaker just opened. */
  function retryAfterHeader(fallbackSeconds?: number): { headers?: Record<string, string> } {
    const seconds = state() === 'open' ? openSeconds() : fallbackSeconds;
    return seconds === undefined ? {} : { headers: { 'retry-after': String(seconds) } };
  }

  function unavailable(detail: string, seconds: number | undefined, cause: unknown): HttpError {
    return new HttpError(ResilienceCodes.UPSTREAM_UNAVAILABLE, {
      detail,
      ...retryAfterHeader(seconds),
      cause,
    });
  }

  function upstreamError(response: UpstreamResponse): HttpError {
    const asked = parseRetryAfter(response.headers['retry-after']);
    return new HttpError(ResilienceCodes.UPSTREAM_ERROR, {
      detail: `The ${name} service failed to answer the request.`,
      ...retryAfterHeader(asked === undefined ? undefined : Math.max(1, Math.ceil(asked / 1000))),
      cause: new Error(`${name} answered ${response.status}`),
    });
  }

  return { name, policy, request, state };
}

function makeBreaker(policy: ResiliencePolicy): CircuitBreakerPolicy {
  const { failureRatio, failureThreshold, halfOpenAfterMs } = policy.breaker;
  const counted = handleWhen((error) => error instanceof AttemptFailure).orWhenResult((result) =>
    isBreakerFailureStatus((result as UpstreamResponse).status),
  );
  let breaker: IBreaker;
  if (failureRatio === undefined) {
    breaker = new ConsecutiveBreaker(failureThreshold);
  } else {
    const windowMs = policy.breaker.windowMs ?? 30_000;
    const minimumCalls = policy.breaker.minimumCalls ?? 10;
    // cockatiel counts a minimum rate: the window must hold at least minimumRps * window seconds calls.
    breaker = new SamplingBreaker({
      threshold: failureRatio,
      duration: windowMs,
      minimumRps: (minimumCalls * 1000) / windowMs,
    });
  }
  return circuitBreaker(counted, { halfOpenAfter: halfOpenAfterMs, breaker });
}

function describeFailure(reason: FailureReason<unknown> | { isolated: true }): string {
  if ('isolated' in reason) return 'isolated';
  if ('value' in reason) return `status ${(reason.value as UpstreamResponse).status}`;
  return reason.error instanceof AttemptFailure ? reason.error.errorCode : 'error';
}

function outcomeOf(status: number): AttemptOutcome {
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return 'success';
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'NETWORK_ERROR';
}

async function readBody(res: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (declared > maxBytes) {
    res.body.destroy();
    throw new InvalidResponse(`response body of ${declared} bytes is over ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      res.body.destroy();
      throw new InvalidResponse(`response body is over ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function makeResponse(
  target: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  attempts: number,
): UpstreamResponse {
  return {
    status,
    ok: status >= 200 && status < 300,
    headers,
    attempts,
    body,
    text: () => body.toString('utf8'),
    json<T>(): T {
      try {
        return JSON.parse(body.toString('utf8')) as T;
      } catch (error) {
        throw new HttpError(ResilienceCodes.UPSTREAM_ERROR, {
          detail: `The ${target} service sent a response that could not be read.`,
          cause: error,
        });
      }
    },
  };
}

/** Fills `/:name` segments from params, each encoded as one path segment. */
export function expandPath(template: string, params: Record<string, string | number> = {}): string {
  if (!template.startsWith('/'))
    throw new TypeError(`upstream path "${template}" must start with /`);
  return template.replace(/\/:([A-Za-z_][A-Za-z0-9_]*)/g, (_match, key: string) => {
    const value = params[key];
    if (value === undefined) throw new TypeError(`upstream path parameter "${key}" is missing`);
    return `/${encodeURIComponent(String(value))}`;
  });
}

function queryString(query: UpstreamRequest['query']): string {
  if (!query) return '';
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== null && item !== undefined) search.append(key, String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function encode(
  targetHeaders: Record<string, string>,
  req: UpstreamRequest,
): { headers: Record<string, string>; body: string | Uint8Array | undefined } {
  const headers = { ...targetHeaders, ...lowerCaseKeys(req.headers ?? {}) };
  if (req.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    return { headers, body: JSON.stringify(req.json) };
  }
  return { headers, body: req.body };
}
