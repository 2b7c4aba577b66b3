/**
 * What Instagram and Facebook Pages share: the Graph API's error bodies and Facebook Login.
 * Graph errors: `{ error: { message, type, code, error_subcode, is_transient, fbtrace_id } }`,
 * sometimes with HTTP 200 (never read as success).
 */
import type { PlatformAnswer, PlatformCall, PlatformHttp } from './http.ts';
import { markSentOn5xx, retryAfterMs } from './http.ts';
import type { ConnectedIdentity, PlatformEndpoints, TokenSet } from './oauth.ts';
import { PlatformError } from './types.ts';

interface GraphErrorBody {
  error?: {
    message?: string;
    type?: string;
    code?: number;
    error_subcode?: number;
    is_transient?: boolean;
  };
}

/** Throttling codes: app (4), user (17), page (32), API-specific (613), BUC (80001-80014). */
const RATE_CODES = new Set([4, 17, 32, 613]);
/** Media the platform refused (type, size, ratio, fetch failure). */
const MEDIA_CODES = new Set([324, 352, 36000, 36001, 36003, 36004, 9004]);
const MEDIA_SUBCODES = new Set([
  2207001, 2207003, 2207004, 2207005, 2207006, 2207009, 2207026, 2207052, 2069019,
]);

/** The typed error of a Graph answer that is not a success (status or body). */
export function graphFailure(platform: string, answer: PlatformAnswer): PlatformError {
  const err = (answer.body as GraphErrorBody | null)?.error;
  const code = err?.code;
  const sub = err?.error_subcode;
  const platformCode =
    code === undefined ? `http_${answer.status}` : `${code}${sub ? `/${sub}` : ''}`;
  const message = `${platform}: ${err?.message ?? `HTTP ${answer.status}`}`;
  const wait = retryAfterMs(answer.headers);
  if (
    code === 190 ||
    code === 102 ||
    code === 10 ||
    (code !== undefined && code >= 200 && code < 300)
  )
    return new PlatformError('ACCOUNT_REAUTH_REQUIRED', message, {
      retryable: false,
      action: 'reconnect_account',
      platformCode,
    });
  if ((code === 9 && sub === 2207042) || code === 341)
    return new PlatformError('PLATFORM_QUOTA_EXHAUSTED', message, {
      retryable: true,
      action: 'retry_later',
      retryAfterMs: wait,
      platformCode,
    });
  if (
    answer.status === 429 ||
    (code !== undefined && (RATE_CODES.has(code) || (code >= 80001 && code <= 80014)))
  )
    return new PlatformError('PLATFORM_RATE_LIMITED', message, {
      retryable: true,
      action: 'retry_later',
      retryAfterMs: wait,
      platformCode,
    });
  if (code === 506)
    return new PlatformError('DUPLICATE_CONTENT', message, {
      retryable: false,
      action: 'edit_post',
      platformCode,
    });
  if (
    (code !== undefined && MEDIA_CODES.has(code)) ||
    (sub !== undefined && MEDIA_SUBCODES.has(sub))
  )
    return new PlatformError('MEDIA_REJECTED', message, {
      retryable: false,
      action: 'edit_post',
      platformCode,
    });
  if (answer.status >= 500 || code === 1 || code === 2 || err?.is_transient === true || !err)
    return new PlatformError('PLATFORM_UNAVAILABLE', message, {
      retryable: true,
      action: 'retry_later',
      retryAfterMs: wait,
      platformCode,
    });
  return new PlatformError('CONTENT_REJECTED', message, {
    retryable: false,
    action: 'edit_post',
    platformCode,
  });
}

/** A Graph call answered with success, or its typed failure thrown. */
export async function graphCall<T>(
  http: PlatformHttp,
  platform: string,
  call: PlatformCall,
): Promise<T> {
  const answer = await http.call(call);
  const body = answer.body as (GraphErrorBody & T) | null;
  if (answer.status >= 200 && answer.status < 300 && body !== null && body.error === undefined)
    return body;
  throw markSentOn5xx(graphFailure(platform, answer), call, answer.status);
}

/** Facebook Login: the consent URL, the code exchange and the long-lived token. */
export class FacebookLogin {
  readonly #http: PlatformHttp;
  readonly #ep: PlatformEndpoints;
  readonly #platform: string;
  readonly scopes: readonly string[];

  constructor(
    http: PlatformHttp,
    ep: PlatformEndpoints,
    platform: string,
    scopes: readonly string[],
  ) {
    this.#http = http;
    this.#ep = ep;
    this.#platform = platform;
    this.scopes = scopes;
  }

  authorizeUrl(input: { state: string; codeChallenge: string; redirectUri: string }): string {
    const url = new URL(this.#ep.authUrl);
    url.searchParams.set('client_id', this.#ep.clientId);
    url.searchParams.set('redirect_uri', input.redirectUri);
    url.searchParams.set('state', input.state);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', this.scopes.join(','));
    url.searchParams.set('code_challenge', input.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    return url.toString();
  }

  /** The user's long-lived token (60 days) for a consent code. */
  async userToken(
    input: { code: string; codeVerifier: string; redirectUri: string },
    signal: AbortSignal,
  ): Promise<TokenSet> {
    const short = await this.#token(
      {
        client_id: this.#ep.clientId,
        client_secret: this.#ep.clientSecret,
        redirect_uri: input.redirectUri,
        code: input.code,
        code_verifier: input.codeVerifier,
      },
      signal,
    );
    return this.exchangeLongLived(short.accessToken, signal);
  }

  /** A long-lived token for a valid one: how Graph user tokens are renewed (no refresh token). */
  exchangeLongLived(accessToken: string, signal: AbortSignal): Promise<TokenSet> {
    return this.#token(
      {
        grant_type: 'fb_exchange_token',
        client_id: this.#ep.clientId,
        client_secret: this.#ep.clientSecret,
        fb_exchange_token: accessToken,
      },
      signal,
    );
  }

  async #token(query: Record<string, string>, signal: AbortSignal): Promise<TokenSet> {
    const body = await graphCall<{ access_token?: string; expires_in?: number }>(
      this.#http,
      this.#platform,
      { method: 'GET', url: this.#ep.tokenUrl, query, signal, timeoutMs: this.#ep.timeoutMs },
    ).catch((error: unknown) => {
      // A refused code or token (used, expired, revoked: OAuthException 100/190) needs a new consent.
      if (error instanceof PlatformError && error.code === 'CONTENT_REJECTED')
        throw new PlatformError('ACCOUNT_REAUTH_REQUIRED', error.message, {
          retryable: false,
          action: 'reconnect_account',
          platformCode: error.platformCode,
        });
      throw error;
    });
    if (typeof body.access_token !== 'string' || body.access_token === '')
      throw new PlatformError('PLATFORM_UNAVAILABLE', `${this.#platform}: no token in the answer`, {
        retryable: true,
        action: 'retry_later',
      });
    return {
      accessToken: body.access_token,
      refreshToken: null,
      expiresAt:
        typeof body.expires_in === 'number' && body.expires_in > 0
          ? new Date(Date.now() + body.expires_in * 1000)
          : null,
    };
  }
}

/** The Pages the user granted (`/me/accounts`), with the fields both adapters read. */
export interface GraphPage {
  id: string;
  name: string;
  access_token?: string;
  picture?: { data?: { url?: string } };
  instagram_business_account?: {
    id: string;
    username?: string;
    name?: string;
    profile_picture_url?: string;
  };
}

export async function grantedPages(
  http: PlatformHttp,
  platform: string,
  ep: PlatformEndpoints,
  userToken: string,
  fields: string,
  signal: AbortSignal,
): Promise<GraphPage[]> {
  const body = await graphCall<{ data?: GraphPage[] }>(http, platform, {
    method: 'GET',
    url: `${ep.apiUrl}/me/accounts`,
    query: { fields, limit: 100 },
    headers: { authorization: `Bearer ${userToken}` },
    signal,
    timeoutMs: ep.timeoutMs,
  });
  return body.data ?? [];
}

export type { ConnectedIdentity };

/** Graph timestamps (`2026-12-07T09:00:00+0000`) as dates. */
export function graphTime(value: string | undefined): Date | null {
  if (!value) return null;
  const at = Date.parse(value.replace(/\+0000$/, 'Z'));
  return Number.isNaN(at) ? null : new Date(at);
}
