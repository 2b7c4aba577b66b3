import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { PlatformError } from './types.ts';

/** One call to a platform API. */
export interface PlatformCall {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as `application/x-www-form-urlencoded`. */
  readonly form?: Readonly<Record<string, string | undefined>>;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Raw bytes (an upload), with `headers` giving type and length. */
  readonly stream?: Readable;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /**
   * The call that makes the post exist (Instagram's media_publish, a Pages feed write, YouTube's
   * upload of the bytes): when it ends without an answer after it was sent, the post may exist,
   * so the failure is OUTCOME_UNKNOWN (sent) instead of PLATFORM_UNAVAILABLE.
   */
  readonly publishing?: boolean;
}

export interface PlatformAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body (null when empty or not JSON). */
  readonly body: unknown;
}

/** Connection failures that happen before any byte of the request left: nothing was sent. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * The adapters' HTTP: undici over one keep-alive agent, each call bounded by its own time limit
 * (connect, headers and body together) and the caller's signal. Every transport failure becomes
 * a `PlatformError`; answers of any status are returned for the adapter to read.
 */
export class PlatformHttp {
  readonly #agent: Agent;
  readonly #platform: string;

  constructor(platform: string, agent: Agent) {
    this.#platform = platform;
    this.#agent = agent;
  }

  static agent(): Agent {
    return new Agent({
      connections: 256,
      keepAliveTimeout: 4_000,
      connect: { timeout: 5_000 },
    });
  }

  async call(call: PlatformCall): Promise<PlatformAnswer> {
    const url = new URL(call.url);
    for (const [k, v] of Object.entries(call.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
    let body: string | Readable | undefined;
    if (call.form) {
      const form = new URLSearchParams();
      for (const [k, v] of Object.entries(call.form)) if (v !== undefined) form.set(k, v);
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (call.json !== undefined) {
      body = JSON.stringify(call.json);
      headers['content-type'] = 'application/json; charset=UTF-8';
    } else if (call.stream) body = call.stream;
    const timeout = AbortSignal.timeout(call.timeoutMs);
    const signal = AbortSignal.any([call.signal, timeout]);
    let phase: 'connect' | 'sent' = 'connect';
    try {
      const res = await request(url, {
        method: call.method,
        headers,
        body,
        signal,
        dispatcher: this.#agent,
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      });
      phase = 'sent';
      const text = await res.body.text();
      let parsed: unknown = null;
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = null;
        }
      }
      return { status: res.statusCode, headers: res.headers, body: parsed };
    } catch (error) {
      throw this.#transportError(error, call, phase, timeout.aborted);
    }
  }

  #transportError(
    error: unknown,
    call: PlatformCall,
    phase: 'connect' | 'sent',
    timedOut: boolean,
  ): PlatformError {
    const code = (error as { code?: string }).code ?? '';
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? '';
    const notSent = phase === 'connect' && (NOT_SENT.has(code) || NOT_SENT.has(cause));
    const what = timedOut
      ? `no answer within ${call.timeoutMs} ms`
      : call.signal.aborted
        ? 'the call was cancelled'
        : `connection failed (${code || cause || 'error'})`;
    if (!notSent && call.publishing)
      return new PlatformError(
        'OUTCOME_UNKNOWN',
        `${this.#platform}: ${what} after the post was sent; it may have been published.`,
        { retryable: true, action: 'none', sent: true, cause: error },
      );
    return new PlatformError('PLATFORM_UNAVAILABLE', `${this.#platform}: ${what}.`, {
      retryable: true,
      action: 'retry_later',
      cause: error,
    });
  }
}

/** `Retry-After` in milliseconds (delay-seconds or an HTTP date), or undefined. */
export function retryAfterMs(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): number | undefined {
  const raw = headers['retry-after'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * A 5xx answer to the call that makes the post exist reached the platform, which may have made
 * the post before failing: the error says `sent`, so the pipeline looks the post up before a retry.
 */
export function markSentOn5xx(
  error: PlatformError,
  call: PlatformCall,
  status: number,
): PlatformError {
  if (!call.publishing || status < 500 || error.sent) return error;
  return new PlatformError(error.code, error.message, {
    retryable: error.retryable,
    action: error.action,
    retryAfterMs: error.retryAfterMs,
    sent: true,
    platformCode: error.platformCode,
    cause: error.cause,
  });
}
