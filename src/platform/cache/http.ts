import type { FastifyInstance, onSendHookHandler, RouteOptions } from 'fastify';
import { createHash } from 'node:crypto';

/**
 * HTTP caching of a public GET route: `Cache-Control: public, max-age=...` plus a strong ETag and
 * `If-None-Match` answered with 304. Only for responses that are the same for every caller.
 */
export interface HttpCachePolicy {
  /** Seconds browsers (and shared caches, unless `sMaxAge`) may reuse the response. */
  maxAge: number;
  /** Seconds shared caches (CDN, proxies) may reuse it. */
  sMaxAge?: number;
  /** Seconds a cache may serve it stale while refreshing in the background. */
  staleWhileRevalidate?: number;
  /** Seconds a cache may serve it stale when the origin fails. */
  staleIfError?: number;
  /** The URL's content never changes (versioned assets). */
  immutable?: boolean;
}

/**
 * Route `config.cache`: a public policy, or `'private'` for responses that depend on the caller
 * (`Cache-Control: private, no-store`, no ETag), or `'no-store'`.
 */
export type RouteCacheConfig = HttpCachePolicy | 'private' | 'no-store';

declare module 'fastify' {
  interface FastifyContextConfig {
    cache?: RouteCacheConfig;
  }
}

const PRIVATE = 'private, no-store';

function seconds(name: string, value: number | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0)
    throw new TypeError(`cache ${name} must be a whole number of seconds, 0 or more`);
  return String(value);
}

/** The `Cache-Control` value of a policy; a bad value throws (at route registration). */
export function cacheControl(config: RouteCacheConfig): string {
  if (config === 'private') return PRIVATE;
  if (config === 'no-store') return 'no-store';
  const maxAge = seconds('maxAge', config.maxAge);
  if (maxAge === undefined) throw new TypeError('cache maxAge is required');
  const parts = ['public', `max-age=${maxAge}`];
  const sMaxAge = seconds('sMaxAge', config.sMaxAge);
  if (sMaxAge !== undefined) parts.push(`s-maxage=${sMaxAge}`);
  const swr = seconds('staleWhileRevalidate', config.staleWhileRevalidate);
  if (swr !== undefined) parts.push(`stale-while-revalidate=${swr}`);
  const sie = seconds('staleIfError', config.staleIfError);
  if (sie !== undefined) parts.push(`stale-if-error=${sie}`);
  if (config.immutable === true) parts.push('immutable');
  return parts.join(', ');
}

/** A strong ETag of exactly these bytes: the quoted, base64url SHA-256 (first 32 characters). */
export function strongEtag(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

const ENTITY_TAG = /(?:W\/)?"([^"]*)"/g;

/**
 * Whether an `If-None-Match` value matches `etag` (RFC 9110 §13.1.2): `*` matches any current
 * representation; otherwise any listed tag matches by weak comparison (`W/"x"` equals `"x"`).
 */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  const opaque = /^(?:W\/)?"([^"]*)"$/.exec(etag)?.[1];
  if (opaque === undefined) return false;
  for (const match of ifNoneMatch.matchAll(ENTITY_TAG)) if (match[1] === opaque) return true;
  return false;
}

function publicHook(header: string): onSendHookHandler {
  return (request, reply, payload, done) => {
    const method = request.method;
    if (reply.statusCode !== 200 || (method !== 'GET' && method !== 'HEAD')) {
      done(null, payload);
      return;
    }
    // A response that sets a cookie is someone's: no shared cache may keep it.
    if (reply.hasHeader('set-cookie')) {
      reply.header('cache-control', PRIVATE);
      done(null, payload);
      return;
    }
    reply.header('cache-control', header);
    let etag = reply.getHeader('etag');
    if (typeof etag !== 'string') {
      // A stream would have to be buffered to hash: it goes out without an ETag.
      if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) {
        done(null, payload);
        return;
      }
      etag = strongEtag(payload);
      reply.header('etag', etag);
    }
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch === undefined || !etagMatches(ifNoneMatch, etag)) {
      done(null, payload);
      return;
    }
    reply.code(304);
    reply.removeHeader('content-type');
    reply.removeHeader('content-length');
    // HEAD keeps the payload so Fastify's HEAD hook sends the 200's Content-Length (RFC 9110 §8.6).
    done(null, method === 'HEAD' ? payload : null);
  };
}

function fixedHook(header: string): onSendHookHandler {
  return (_request, reply, payload, done) => {
    reply.header('cache-control', header);
    done(null, payload);
  };
}

/**
 * Applies route `config.cache` to the routes registered after it (call it before the apps'
 * routes): a public policy is allowed on GET routes only and acts on their 200 responses; errors
 * and other statuses keep their headers. Routes without `config.cache` are untouched, at no cost.
 */
export function registerHttpCaching(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config?.cache;
    if (config === undefined) return;
    const header = cacheControl(config);
    let hook: onSendHookHandler;
    if (typeof config === 'string') {
      hook = fixedHook(header);
    } else {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const unsafe = methods.filter((m) => m !== 'GET' && m !== 'HEAD');
      if (unsafe.length > 0)
        throw new Error(
          `route ${unsafe.join(',')} ${route.url}: a public cache policy is for GET routes only`,
        );
      hook = publicHook(header);
    }
    const existing = route.onSend === undefined ? [] : [route.onSend].flat();
    // First, so the HEAD route's own hook (which drops the body) runs after the ETag is computed.
    route.onSend = [hook, ...existing] as RouteOptions['onSend'];
  });
}
