import { LogController, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { requestChildLogger } from '../observability/logger.ts';
import { makeClientErrorHandler } from './problem.ts';
import { genReqId } from './request-id.ts';

/** Fastify factory options from config: timeouts, limits, trusted proxies, request ids, validation. */
export function serverOptions(
  config: Config,
): FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } | null } {
  const { http } = config;
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
    // The observability area writes one completion line per request itself.
    childLoggerFactory: requestChildLogger,
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
