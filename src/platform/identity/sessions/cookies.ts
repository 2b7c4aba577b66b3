import fastifyCookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { API_PREFIX, HttpError } from '../../http/index.ts';
import { IdentityCodes } from '../errors.ts';

/** The HttpOnly refresh-token cookie (`__Secure-`: the browser keeps it only with `Secure`). */
export const REFRESH_COOKIE = '__Secure-gw_refresh';
/** The readable CSRF cookie (`__Host-`: Secure, `Path=/`, no `Domain`, so no sibling can set it). */
export const CSRF_COOKIE = '__Host-gw_csrf';
/** The one path the refresh cookie is sent to: `POST` (refresh) and `DELETE` (sign out). */
export const REFRESH_PATH = `${API_PREFIX}/auth/refresh`;
/** Request header that asks for cookie mode on sign-in (`X-Token-Transport: cookie`). */
export const TRANSPORT_HEADER = 'x-token-transport';
/** Request header carrying the CSRF cookie's value back (double submit). */
export const CSRF_HEADER = 'x-csrf-token';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route answers a token pair: in cookie mode (`X-Token-Transport: cookie`, or a refresh
     * authenticated by the cookie) the refresh token goes to the HttpOnly cookie, not the body.
     */
    refreshCookie?: boolean;
  }
  interface FastifyRequest {
    /** Set when the refresh token of this request came from the cookie (cookie mode). */
    refreshFromCookie?: boolean;
  }
}

export interface CookieModeOptions {
  appSecret: string;
  /** `PUBLIC_URL`: its origin may send cookie-authenticated requests. */
  publicUrl: string;
  /**
   * The CORS rule (`CORS_ORIGINS`, or local origins in development): the origins it allows may
   * too. A wildcard never does: it names no origin.
   */
  corsAllows: (origin: string) => boolean;
}

const originOf = (url: string): string | null => {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
};

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Browser cookie mode for the refresh token: an HttpOnly, Secure, SameSite=Strict cookie on the
 * refresh path, a readable CSRF cookie holding an HMAC of the refresh token (signed double
 * submit: the header must equal the cookie, and the cookie must belong to that refresh token, so
 * a cookie planted by a sibling origin is useless), and an `Origin` check on every
 * cookie-authenticated request.
 */
export class CookieMode {
  readonly #key: Buffer;
  readonly #publicOrigin: string | null;
  readonly #corsAllows: (origin: string) => boolean;

  constructor(options: CookieModeOptions) {
    this.#key = Buffer.from(
      hkdfSync('sha256', options.appSecret, 'groundwork', 'identity csrf token', 32),
    );
    this.#publicOrigin = originOf(options.publicUrl);
    this.#corsAllows = options.corsAllows;
  }

  /** The CSRF token that goes with a refresh token. */
  csrfFor(refreshToken: string): string {
    return createHmac('sha256', this.#key).update(refreshToken).digest('base64url');
  }

  /**
   * Registers `@fastify/cookie` in this scope (no parsing hook: only the routes that read the
   * cookie parse it) and the `config.refreshCookie` hook on the routes added after it.
   */
  async register(scope: FastifyInstance): Promise<void> {
    if (!scope.hasDecorator('parseCookie')) await scope.register(fastifyCookie, { hook: false });
    scope.addHook('onRoute', (route) => {
      if (route.config?.refreshCookie !== true) return;
      const issue = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) =>
        this.#issue(request, reply, payload);
      route.preSerialization = [...[route.preSerialization ?? []].flat(), issue];
    });
  }

  #issue(request: FastifyRequest, reply: FastifyReply, payload: unknown): unknown {
    const wanted =
      request.refreshFromCookie === true ||
      String(request.headers[TRANSPORT_HEADER] ?? '').toLowerCase() === 'cookie';
    const body = payload as { refreshToken?: unknown; refreshExpiresIn?: unknown } | null;
    if (!wanted || typeof body?.refreshToken !== 'string') return payload;
    const maxAge = typeof body.refreshExpiresIn === 'number' ? body.refreshExpiresIn : undefined;
    reply.setCookie(REFRESH_COOKIE, body.refreshToken, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: REFRESH_PATH,
      maxAge,
    });
    reply.setCookie(CSRF_COOKIE, this.csrfFor(body.refreshToken), {
      httpOnly: false,
      secure: true,
      sameSite: 'strict',
      path: '/',
      maxAge,
    });
    reply.header('cache-control', 'no-store');
    const { refreshToken: _spent, ...rest } = body;
    return rest;
  }

  /** Clears both cookies (sign-out, or a refresh cookie that no longer works). */
  clear(reply: FastifyReply): void {
    const common = { secure: true, sameSite: 'strict' as const };
    reply.clearCookie(REFRESH_COOKIE, { ...common, httpOnly: true, path: REFRESH_PATH });
    reply.clearCookie(CSRF_COOKIE, { ...common, path: '/' });
  }

  /**
   * The refresh token of a request: the body's when it has one (not cookie-authenticated, no
   * CSRF risk), else the cookie's, once `Origin` and the CSRF header check out (403 otherwise).
   * Undefined when there is neither.
   */
  refreshToken(request: FastifyRequest, fromBody: string | undefined): string | undefined {
    if (fromBody !== undefined) return fromBody;
    const header = request.headers.cookie;
    const cookies = header === undefined ? {} : request.server.parseCookie(header);
    const token = cookies[REFRESH_COOKIE];
    if (token === undefined || token === '') return undefined;
    const origin = request.headers.origin;
    if (
      origin === undefined ||
      origin === 'null' ||
      (origin !== this.#publicOrigin && !this.#corsAllows(origin))
    )
      throw new HttpError(IdentityCodes.ORIGIN_NOT_ALLOWED, {
        detail:
          origin === undefined
            ? 'Cookie-authenticated requests must send an Origin header.'
            : 'This origin may not send cookie-authenticated requests (PUBLIC_URL, CORS_ORIGINS).',
      });
    const sent = request.headers[CSRF_HEADER];
    const csrf = cookies[CSRF_COOKIE];
    if (
      typeof sent !== 'string' ||
      csrf === undefined ||
      !sameSecret(sent, csrf) ||
      !sameSecret(csrf, this.csrfFor(token))
    )
      throw new HttpError(IdentityCodes.CSRF_TOKEN_INVALID);
    request.refreshFromCookie = true;
    return token;
  }
}
