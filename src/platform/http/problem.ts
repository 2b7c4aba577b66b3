import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { HttpCodes, HttpError, errorCodeDef, type FieldError } from './errors.ts';
import { newRequestId } from './request-id.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** RFC 9457 problem details as Groundwork sends them. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface ProblemOptions {
  typeBase: string;
  /** Show internal error messages in 500 responses (development only). */
  exposeInternalErrors: boolean;
  /** Turn library errors into typed errors at the edge of the area that owns them (database down → 503). */
  translators?: readonly ((error: unknown) => HttpError | undefined)[];
  /** Called for every 5xx caused by an unexpected error (error tracking). */
  reportError?: (error: unknown, request: FastifyRequest) => void;
}

const GENERIC_5XX_DETAIL = 'An unexpected error occurred. Quote the requestId when reporting it.';

/** The problem type URI of a code: `<base><code-in-kebab-case>`. */
export function problemType(base: string, code: string): string {
  return `${base}${code.toLowerCase().replaceAll('_', '-')}`;
}

export function problemBody(base: string, error: HttpError, requestId: string): ProblemBody {
  const def = errorCodeDef(error.code);
  const body: ProblemBody = {
    ...error.extensions,
    type: problemType(base, error.code),
    title: def?.title ?? STATUS_CODES[error.status] ?? 'Error',
    status: error.status,
    detail: error.detail ?? def?.description ?? def?.title ?? '',
    code: error.code,
    requestId,
  };
  if (error.errors) body.errors = error.errors;
  return body;
}

interface AjvError {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Turns Ajv errors into `{path, message}` entries with JSON pointers prefixed by the request part. */
export function fieldErrors(
  context: string | undefined,
  validation: readonly AjvError[],
): FieldError[] {
  const part = context === 'querystring' ? 'query' : (context ?? 'body');
  return validation.map((e) => {
    let path = `/${part}${e.instancePath ?? ''}`;
    const missing = e.params?.missingProperty;
    const extra = e.params?.additionalProperty ?? e.params?.propertyName;
    if (typeof missing === 'string') path += `/${missing}`;
    else if (typeof extra === 'string') path += `/${extra}`;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'enum' && Array.isArray(e.params?.allowedValues)) {
      message += `: ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { path, message };
  });
}

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: HttpCodes.MALFORMED_BODY,
  FST_ERR_CTP_EMPTY_JSON_BODY: HttpCodes.MALFORMED_BODY,
  FST_ERR_CTP_BODY_TOO_LARGE: HttpCodes.PAYLOAD_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: HttpCodes.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: HttpCodes.BAD_REQUEST,
  FST_ERR_HANDLER_TIMEOUT: HttpCodes.HANDLER_TIMEOUT,
};

const STATUS_FALLBACK: Record<number, string> = {
  400: HttpCodes.BAD_REQUEST,
  401: HttpCodes.UNAUTHORIZED,
  403: HttpCodes.FORBIDDEN,
  404: HttpCodes.NOT_FOUND,
  405: HttpCodes.METHOD_NOT_ALLOWED,
  413: HttpCodes.PAYLOAD_TOO_LARGE,
  414: HttpCodes.URI_TOO_LONG,
  415: HttpCodes.UNSUPPORTED_MEDIA_TYPE,
  422: HttpCodes.VALIDATION_FAILED,
  431: HttpCodes.HEADERS_TOO_LARGE,
  503: HttpCodes.OVERLOADED,
};

/** Maps anything thrown into an `HttpError`; unknown errors become `INTERNAL_ERROR`. */
export function toHttpError(
  error: unknown,
  exposeInternal: boolean,
): { httpError: HttpError; unexpected: boolean } {
  if (error instanceof HttpError) return { httpError: error, unexpected: false };
  const fe = error as Partial<FastifyError> & { validation?: AjvError[] };
  if (Array.isArray(fe.validation)) {
    return {
      httpError: new HttpError(HttpCodes.VALIDATION_FAILED, {
        detail: 'The request does not match the schema.',
        errors: fieldErrors(fe.validationContext, fe.validation),
      }),
      unexpected: false,
    };
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return { httpError: new HttpError(mapped, { cause: error }), unexpected: false };
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // A library's client error (proto poisoning, bad content length...): its message is meant for the client.
    const code =
      status === 400 && error instanceof SyntaxError
        ? HttpCodes.MALFORMED_BODY
        : (STATUS_FALLBACK[status] ?? HttpCodes.BAD_REQUEST);
    return {
      httpError: new HttpError(code, { detail: fe.message, cause: error }),
      unexpected: false,
    };
  }
  const detail = exposeInternal && error instanceof Error ? error.message : GENERIC_5XX_DETAIL;
  return {
    httpError: new HttpError(HttpCodes.INTERNAL_ERROR, { detail, cause: error }),
    unexpected: true,
  };
}

/** Sends an `HttpError` as problem+json with its headers. */
export function sendProblem(reply: FastifyReply, base: string, error: HttpError): FastifyReply {
  reply.code(error.status);
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemBody(base, error, reply.request.id)));
}

/** The one Fastify error handler: every error response leaves through here. */
export function makeErrorHandler(options: ProblemOptions) {
  return function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    // An HttpError is already an answer: translators (which look at causes) must not replace it.
    const translated =
      error instanceof HttpError
        ? undefined
        : options.translators?.reduce<HttpError | undefined>(
            (found, t) => found ?? t(error),
            undefined,
          );
    const { httpError, unexpected } = translated
      ? { httpError: translated, unexpected: false }
      : toHttpError(error, options.exposeInternalErrors);
    if (unexpected) {
      request.log.error({ err: error }, 'unexpected error');
      options.reportError?.(error, request);
    } else if (httpError.status >= 500) {
      request.log.warn({ code: httpError.code }, httpError.message);
    }
    return sendProblem(reply, options.typeBase, httpError);
  };
}

/** Answers malformed HTTP at the socket (before Fastify sees a request) with a problem body. */
export function makeClientErrorHandler(typeBase: string) {
  return function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy(err);
      return;
    }
    const error = new HttpError(
      err.code === 'HPE_HEADER_OVERFLOW' ? HttpCodes.HEADERS_TOO_LARGE : HttpCodes.BAD_REQUEST,
    );
    const requestId = newRequestId();
    const body = JSON.stringify(problemBody(typeBase, error, requestId));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
          `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Request-Id: ${requestId}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  };
}
