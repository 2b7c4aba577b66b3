import { LogController, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { HttpCodes, HttpError } from './errors.ts';
import { makeClientErrorHandler, sendProblem, toHttpError } from './problem.ts';
import { genReqId } from './request-id.ts';
import { makeSecurityHeaders } from './security.ts';
import { validatorFactory } from './validation.ts';
import { setVersionHeaders } from './versioning.ts';

/** Longest path parameter (a longer one is 414 `URI_TOO_LONG`). */
export const MAX_PARAM_LENGTH = 200;

/**
 * Fastify factory options from config: timeouts, limits, trusted proxies, request ids, validation.
 * The logger and its per-request child factory come from the observability area (see `buildApp`).
 */
export function serverOptions(
  config: Config,
): FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } | null } {
  const { http } = config;
  const securityHeaders = makeSecurityHeaders(config);
  // A hop count trusts that many addresses from the socket inwards, whatever they are. Fastify
  // ignores a bare number (it cannot check the peer), so it is passed as a trust function: only
  // safe when the server is reachable through those proxies alone (docs/traffic.md says so).
  const hops = http.trustProxy;
  const trustProxy =
    typeof hops === 'number'
      ? (_address: string, hop: number) => hop < hops
      : typeof hops === 'object'
        ? [...hops]
        : hops;
  return {
    genReqId,
    logController: new LogController({
      requestIdLogLabel: 'requestId',
      disableRequestLogging: true,
    }),
    trustProxy,
    bodyLimit: http.bodyLimit,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Stop accepting and let in-flight requests finish; idle keep-alive sockets are closed at once.
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    clientErrorHandler: makeClientErrorHandler(http.problemTypeBase),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Bodies strict, query, params and headers coerced; NUL and non-finite numbers refused.
    schemaController: { compilersFactory: { buildValidator: validatorFactory() as never } },
    // A path parameter that is not valid percent-encoding, or longer than `maxParamLength`:
    // answered as problems like every other error (Fastify's own answer is a plain JSON body).
    frameworkErrors: (error, request, reply) => {
      // Answered before routing: the platform's onSend hooks do not run, so their headers are set here.
      securityHeaders(request, reply);
      setVersionHeaders(request, reply);
      reply.header('x-request-id', request.id);
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      sendProblem(
        reply,
        http.problemTypeBase,
        tooLong || error.code === 'FST_ERR_BAD_URL'
          ? new HttpError(tooLong ? HttpCodes.URI_TOO_LONG : HttpCodes.BAD_REQUEST, {
              detail: tooLong
                ? `A path segment is longer than ${String(MAX_PARAM_LENGTH)} characters.`
                : 'The path is not valid percent-encoding.',
            })
          : toHttpError(error, false).httpError,
      );
    },
    ...(http.tls
      ? { https: { cert: readFileSync(http.tls.certFile), key: readFileSync(http.tls.keyFile) } }
      : {}),
  };
}
