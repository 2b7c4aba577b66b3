import { LogController, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { makeClientErrorHandler } from './problem.ts';
import { genReqId } from './request-id.ts';

/** Fastify factory options from config: timeouts, limits, trusted proxies, request ids, validation. */
export function serverOptions(
  config: Config,
): FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } | null } {
  const { http } = config;
  // Fastify accepts a hop count at run time; its types only list string | string[] | boolean.
  const trustProxy = (
    typeof http.trustProxy === 'object' ? [...http.trustProxy] : http.trustProxy
  ) as string[] | boolean;
  return {
    genReqId,
    // The observability area writes one completion line per request itself.
    logController: new LogController({
      requestIdLogLabel: 'requestId',
      disableRequestLogging: true,
    }),
    trustProxy,
    bodyLimit: http.bodyLimit,
    handlerTimeout: http.handlerTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Stop accepting and let in-flight requests finish; idle keep-alive sockets are closed at once.
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    clientErrorHandler: makeClientErrorHandler(http.problemTypeBase),
    routerOptions: { maxParamLength: 200 },
    ajv: {
      customOptions: {
        allErrors: true,
        removeAdditional: true,
        coerceTypes: 'array',
        useDefaults: true,
      },
    },
    ...(http.tls
      ? { https: { cert: readFileSync(http.tls.certFile), key: readFileSync(http.tls.keyFile) } }
      : {}),
  };
}
