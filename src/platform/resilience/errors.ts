import { defineErrorCodes } from '../http/index.ts';

/**
 * Outbound call failures, as the client sees them. All three are 503: the error kinds have no 502
 * or 504 (a `BadGateway`/`GatewayTimeout` kind would let `UPSTREAM_ERROR` and `UPSTREAM_TIMEOUT`
 * say so precisely; the codes stay the same either way).
 */
export const ResilienceCodes = defineErrorCodes('resilience', {
  UPSTREAM_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Upstream service unavailable',
    description:
      'A service this request depends on is failing or unreachable (its circuit breaker is open, or it refused the connection); retry after `Retry-After` seconds when present.',
  },
  UPSTREAM_TIMEOUT: {
    kind: 'Unavailable',
    title: 'Upstream service timed out',
    description:
      'A service this request depends on did not answer in time, retries included; it may be retried later.',
  },
  UPSTREAM_ERROR: {
    kind: 'Unavailable',
    title: 'Upstream service error',
    description:
      'A service this request depends on answered with a server error (after retries) or a response that could not be read.',
  },
});
