import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';

export const API_VERSION = '1';
export const API_PREFIX = '/api/v1';

/** Route-level deprecation: sends `Deprecation` (RFC 9745) and `Sunset` (RFC 8594) and flags the operation in OpenAPI. */
export interface Deprecation {
  /** When the route became deprecated (ISO date). */
  since: string;
  /** When it stops working (ISO date). */
  sunset: string;
  /** A page describing the replacement. */
  link?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    deprecation?: Deprecation;
    /** Set by the platform at registration: the deprecation headers, computed once. */
    deprecationHeaders?: Readonly<Record<string, string>>;
  }
}

function toDate(value: string, what: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new Error(`deprecation ${what} "${value}" is not a date`);
  return date;
}

/** The headers of a deprecated route; a bad date fails at start-up, not on a request. */
function deprecationHeaders(deprecation: Deprecation): Record<string, string> {
  const headers: Record<string, string> = {
    deprecation: `@${Math.floor(toDate(deprecation.since, 'since').getTime() / 1000)}`,
    sunset: toDate(deprecation.sunset, 'sunset').toUTCString(),
  };
  if (deprecation.link) headers.link = `<${deprecation.link}>; rel="deprecation"; type="text/html"`;
  return headers;
}

/**
 * Flags deprecated routes in OpenAPI and gives each its own onSend hook for its headers, computed
 * once at registration: the other routes pay nothing for deprecation on their responses.
 */
export function registerVersioning(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const deprecation = route.config?.deprecation;
    if (!deprecation) return;
    const headers = deprecationHeaders(deprecation);
    route.config = { ...route.config, deprecationHeaders: headers };
    route.schema = { ...route.schema, deprecated: true };
    const setHeaders: onSendHookHandler = (_request, reply, payload, done) => {
      reply.headers(headers);
      done(null, payload);
    };
    const existing = route.onSend;
    route.onSend = existing === undefined ? [setHeaders] : [setHeaders, ...[existing].flat()];
  });
}

/** Sets `API-Version` on API responses (a deprecated route's own hook adds its headers). */
export function setVersionHeaders(request: FastifyRequest, reply: FastifyReply): void {
  if (request.url.startsWith('/api/')) reply.header('api-version', API_VERSION);
}
