import { NetworkError, retryAfterMs } from './errors.ts';

export interface RetryOptions {
  /** Retries after the first attempt (default 2; 0 turns retrying off). */
  retries?: number;
  /** The longest wait before a retry, in ms (default 10,000). A `Retry-After` past it is not waited for: the error is returned at once. */
  maxDelayMs?: number;
  /** The first backoff without `Retry-After`, doubled at each retry (default 250 ms). */
  baseDelayMs?: number;
  /** How to wait (tests pass a fake clock). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Methods that may run twice: a 503 retry is safe for them (or with an `Idempotency-Key`). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

/**
 * Whether the answer may be retried: 429 always (a rate-limited request did not run), 503 only
 * when running the request twice is harmless (idempotent method or `Idempotency-Key`), since a
 * 503 may be a handler timeout after the work began.
 */
export function retryable(request: Request, status: number): boolean {
  if (status === 429) return true;
  if (status !== 503) return false;
  return IDEMPOTENT.has(request.method) || request.headers.has('idempotency-key');
}

/**
 * A `fetch` that retries 429 and 503 answers: after `Retry-After` when the server gives one (and
 * it is within `maxDelayMs`), else after an exponential backoff capped by `maxDelayMs`. Fetch
 * failures (no answer) become `NetworkError`.
 */
export function retryingFetch(
  fetchImpl: (request: Request) => Promise<Response>,
  options: RetryOptions = {},
): (request: Request) => Promise<Response> {
  const retries = options.retries ?? 2;
  const maxDelayMs = options.maxDelayMs ?? 10_000;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const sleep = options.sleep ?? sleepFor;
  return async (request) => {
    for (let attempt = 0; ; attempt++) {
      // A body can be read once: each attempt sends a copy, the original stays for the next.
      const sent = attempt < retries ? request.clone() : request;
      let response: Response;
      try {
        response = await fetchImpl(sent);
      } catch (error) {
        if (request.signal.aborted) throw error;
        throw new NetworkError(error);
      }
      if (attempt >= retries || !retryable(request, response.status)) return response;
      const asked = retryAfterMs(response.headers.get('retry-after'));
      if (asked !== undefined && asked > maxDelayMs) return response;
      const delay = asked ?? Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
      // The answer is dropped: release its connection before waiting.
      await response.body?.cancel();
      await sleep(delay, request.signal);
    }
  };
}
