import {
  CircuitState,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  isIsolatedCircuitError,
  type CircuitBreakerPolicy,
  type FailureReason,
  type IBackoff,
} from 'cockatiel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import { HttpError } from '../http/index.ts';
import type { Logger } from '../observability/index.ts';
import { breakerStrategy } from './breakers.ts';
import { ResilienceCodes } from './errors.ts';
import {
  InvalidResponse,
  encode,
  expandPath,
  makeResponse,
  queryString,
  readBody,
  type UpstreamRequest,
  type UpstreamResponse,
} from './message.ts';
import type { AttemptOutcome, CircuitStateName } from './metrics.ts';
import {
  isBreakerFailureStatus,
  isRetryableStatus,
  mayRetry,
  parseRetryAfter,
  type ResiliencePolicy,
} from './policy.ts';

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

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

export interface TargetContext {
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

export function makeTarget(ctx: TargetContext): UpstreamTarget {
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
  const counted = handleWhen((error) => error instanceof AttemptFailure).orWhenResult((result) =>
    isBreakerFailureStatus((result as UpstreamResponse).status),
  );
  return circuitBreaker(counted, {
    halfOpenAfter: policy.breaker.halfOpenAfterMs,
    breaker: breakerStrategy(policy.breaker),
  });
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
