import { isIP } from 'node:net';
import { Pool, buildConnector } from 'undici';
import {
  createKeyedBreakers,
  parseRetryAfter,
  type BreakerPolicy,
  type KeyedBreakers,
} from '../resilience/index.ts';
import { signWebhook } from './signing.ts';
import {
  checkWebhookUrl,
  isAllowedAddress,
  type Resolver,
  type UrlFailureClass,
  type UrlPolicy,
} from './ssrf.ts';

export { newWebhookSecret, signWebhook } from './signing.ts';
export {
  checkWebhookUrl,
  classifyAddress,
  isAllowedAddress,
  isForbiddenAddress,
  systemResolver,
} from './ssrf.ts';
export type { AddressClass, Resolver, UrlCheck, UrlFailureClass, UrlPolicy } from './ssrf.ts';

/** One attempt to deliver one signed message to one URL. */
export interface AttemptRequest {
  url: string;
  /** `webhook-id`: the same for every attempt of a message (receivers deduplicate on it). */
  messageId: string;
  /** `webhook-timestamp`, whole seconds: the time of this attempt (signed, so re-signed per attempt). */
  timestampSeconds: number;
  /** The JSON body, sent and signed exactly as given. */
  body: string;
  /** Active `whsec_...` secrets: one signature each (two during a rotation overlap). */
  secrets: readonly string[];
  /** Covers name resolution, connecting, the response headers and reading the body. */
  timeoutMs: number;
  policy: UrlPolicy;
  /** Aborts the attempt (shutdown): the result is a retry with errorClass `aborted`. */
  signal?: AbortSignal;
  /** Default `Groundwork-Webhooks`; give `Groundwork-Webhooks/<version>`. */
  userAgent?: string;
  /** Response bytes read before the connection is dropped (default 64 KiB). */
  maxResponseBytes?: number;
}

/**
 * Stable `errorClass` values (documented for integrators in docs/webhooks.md):
 * - `invalid-url`: the URL is not acceptable (scheme, credentials, length); outcome `blocked`.
 * - `blocked-address`: the host resolves to an address the policy refuses; outcome `blocked`.
 * - `dns`: the host name did not resolve; retried.
 * - `timeout`: no complete answer within the time limit; retried.
 * - `connection`: refused, reset or unreachable; retried.
 * - `tls`: the TLS handshake failed (certificate not valid for the host, expired...); retried.
 * - `protocol`: the answer was not readable HTTP; retried.
 * - `redirect`: a 3xx answer (redirects are not followed); retried.
 * - `http-410`: 410 Gone; outcome `gone` (the endpoint should be disabled).
 * - `http-429`: rate limited; retried, `retryAfterSeconds` from `Retry-After`.
 * - `http-4xx`: another 4xx; retried.
 * - `http-5xx`: a 5xx (503 carries `retryAfterSeconds`); retried.
 * - `circuit-open`: the host failed repeatedly and its breaker is open; nothing was sent; retried.
 * - `aborted`: the caller's signal aborted the attempt (shutdown); retried.
 */
export type DeliveryErrorClass =
  | UrlFailureClass
  | 'timeout'
  | 'connection'
  | 'tls'
  | 'protocol'
  | 'redirect'
  | 'http-410'
  | 'http-429'
  | 'http-4xx'
  | 'http-5xx'
  | 'circuit-open'
  | 'aborted';

export interface AttemptResult {
  /** 2xx | retryable | 410 (disable the endpoint) | refused by the URL policy (not sent). */
  outcome: 'success' | 'retry' | 'gone' | 'blocked';
  status: number | null;
  durationMs: number;
  /** The first 4 KiB of the response body, UTF-8 decoded (lossy), NUL characters replaced. */
  responseBody: string;
  /** The body went on past `maxResponseBytes` and the connection was dropped. */
  responseTruncated: boolean;
  errorClass: DeliveryErrorClass | null;
  /** A short description safe to show the endpoint's owner (no internal addresses). */
  errorDetail: string | null;
  /** From `Retry-After` on 429 and 503 (delay-seconds or HTTP date); unreadable: null. Not capped. */
  retryAfterSeconds: number | null;
  /** The IP address connected to. */
  address: string | null;
}

export interface DeliveryAgentOptions {
  /** Connection pools kept (one per origin and address); the least recently used is closed. */
  maxPools?: number;
  /** Connections per pool (the caller caps concurrency per endpoint). */
  connectionsPerPool?: number;
  keepAliveTimeoutMs?: number;
  /** A breaker per endpoint host (`host:port`), or false for none. */
  breaker?: Partial<BreakerPolicy> | false;
  /** Hosts whose breakers are remembered. */
  maxBreakerHosts?: number;
  /** Time to establish a connection to one address (default 5 s); then the next address is tried. */
  connectTimeoutMs?: number;
  /** Trusted CA certificates (PEM) instead of Node's default roots: tests and private PKI only. */
  ca?: string | string[];
}

/** Keep-alive connections and per-host breakers shared by attempts; one per process. */
export interface DeliveryAgent {
  readonly breakers: KeyedBreakers<AttemptResult> | undefined;
  /** A pool connecting only to `address` (the connection is refused if it is not allowed). */
  pool(origin: string, address: string, policy: Pick<UrlPolicy, 'allowPrivateNetworks'>): Pool;
  /** Closes every connection. */
  close(): Promise<void>;
}

const RESPONSE_KEPT_BYTES = 4096;
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const BREAKER_FAILURES: ReadonlySet<string> = new Set([
  'timeout',
  'connection',
  'tls',
  'protocol',
  'http-5xx',
]);
/** A header value without control characters (the id and user agent come from our code). */
const HEADER_VALUE = /^[\x20-\x7e]{1,256}$/;

/** Makes the agent: pools pinned to checked addresses, breakers per host (default 5 failures, 30 s). */
export function createDeliveryAgent(options: DeliveryAgentOptions = {}): DeliveryAgent {
  const maxPools = options.maxPools ?? 256;
  const pools = new Map<string, Pool>();
  const breakers =
    options.breaker === false
      ? undefined
      : createKeyedBreakers<AttemptResult>({
          policy: { failureThreshold: 5, halfOpenAfterMs: 30_000, ...options.breaker },
          isFailure: (result) =>
            result.errorClass !== null && BREAKER_FAILURES.has(result.errorClass),
          maxKeys: options.maxBreakerHosts ?? 10_000,
        });
  return {
    breakers,
    pool(origin, address, policy) {
      const key = `${origin} ${address} ${policy.allowPrivateNetworks}`;
      let pool = pools.get(key);
      if (pool) {
        pools.delete(key);
      } else {
        pool = new Pool(origin, {
          connect: pinnedConnector(address, policy, {
            ca: options.ca,
            timeoutMs: options.connectTimeoutMs ?? 5_000,
          }),
          connections: options.connectionsPerPool ?? 16,
          keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
          allowH2: false,
        });
        if (pools.size >= maxPools) {
          const [oldestKey, oldest] = pools.entries().next().value ?? [];
          if (oldestKey !== undefined) pools.delete(oldestKey);
          void oldest?.close().catch(() => undefined);
        }
      }
      pools.set(key, pool);
      return pool;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.destroy()));
    },
  };
}

/** Raised by the connector when a socket ended up somewhere the policy refuses. */
class BlockedConnection extends Error {}

/**
 * A connector that never resolves the host again: the lookup answers the address checked for
 * this attempt (so a DNS answer that changes in between, rebinding, is never used), while TLS
 * keeps the host name for SNI and certificate checks and the Host header keeps it too. The
 * connected socket's peer is checked once more.
 */
function pinnedConnector(
  address: string,
  policy: Pick<UrlPolicy, 'allowPrivateNetworks'>,
  { ca, timeoutMs }: { ca: string | string[] | undefined; timeoutMs: number },
): buildConnector.connector {
  const family = isIP(address) === 6 ? 6 : 4;
  const base = buildConnector({
    allowH2: false,
    timeout: timeoutMs,
    ...(ca === undefined ? {} : { ca }),
    lookup(_hostname, lookupOptions, callback) {
      if (lookupOptions.all) callback(null, [{ address, family }]);
      else callback(null, address, family);
    },
  });
  return (connectOptions, callback) => {
    base(connectOptions, (error, socket) => {
      if (error) return callback(error, null);
      const remote = socket.remoteAddress;
      if (!remote || !isAllowedAddress(remote, policy)) {
        socket.destroy();
        return callback(new BlockedConnection('connected to a refused address'), null);
      }
      callback(null, socket);
    });
  };
}

/**
 * One delivery attempt: checks the URL and every address its host resolves to, then POSTs the
 * signed message to a checked address (never resolving again; the next checked address only when
 * no connection could be made to the previous), reading at most
 * `maxResponseBytes` of the answer within `timeoutMs` all told. Redirects are not followed.
 * Resolves with the outcome for every network or receiver behaviour; rejects only on a caller's
 * mistake (a malformed secret, a header value with control characters).
 */
export async function attemptDelivery(
  req: AttemptRequest,
  deps: { resolver?: Resolver; agent?: DeliveryAgent } = {},
): Promise<AttemptResult> {
  const started = performance.now();
  const userAgent = req.userAgent ?? 'Groundwork-Webhooks';
  if (!HEADER_VALUE.test(req.messageId))
    throw new TypeError('webhook message id is not a header value');
  if (!HEADER_VALUE.test(userAgent)) throw new TypeError('user agent is not a header value');
  if (!Number.isFinite(req.timeoutMs) || req.timeoutMs <= 0)
    throw new TypeError('timeoutMs must be a positive number');
  const signature = signWebhook(req.secrets, req.messageId, req.timestampSeconds, req.body);

  const timer = new AbortController();
  const timeout = setTimeout(() => timer.abort(new Error('timed out')), req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([timer.signal, req.signal]) : timer.signal;
  const elapsed = () => Math.round(performance.now() - started);
  const failed = (
    outcome: AttemptResult['outcome'],
    errorClass: DeliveryErrorClass,
    errorDetail: string,
    address: string | null = null,
  ): AttemptResult => ({
    outcome,
    status: null,
    durationMs: elapsed(),
    responseBody: '',
    responseTruncated: false,
    errorClass,
    errorDetail,
    retryAfterSeconds: null,
    address,
  });
  const interrupted = (): AttemptResult | undefined => {
    if (req.signal?.aborted && !timer.signal.aborted)
      return failed('retry', 'aborted', 'the attempt was cancelled');
    if (timer.signal.aborted)
      return failed('retry', 'timeout', `no complete answer within ${req.timeoutMs} ms`);
    return undefined;
  };

  const ownAgent = deps.agent ? undefined : createDeliveryAgent({ maxPools: 1, breaker: false });
  const agent = deps.agent ?? ownAgent!;
  try {
    const check = await untilAborted(checkWebhookUrl(req.url, req.policy, deps.resolver), signal);
    if (!check) return interrupted()!;
    if (!check.ok)
      return failed(
        check.errorClass === 'dns' ? 'retry' : 'blocked',
        check.errorClass,
        check.reason,
      );
    const { url } = check;

    /** One try at one address; `unreachable` when no connection could be made (nothing sent). */
    const sendTo = async (
      address: string,
    ): Promise<{ result: AttemptResult; unreachable?: boolean }> => {
      const pool = agent.pool(url.origin, address, req.policy);
      const remaining = Math.max(1, req.timeoutMs - (performance.now() - started));
      let status: number;
      let retryAfterSeconds: number | null = null;
      const kept: Buffer[] = [];
      let keptBytes = 0;
      let truncated = false;
      try {
        const res = await pool.request({
          method: 'POST',
          path: url.pathname + url.search,
          headers: {
            'content-type': 'application/json',
            'user-agent': userAgent,
            'webhook-id': req.messageId,
            'webhook-timestamp': String(req.timestampSeconds),
            'webhook-signature': signature,
          },
          body: req.body,
          signal,
          headersTimeout: remaining,
          bodyTimeout: remaining,
        });
        status = res.statusCode;
        if (status === 429 || status === 503)
          retryAfterSeconds = retryAfter(res.headers['retry-after']);
        const maxBytes = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
        let read = 0;
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            if (keptBytes < RESPONSE_KEPT_BYTES) {
              const part = chunk.subarray(0, RESPONSE_KEPT_BYTES - keptBytes);
              kept.push(part);
              keptBytes += part.length;
            }
            read += chunk.length;
            if (read > maxBytes) {
              truncated = true;
              break; // ends the iterator, which destroys the body and so the connection
            }
          }
        } catch {
          // The answer's status is known: a body cut short (time limit, reset) does not change it.
          truncated = true;
          res.body.destroy();
        }
      } catch (error) {
        const stopped = interrupted();
        if (stopped) return { result: { ...stopped, address } };
        if (error instanceof BlockedConnection)
          return {
            result: failed(
              'blocked',
              'blocked-address',
              'resolves to a forbidden address',
              address,
            ),
          };
        const [errorClass, detail] = classifyError(error);
        return {
          result: failed('retry', errorClass, detail, address),
          unreachable: CONNECT_FAILURES.has(errorCode(error)),
        };
      }
      return {
        result: {
          ...byStatus(status),
          status,
          durationMs: elapsed(),
          responseBody: decode(Buffer.concat(kept, keptBytes)),
          responseTruncated: truncated,
          retryAfterSeconds,
          address,
        },
      };
    };

    // The checked addresses in the resolver's order; the next one only when a connection to the
    // previous could not be made (an IPv6 address without an IPv6 route, say): nothing was sent.
    const send = async (): Promise<AttemptResult> => {
      for (let i = 0; ; i++) {
        const { result, unreachable } = await sendTo(check.addresses[i]!.address);
        if (!unreachable || i + 1 >= check.addresses.length) return result;
      }
    };

    if (!agent.breakers) return await send();
    const run = await agent.breakers.run(url.host, send);
    if (run.ran) return run.value;
    return failed(
      'retry',
      'circuit-open',
      `not sent: ${url.host} failed repeatedly (retried in ${Math.ceil(run.openForMs / 1000)} s at the earliest)`,
    );
  } finally {
    clearTimeout(timeout);
    if (ownAgent) await ownAgent.close();
  }
}

/** Resolves with the promise's value, or undefined once the signal aborts first. */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function byStatus(status: number): Pick<AttemptResult, 'outcome' | 'errorClass' | 'errorDetail'> {
  const fail = (outcome: AttemptResult['outcome'], errorClass: DeliveryErrorClass) => ({
    outcome,
    errorClass,
    errorDetail: `the receiver answered ${status}`,
  });
  if (status >= 200 && status < 300)
    return { outcome: 'success', errorClass: null, errorDetail: null };
  if (status >= 300 && status < 400) return fail('retry', 'redirect');
  if (status === 410) return fail('gone', 'http-410');
  if (status === 429) return fail('retry', 'http-429');
  if (status >= 400 && status < 500) return fail('retry', 'http-4xx');
  if (status >= 500 && status < 600) return fail('retry', 'http-5xx');
  return fail('retry', 'protocol');
}

/** Retry-After in whole seconds; null when absent or unreadable (the caller caps it). */
function retryAfter(value: string | string[] | undefined): number | null {
  const ms = parseRetryAfter(value);
  if (ms === undefined || !Number.isFinite(ms)) return null;
  return Math.ceil(ms / 1000);
}

/** Errors raised before a connection existed: the request was not sent, another address may work. */
const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function classifyError(error: unknown): [DeliveryErrorClass, string] {
  const code = errorCode(error);
  if (TIMEOUT_CODES.has(code)) return ['timeout', 'the receiver did not answer in time'];
  if (code === 'ECONNREFUSED') return ['connection', 'connection refused'];
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE')
    return ['connection', 'connection closed by the receiver'];
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return ['connection', 'host unreachable'];
  if (code.startsWith('HPE_') || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO')
    return ['protocol', 'the answer was not valid HTTP'];
  if (
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.includes('CERT') ||
    code.includes('SIGNATURE') ||
    code === 'EPROTO'
  )
    return ['tls', `TLS handshake failed (${code})`];
  return ['connection', 'the connection failed'];
}

function errorCode(error: unknown): string {
  for (let e = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return '';
}

function decode(bytes: Buffer): string {
  // PostgreSQL text cannot hold NUL; replace it like any other undecodable byte.
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).replaceAll('\u0000', '\uFFFD');
}
