import type { FastifyInstance } from 'fastify';
import { HttpCodes, HttpError } from './errors.ts';

/** Methods probed on every path; methods a route adds beyond these are recorded as routes appear. */
const COMMON_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * The methods the router answers on this request target (query string ignored), with OPTIONS
 * last; empty when no route has this path. A catch-all `*` route (CORS preflights) does not
 * make a path exist.
 */
export function allowedMethods(
  app: FastifyInstance,
  url: string,
  methods: Iterable<string>,
): string[] {
  const path = url.split('?')[0] ?? '';
  const allow: string[] = [];
  for (const method of methods) {
    if (method === 'OPTIONS') continue;
    let found: { params: Record<string, string | undefined> } | null;
    try {
      found = app.findRoute({ method, url });
    } catch {
      found = null;
    }
    if (found && found.params['*'] !== path.slice(1)) allow.push(method);
  }
  if (allow.length > 0) allow.push('OPTIONS');
  return allow;
}

/**
 * The answer when no route matches: 405 `METHOD_NOT_ALLOWED` with `Allow` when the path exists
 * with other methods (OPTIONS: 204 with `Allow`), else 404 `ROUTE_NOT_FOUND`.
 */
export function registerNotFound(app: FastifyInstance): void {
  const methods = new Set(COMMON_METHODS);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) methods.add(method.toUpperCase());
  });
  app.setNotFoundHandler(async (request, reply) => {
    const allow = allowedMethods(app, request.url, methods);
    if (allow.length === 0)
      throw new HttpError(HttpCodes.ROUTE_NOT_FOUND, {
        detail: `No route for ${request.method} ${request.url.split('?')[0] ?? ''}.`,
      });
    const header = allow.join(', ');
    if (request.method === 'OPTIONS') return reply.code(204).header('allow', header).send();
    throw new HttpError(HttpCodes.METHOD_NOT_ALLOWED, {
      detail: `${request.method} is not allowed here; this path allows ${header}.`,
      headers: { allow: header },
    });
  });
}
