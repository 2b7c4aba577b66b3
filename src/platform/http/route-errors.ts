import type { FastifyInstance, RouteOptions } from 'fastify';
import { errorCodeDef, statusOf } from './errors.ts';
import { API_PREFIX } from './versioning.ts';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * The error codes this route's handler (and its own hooks) may answer, beyond what the
     * platform's hooks give (those are derived from the route's config). Documented in OpenAPI
     * under their statuses; a code must be declared (`defineErrorCodes`).
     */
    errorCodes?: readonly string[];
  }
}

/** Routes reached by IP (probes, Prometheus): exempt from `ALLOWED_HOSTS`. */
export const OPERATIONAL_ROUTES: ReadonlySet<string> = new Set([
  '/health/live',
  '/health/ready',
  '/health',
  '/metrics',
]);

/** Methods whose body Fastify parses (and so may refuse). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What a route is made of, as far as its error answers go. */
export interface RouteShape {
  method: string | readonly string[];
  url: string;
  schema?: {
    body?: unknown;
    querystring?: unknown;
    params?: unknown;
    headers?: unknown;
    errorCodes?: readonly string[];
  };
  config?: unknown;
}

/** One reason a route may answer a status: the codes it then carries and a sentence. */
export interface ErrorAnswer {
  status: number;
  codes: readonly string[];
  why: string;
}

interface PlatformRouteConfig {
  auth?: 'required' | 'optional' | 'none';
  permission?: string;
  rateLimit?: readonly { failMode?: 'open' | 'closed' }[] | false;
  idempotency?: boolean | 'required';
}

/**
 * Every error a route can answer, derived from what the platform's hooks do with its config
 * and schema (the arrival check, body parsing, validation, authentication, permissions, rate
 * limits, idempotency keys) plus the codes the route declares in `schema.errorCodes`. The rules
 * mirror the hooks: a hook that learns to answer something new must add its rule here
 * (test/integration/openapi-errors.test.ts walks every route's hooks to check).
 */
export function routeErrorAnswers(route: RouteShape): ErrorAnswer[] {
  const methods = (Array.isArray(route.method) ? route.method : [route.method]) as string[];
  const schema = route.schema ?? {};
  const config = (route.config ?? {}) as PlatformRouteConfig;
  const api = route.url.startsWith(`${API_PREFIX}/`);
  const answers: ErrorAnswer[] = [
    {
      status: 414,
      codes: ['URI_TOO_LONG'],
      why: 'The request target, or a path segment, is too long',
    },
    {
      status: 422,
      codes: ['VALIDATION_FAILED'],
      why: 'A header read by the platform (`User-Agent`) contains NUL',
    },
    {
      status: 500,
      codes: ['INTERNAL_ERROR'],
      why: 'Unexpected error; the detail never shows internals',
    },
    {
      status: 503,
      codes: ['OVERLOADED', 'HANDLER_TIMEOUT', 'DEPENDENCY_UNAVAILABLE'],
      why: 'Overloaded, timed out, shutting down or a dependency is unavailable; see `Retry-After`',
    },
  ];
  const add = (status: number, codes: readonly string[], why: string) => {
    answers.push({ status, codes, why });
  };
  if (!OPERATIONAL_ROUTES.has(route.url))
    add(400, ['HOST_NOT_ALLOWED'], 'The `Host` is not one of `ALLOWED_HOSTS` (when set)');
  if (methods.some((m) => BODY_METHODS.has(m))) {
    add(
      400,
      ['MALFORMED_BODY', 'BAD_REQUEST'],
      'The body is not valid JSON, or its length is wrong',
    );
    add(413, ['PAYLOAD_TOO_LARGE'], 'The body is larger than the route accepts');
    add(415, ['UNSUPPORTED_MEDIA_TYPE'], 'The body is not `application/json`');
  }
  if (
    schema.body !== undefined ||
    schema.querystring !== undefined ||
    schema.params !== undefined ||
    schema.headers !== undefined
  )
    add(
      422,
      ['VALIDATION_FAILED'],
      'The input does not match the schema (NUL in a string and non-finite numbers included); `errors` names each field',
    );
  if (route.url.includes(':')) {
    add(400, ['BAD_REQUEST'], 'A path parameter is not valid percent-encoding');
    add(404, ['NOT_FOUND'], 'Nothing has this identifier (or the caller may not see it)');
  }
  // Authentication: `optional` unless the route says otherwise under /api/ (identity's rule).
  const auth = config.auth ?? (api ? 'optional' : 'none');
  if (auth !== 'none')
    add(
      401,
      ['UNAUTHORIZED'],
      auth === 'required'
        ? 'Sign-in required, or the access token is invalid, expired or revoked'
        : 'The access token sent is invalid, expired or revoked',
    );
  if (config.permission !== undefined) {
    add(401, ['UNAUTHORIZED'], 'Sign-in required');
    add(
      403,
      ['FORBIDDEN'],
      `The caller lacks \`${config.permission}\`, or holds it only through a role that needs a second factor this session lacks (\`MFA_REQUIRED\`)`,
    );
  }
  const ownLimits: readonly { failMode?: 'open' | 'closed' }[] = Array.isArray(config.rateLimit)
    ? config.rateLimit
    : [];
  if ((api && config.rateLimit !== false) || ownLimits.length > 0)
    add(429, ['RATE_LIMITED'], 'A rate limit was reached; see `Retry-After` and `RateLimit`');
  if (ownLimits.some((p) => p.failMode === 'closed'))
    add(503, ['RATE_LIMIT_UNAVAILABLE'], 'The rate-limit store did not answer (fails closed)');
  if (config.idempotency === 'required')
    add(400, ['IDEMPOTENCY_KEY_REQUIRED'], 'The `Idempotency-Key` header is missing');
  if (config.idempotency === true || config.idempotency === 'required') {
    add(400, ['INVALID_IDEMPOTENCY_KEY'], 'The `Idempotency-Key` is malformed');
    add(409, ['IDEMPOTENCY_IN_PROGRESS'], 'A request with this `Idempotency-Key` is still running');
    add(422, ['IDEMPOTENCY_KEY_REUSED'], 'This `Idempotency-Key` was used for another request');
  }
  for (const code of schema.errorCodes ?? []) {
    const def = errorCodeDef(code);
    if (!def) throw new Error(`route ${route.url}: error code ${code} is not declared`);
    add(statusOf(def.kind), [code], def.title);
  }
  return answers;
}

/** One documented error status of a route: its codes (first declared first) and its text. */
export interface DocumentedError {
  codes: readonly string[];
  description: string;
}

/** The statuses of `routeErrorAnswers`, each with its codes and reasons merged (OpenAPI text). */
export function documentedErrorAnswers(route: RouteShape): Map<number, DocumentedError> {
  const byStatus = new Map<number, { codes: Set<string>; whys: string[] }>();
  for (const answer of routeErrorAnswers(route)) {
    let entry = byStatus.get(answer.status);
    if (!entry) {
      entry = { codes: new Set(), whys: [] };
      byStatus.set(answer.status, entry);
    }
    for (const code of answer.codes) entry.codes.add(code);
    if (!entry.whys.includes(answer.why)) entry.whys.push(answer.why);
  }
  const out = new Map<number, DocumentedError>();
  for (const [status, { codes, whys }] of [...byStatus].sort(([a], [b]) => a - b)) {
    const list = [...codes].map((c) => `\`${c}\``).join(', ');
    out.set(status, { codes: [...codes], description: `${whys.join('. ')}. Codes: ${list}.` });
  }
  return out;
}

/** The statuses of `routeErrorAnswers` and their OpenAPI text. */
export function documentedErrors(route: RouteShape): Map<number, string> {
  return new Map([...documentedErrorAnswers(route)].map(([s, e]) => [s, e.description]));
}

const routeLists = new WeakMap<FastifyInstance, RouteOptions[]>();

/** Starts recording the routes added to `app` (and its children) from now on. */
export function recordRoutes(app: FastifyInstance): void {
  const routes: RouteOptions[] = [];
  routeLists.set(app, routes);
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
}

/** The routes recorded on `app`, with their config, schema and hooks as finally set up. */
export function registeredRoutes(app: FastifyInstance): readonly RouteOptions[] {
  return routeLists.get(app) ?? [];
}
