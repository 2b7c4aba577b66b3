import type { components } from './schema.ts';

/** The RFC 9457 problem body every error of the API carries. */
export type Problem = components['schemas']['Problem'];
/** Every stable error code the API answers (docs/errors.md). */
export type ProblemCode = Problem['code'];

/** Seconds or an HTTP date, as `Retry-After` gives them; milliseconds from `now`, or undefined. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const isProblemBody = (value: unknown): value is Problem =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { code?: unknown }).code === 'string' &&
  typeof (value as { status?: unknown }).status === 'number';

/**
 * An error answer of the API: its status, its stable `code` (typed: a `ProblemCode`, or
 * `UNEXPECTED_RESPONSE` when the body was not a problem, e.g. a proxy's HTML page), the whole
 * problem body when there is one, the request id to quote, and `Retry-After` in milliseconds.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly code: ProblemCode | 'UNEXPECTED_RESPONSE';
  readonly problem: Problem | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const problem = isProblemBody(body) ? body : undefined;
    super(problem ? `${problem.code}: ${problem.detail}` : `HTTP ${String(response.status)}`);
    this.status = response.status;
    this.code = problem?.code ?? 'UNEXPECTED_RESPONSE';
    this.problem = problem;
    this.requestId = problem?.requestId ?? response.headers.get('x-request-id') ?? undefined;
    this.retryAfterMs = retryAfterMs(response.headers.get('retry-after'));
    this.response = response;
  }

  /** Field errors of a `VALIDATION_FAILED` answer (`/querystring/city`: the message). */
  get fieldErrors(): { path: string; message: string }[] {
    return this.problem?.errors ?? [];
  }
}

/** The request never got an answer: offline, DNS, refused, or blocked by the browser (CORS). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  constructor(cause: unknown) {
    super(`the request got no answer: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** Whether `error` is an API error, with this code when one is given (narrows the type). */
export function isApiError(error: unknown, code?: ProblemCode): error is ApiError {
  return error instanceof ApiError && (code === undefined || error.code === code);
}
