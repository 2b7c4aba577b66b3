import cors from '@fastify/cors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.ts';
import { HttpCodes, HttpError } from './errors.ts';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The API reference page loads its own scripts, styles and images, nothing from elsewhere. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * The headers Helmet would set with this configuration, computed once. Setting them as one object
 * from the single onSend hook costs a fraction of Helmet's per-request middleware chain, which was
 * a measured share of the HTTP benchmark (docs/benchmarks.md).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
});

/** Operational routes reached by IP (orchestrator probes, Prometheus): exempt from `ALLOWED_HOSTS`. */
const OPERATIONAL_ROUTES = new Set(['/health/live', '/health/ready', '/health', '/metrics']);

export function isDocsPath(url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?');
}

function hostAllowed(hostname: string, allowed: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return allowed.some((entry) =>
    entry.startsWith('.') ? host.endsWith(entry) || host === entry.slice(1) : host === entry,
  );
}

/** Sets the security headers of a response: the static set, the CSP for its path, HSTS when over HTTPS. */
export function makeSecurityHeaders(
  config: Config,
): (request: FastifyRequest, reply: FastifyReply) => void {
  // Only over HTTPS: served directly with TLS, or behind a trusted TLS proxy in production.
  const hstsAllowed = config.http.tls !== null || config.isProduction;
  return (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('content-security-policy', isDocsPath(request.url) ? DOCS_CSP : API_CSP);
    if (hstsAllowed && request.protocol === 'https')
      reply.header('strict-transport-security', HSTS);
  };
}

/** Host allow-list, URL length limit and CORS (only when origins are configured). */
export async function registerSecurity(app: FastifyInstance, config: Config): Promise<void> {
  const { http } = config;

  if (http.corsOrigins.length > 0) {
    const anyOrigin = http.corsOrigins.includes('*');
    const origins = new Set(http.corsOrigins);
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
        const listed = typeof origin === 'string' && origins.has(origin);
        callback(null, { ...common, origin: listed ? origin : false, credentials: listed });
      },
    });
  }

  const checkHost = http.allowedHosts.length > 0;
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.url.length > http.maxUrlLength) {
      done(
        new HttpError(HttpCodes.URI_TOO_LONG, {
          detail: `The request target is longer than ${http.maxUrlLength} characters.`,
        }),
      );
      return;
    }
    if (
      checkHost &&
      !OPERATIONAL_ROUTES.has(request.routeOptions.url ?? '') &&
      !hostAllowed(request.hostname, http.allowedHosts)
    ) {
      done(new HttpError(HttpCodes.HOST_NOT_ALLOWED));
      return;
    }
    done();
  });
}
