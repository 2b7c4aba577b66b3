/** The kinds of failure code may throw; the error handler maps each to one HTTP status. */
export type ErrorKind =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'PreconditionFailed'
  | 'PayloadTooLarge'
  | 'UriTooLong'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'RateLimited'
  | 'HeadersTooLarge'
  | 'Internal'
  | 'Unavailable';

export function statusOf(kind: ErrorKind): number {
  switch (kind) {
    case 'BadRequest':
      return 400;
    case 'Unauthorized':
      return 401;
    case 'Forbidden':
      return 403;
    case 'NotFound':
      return 404;
    case 'MethodNotAllowed':
      return 405;
    case 'Conflict':
      return 409;
    case 'PreconditionFailed':
      return 412;
    case 'PayloadTooLarge':
      return 413;
    case 'UriTooLong':
      return 414;
    case 'UnsupportedMediaType':
      return 415;
    case 'Invalid':
      return 422;
    case 'RateLimited':
      return 429;
    case 'HeadersTooLarge':
      return 431;
    case 'Internal':
      return 500;
    case 'Unavailable':
      return 503;
  }
}

/** A stable error code: its kind (hence status) and the default human title. */
export interface ErrorCodeDef {
  readonly kind: ErrorKind;
  readonly title: string;
  readonly description: string;
}

const registry = new Map<string, ErrorCodeDef & { area: string }>();

/**
 * Declares an area's error codes in one place (UPPER_SNAKE, stable forever once shipped).
 * Returns the same object, typed, so code refers to `Codes.X` rather than a string.
 */
export function defineErrorCodes<const T extends Record<string, ErrorCodeDef>>(
  area: string,
  codes: T,
): { [K in keyof T]: K & string } {
  const out: Record<string, string> = {};
  for (const [code, def] of Object.entries(codes)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(code)) throw new Error(`error code ${code} is not UPPER_SNAKE`);
    const existing = registry.get(code);
    if (existing && existing.area !== area)
      throw new Error(`error code ${code} is declared by ${existing.area} and ${area}`);
    registry.set(code, { ...def, area });
    out[code] = code;
  }
  return out as { [K in keyof T]: K & string };
}

/** Every declared error code, for docs and OpenAPI. */
export function listErrorCodes(): {
  code: string;
  status: number;
  area: string;
  title: string;
  description: string;
}[] {
  return [...registry.entries()]
    .map(([code, d]) => ({
      code,
      status: statusOf(d.kind),
      area: d.area,
      title: d.title,
      description: d.description,
    }))
    .sort(
      (a, b) => a.area.localeCompare(b.area) || a.status - b.status || a.code.localeCompare(b.code),
    );
}

export function errorCodeDef(code: string): (ErrorCodeDef & { area: string }) | undefined {
  return registry.get(code);
}

/** One field-level validation failure. `path` is a JSON pointer prefixed by the request part. */
export interface FieldError {
  path: string;
  message: string;
}

export interface HttpErrorOptions {
  detail?: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  cause?: unknown;
  /** Extra members added to the problem body (must be safe to show a client). */
  extensions?: Record<string, unknown>;
}

/** The one error type the error handler turns into a problem response. */
export class HttpError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly status: number;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(code: string, options: HttpErrorOptions = {}) {
    const def = registry.get(code);
    if (!def) throw new Error(`undeclared error code ${code}`);
    super(options.detail ?? def.title, { cause: options.cause });
    this.name = 'HttpError';
    this.code = code;
    this.kind = def.kind;
    this.status = statusOf(def.kind);
    this.detail = options.detail;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }
}

export const HttpCodes = defineErrorCodes('http', {
  MALFORMED_BODY: {
    kind: 'BadRequest',
    title: 'Malformed request body',
    description: 'The body could not be parsed (invalid JSON, or empty with a JSON content type).',
  },
  BAD_REQUEST: {
    kind: 'BadRequest',
    title: 'Bad request',
    description: 'The request is not well-formed HTTP (bad header, bad content length).',
  },
  HOST_NOT_ALLOWED: {
    kind: 'BadRequest',
    title: 'Host not allowed',
    description: 'The `Host` header names a host this server does not answer (`ALLOWED_HOSTS`).',
  },
  UNAUTHORIZED: {
    kind: 'Unauthorized',
    title: 'Authentication required',
    description: 'Missing or invalid credentials.',
  },
  FORBIDDEN: { kind: 'Forbidden', title: 'Forbidden', description: 'The caller may not do this.' },
  ROUTE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Route not found',
    description: 'No route has this path (a path that exists with other methods is 405).',
  },
  NOT_FOUND: {
    kind: 'NotFound',
    title: 'Not found',
    description: 'The resource does not exist or is not visible to the caller.',
  },
  METHOD_NOT_ALLOWED: {
    kind: 'MethodNotAllowed',
    title: 'Method not allowed',
    description:
      'The path exists but not with this method; the `Allow` header lists the methods it answers.',
  },
  PAYLOAD_TOO_LARGE: {
    kind: 'PayloadTooLarge',
    title: 'Payload too large',
    description: 'The body is larger than the route accepts (1 MiB by default).',
  },
  URI_TOO_LONG: {
    kind: 'UriTooLong',
    title: 'URI too long',
    description: 'The request target is longer than `MAX_URL_LENGTH`.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    kind: 'UnsupportedMediaType',
    title: 'Unsupported media type',
    description: 'The `Content-Type` of the body is not one the route accepts.',
  },
  VALIDATION_FAILED: {
    kind: 'Invalid',
    title: 'Validation failed',
    description:
      'The body, query, path or headers do not match the schema; `errors` lists each field.',
  },
  RATE_LIMITED: {
    kind: 'RateLimited',
    title: 'Too many requests',
    description:
      'A rate or send limit was reached; retry after `Retry-After` seconds (the `RateLimit` headers say which policy).',
  },
  HEADERS_TOO_LARGE: {
    kind: 'HeadersTooLarge',
    title: 'Request header fields too large',
    description: 'The request line and headers exceed the server limit.',
  },
  INTERNAL_ERROR: {
    kind: 'Internal',
    title: 'Internal server error',
    description: 'Something unexpected failed; the `requestId` finds it in the logs.',
  },
  HANDLER_TIMEOUT: {
    kind: 'Unavailable',
    title: 'Request timed out',
    description: 'The request took longer than the handler timeout; it may be retried later.',
  },
  OVERLOADED: {
    kind: 'Unavailable',
    title: 'Server overloaded',
    description: 'The server is shedding load; retry after `Retry-After` seconds.',
  },
});
