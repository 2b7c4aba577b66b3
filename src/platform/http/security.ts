import cors from '@fastify/cors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.ts';
import { HttpCodes, HttpError } from './errors.ts';
import { OPERATIONAL_ROUTES } from './route-errors.ts';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The API reference page loads its own scripts, styles and images, nothing from elsewhere. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * The security headers of a JSON answer, what the OWASP REST Security Cheat Sheet asks of an API
 * (`Content-Security-Policy` comes with them, per path, below). The ones Helmet adds for HTML
 * documents (cross-origin opener policy, origin-agent-cluster, DNS prefetch, IE's download
 * dialog, Flash/PDF cross-domain policies, the legacy XSS filter) do nothing for a JSON body, so
 * only HTML pages get them. Each header is a measured cost of every response in bench/http (about
 * 3,000 instructions), and all of them are set from one precomputed object per kind of answer.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
});

/** What an HTML page (the API reference, the development mailbox) gets on top: Helmet's set. */
export const DOCUMENT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...SECURITY_HEADERS,
  'cross-origin-opener-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
});

const API_HEADERS = Object.freeze({ ...SECURITY_HEADERS, 'content-security-policy': API_CSP });
const DOCS_HEADERS = Object.freeze({ ...DOCUMENT_HEADERS, 'content-security-policy': DOCS_CSP });
const DEV_PAGE_HEADERS = Object.freeze({
  ...DOCUMENT_HEADERS,
  'content-security-policy': API_CSP,
});

export function isDocsPath(url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?');
}

function hostAllowed(hostname: string, allowed: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return allowed.some((entry) =>
    entry.startsWith('.') ? host.endsWith(entry) || host === entry.slice(1) : host === entry,
  );
}

/** Sets the security headers of a response: the set and CSP for its path, HSTS when over HTTPS. */
export function makeSecurityHeaders(
  config: Config,
): (request: FastifyRequest, reply: FastifyReply) => void {
  // Only over HTTPS: served directly with TLS, or behind a trusted TLS proxy in production.
  const hstsAllowed = config.http.tls !== null || config.isProduction;
  return (request, reply) => {
    const url = request.url;
    reply.headers(
      isDocsPath(url) ? DOCS_HEADERS : url.startsWith('/dev/') ? DEV_PAGE_HEADERS : API_HEADERS,
    );
    if (hstsAllowed && request.protocol === 'https')
      reply.header('strict-transport-security', HSTS);
  };
}

/** A browser origin on this machine over plain HTTP, any port (development's default CORS). */
// eslint-disable-next-line security/detect-unsafe-regex -- fixed alternatives and a bounded port: linear
const LOCAL_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1)(:[0-9]{1,5})?$/;

/**
 * Whether CORS grants this browser origin credentials: one of `CORS_ORIGINS`, or in development
 * with it unset a local origin. (`*` grants any origin, but never credentials.)
 */
export function corsAllowsOrigin(config: Config, origin: string): boolean {
  const { corsOrigins, corsLocalhost } = config.http;
  return corsOrigins.includes(origin) || (corsLocalhost && LOCAL_ORIGIN.test(origin));
}

/** Host allow-list, URL length limit and CORS (when origins are configured, or local ones in development). */
export async function registerSecurity(app: FastifyInstance, config: Config): Promise<void> {
  const { http } = config;

  if (http.corsOrigins.length > 0 || http.corsLocalhost) {
    const anyOrigin = http.corsOrigins.includes('*');
    const common = {
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'Authorization',
        'Content-Type',
        'Idempotency-Key',
        'X-Request-Id',
        'X-CSRF-Token',
        'If-None-Match',
        'If-Match',
        // Partners' API keys (the public data app): a browser sends them only if preflight allows.
        'X-API-Key',
      ],
      exposedHeaders: [
        'X-Request-Id',
        'API-Version',
        'Deprecation',
        'Sunset',
        'Link',
        'Retry-After',
        'RateLimit',
        'RateLimit-Policy',
        'ETag',
        'Idempotent-Replayed',
      ],
      maxAge: 600,
    };
    // Decided per request so that credentials are only ever granted to a listed origin.
    await app.register(cors, {
      hook: 'onRequest',
      delegator: (request, callback) => {
        const origin = request.headers.origin;
        if (anyOrigin) return callback(null, { ...common, origin: '*', credentials: false });
        const listed = typeof origin === 'string' && corsAllowsOrigin(config, origin);
        callback(null, { ...common, origin: listed ? origin : false, credentials: listed });
      },
    });
  }
}

/**
 * The checks of a request on arrival, before anything else: the URL length limit, no NUL in the
 * user agent and, when `ALLOWED_HOSTS` is set, the host (operational routes exempt). The
 * refusal, or undefined.
 */
export function makeArrivalCheck(
  config: Config,
): (request: FastifyRequest) => HttpError | undefined {
  const { http } = config;
  const checkHost = http.allowedHosts.length > 0;
  return (request) => {
    if (request.url.length > http.maxUrlLength)
      return new HttpError(HttpCodes.URI_TOO_LONG, {
        detail: `The request target is longer than ${http.maxUrlLength} characters.`,
      });
    // The one header stored as sent (sessions, sign-in history). The HTTP parser refuses NUL in
    // every header; this guards in-process callers (`inject`) too. Other headers are checked for
    // shape where they are read, or declared in a route's `headers` schema (validated like a query).
    const agent = request.headers['user-agent'];
    if (agent !== undefined && agent.includes('\0'))
      return new HttpError(HttpCodes.VALIDATION_FAILED, {
        detail: 'The request does not match the schema.',
        errors: [{ path: '/headers/user-agent', message: 'must not contain NUL (U+0000)' }],
      });
    if (
      checkHost &&
      !OPERATIONAL_ROUTES.has(request.routeOptions.url ?? '') &&
      !hostAllowed(request.hostname, http.allowedHosts)
    )
      return new HttpError(HttpCodes.HOST_NOT_ALLOWED);
    return undefined;
  };
}
