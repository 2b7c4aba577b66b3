import type { Dispatcher } from 'undici';
import { HttpError } from '../http/index.ts';
import { ResilienceCodes } from './errors.ts';

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

/** The answer could not be used (too large): not retried, not counted by the breaker. */
export class InvalidResponse extends Error {}

/** Reads the whole body, refusing one over `maxBytes` (declared or streamed). */
export async function readBody(res: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
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

export function makeResponse(
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

export function queryString(query: UpstreamRequest['query']): string {
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

export function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

export function encode(
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
