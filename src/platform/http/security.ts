import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.ts';
import { HttpCodes, HttpError } from './errors.ts';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The API reference page loads its own scripts, styles and images, nothing from elsewhere. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const HSTS = 'max-age=31536000; includeSubDomains';

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

/** Security headers, host allow-list, URL length limit and CORS. */
export async function registerSecurity(app: FastifyInstance, config: Config): Promise<void> {
  const { http } = config;

  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: false,
    strictTransportSecurity: false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
  });

  const hstsAllowed = http.tls !== null || config.isProduction;
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('content-security-policy', isDocsPath(request.url) ? DOCS_CSP : API_CSP);
    // Only over HTTPS: served directly with TLS, or behind a trusted TLS proxy in production.
    if (hstsAllowed && request.protocol === 'https')
      reply.header('strict-transport-security', HSTS);
    reply.removeHeader('x-powered-by');
    return payload;
  });

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

  // After helmet and CORS, so that refused requests still carry the security headers.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.url.length > http.maxUrlLength) {
      throw new HttpError(HttpCodes.URI_TOO_LONG, {
        detail: `The request target is longer than ${http.maxUrlLength} characters.`,
      });
    }
    if (
      http.allowedHosts.length > 0 &&
      !OPERATIONAL_ROUTES.has(request.routeOptions.url ?? '') &&
      !hostAllowed(request.hostname, http.allowedHosts)
    ) {
      throw new HttpError(HttpCodes.HOST_NOT_ALLOWED);
    }
  });
}
