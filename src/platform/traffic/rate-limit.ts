import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { API_PREFIX, HttpCodes, HttpError, defineErrorCodes } from '../http/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Decision, RateStore } from './gcra.ts';

export const TrafficCodes = defineErrorCodes('traffic', {
  RATE_LIMIT_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Rate limiting unavailable',
    description:
      'The rate-limit store did not answer and this route fails closed (sign-in and other sensitive routes); retry after `Retry-After` seconds.',
  },
});

export type Tier = 'free' | 'premium' | 'enterprise';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user's plan, set by the identity area; picks the per-tier API limit. */
    userTier?: Tier;
    /** The API client (machine credential) making the call, set by the identity area. */
    apiClientId?: string;
    /**
     * The requests per minute of that client (an app's API key): with `apiClientId`, an
     * anonymous request counts against this limit per client instead of the per-IP one.
     */
    apiClientLimitPerMin?: number;
    /** @internal the rate-limit decisions made for this request so far (for the headers). */
    rateLimitsApplied?: { policy: RateLimitPolicy; decision: Decision }[];
  }
  interface FastifyContextConfig {
    /** Extra limits for this route (checked with the API default), or `false` for none at all. */
    rateLimit?: readonly RateLimitPolicy[] | false;
  }
}

/** One limit: `limit` requests per `windowSeconds` per key. */
export interface RateLimitPolicy {
  /** Shown in the `RateLimit-Policy` header: lowercase letters, digits and dashes. */
  readonly name: string;
  readonly limit: number;
  readonly windowSeconds: number;
  /** What the key is: client IP, signed-in user, API client, or an account named in the request. */
  readonly by: 'ip' | 'user' | 'client' | 'account';
  /** For `by: 'account'`: the account a request is about (e.g. the login name in the body). */
  readonly account?: (request: FastifyRequest) => string | undefined;
  /** When the store fails: `open` lets the request through, `closed` refuses it with 503. Default open. */
  readonly failMode?: 'open' | 'closed';
}

/** Defaults for the identity area's routes (auth routes fail closed). */
export const AuthLimits = {
  login: (account: (r: FastifyRequest) => string | undefined): RateLimitPolicy[] => [
    { name: 'login-ip', limit: 5, windowSeconds: 60, by: 'ip', failMode: 'closed' },
    {
      name: 'login-account',
      limit: 10,
      windowSeconds: 3_600,
      by: 'account',
      account,
      failMode: 'closed',
    },
  ],
  register: (): RateLimitPolicy[] => [
    { name: 'register-ip', limit: 3, windowSeconds: 3_600, by: 'ip', failMode: 'closed' },
  ],
  /** Password-reset and verification mail. */
  accountMail: (account: (r: FastifyRequest) => string | undefined): RateLimitPolicy[] => [
    { name: 'account-mail-ip', limit: 3, windowSeconds: 3_600, by: 'ip', failMode: 'closed' },
    {
      name: 'account-mail-account',
      limit: 3,
      windowSeconds: 3_600,
      by: 'account',
      account,
      failMode: 'closed',
    },
  ],
} as const;

const NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

function keyOf(policy: RateLimitPolicy, request: FastifyRequest): string | undefined {
  switch (policy.by) {
    case 'ip':
      return request.ip;
    case 'user':
      return request.userId;
    case 'client':
      return request.apiClientId;
    case 'account': {
      const account = policy.account?.(request);
      if (account === undefined || account === '') return undefined;
      // Accounts (emails, user names) are hashed: the store never holds them in clear.
      return createHash('sha256')
        .update(account.normalize('NFKC').toLowerCase())
        .digest('base64url')
        .slice(0, 22);
    }
  }
}

type HookDone = (error?: Error) => void;

interface Applied {
  policy: RateLimitPolicy;
  decision: Decision;
}

// The `RateLimit-Policy` item of a policy never changes: made once per policy object.
const policyItems = new WeakMap<RateLimitPolicy, string>();
function policyItem(policy: RateLimitPolicy): string {
  let item = policyItems.get(policy);
  if (item === undefined) {
    item = `"${policy.name}";q=${String(policy.limit)};w=${String(policy.windowSeconds)}`;
    policyItems.set(policy, item);
  }
  return item;
}

function limitItem(a: Applied): string {
  return `"${a.policy.name}";r=${String(a.decision.remaining)};t=${String(a.decision.resetSeconds)}`;
}

function header(applied: readonly Applied[]): { policy: string; limit: string } {
  if (applied.length === 1) {
    const only = applied[0] as Applied;
    return { policy: policyItem(only.policy), limit: limitItem(only) };
  }
  return {
    policy: applied.map((a) => policyItem(a.policy)).join(', '),
    limit: applied.map(limitItem).join(', '),
  };
}

export interface RateLimiterOptions {
  config: Config;
  store: RateStore;
  logger: Logger;
  metrics?: Registry;
}

/**
 * Rate limits: every `/api/*` request counts against the API default (per user by tier when
 * signed in, per IP otherwise) plus the route's own policies (`config.rateLimit`); unknown routes
 * count against the not-found limit per IP. Allowed requests on limited routes carry
 * `RateLimit-Policy` and `RateLimit` (IETF draft); refused ones get 429 `RATE_LIMITED` with
 * `Retry-After` too.
 */
export function registerRateLimits(app: FastifyInstance, options: RateLimiterOptions): void {
  const { config, store, logger } = options;
  const settings = config.rateLimit;
  const errors = options.metrics
    ? new Counter({
        name: 'ratelimit_store_errors_total',
        help: 'Rate-limit decisions the store could not make, by policy and the fail mode applied',
        labelNames: ['policy', 'mode'],
        registers: [options.metrics],
      })
    : undefined;
  const limited = options.metrics
    ? new Counter({
        name: 'ratelimit_limited_total',
        help: 'Requests refused by a rate limit, by policy',
        labelNames: ['policy'],
        registers: [options.metrics],
      })
    : undefined;

  const anonymous: RateLimitPolicy = {
    name: 'api-anonymous',
    limit: settings.anonymousPerMin,
    windowSeconds: 60,
    by: 'ip',
  };
  const perTier: Record<Tier, RateLimitPolicy> = {
    free: { name: 'api-free', limit: settings.tiers.free, windowSeconds: 60, by: 'user' },
    premium: { name: 'api-premium', limit: settings.tiers.premium, windowSeconds: 60, by: 'user' },
    enterprise: {
      name: 'api-enterprise',
      limit: settings.tiers.enterprise,
      windowSeconds: 60,
      by: 'user',
    },
  };
  const notFound: RateLimitPolicy = {
    name: 'not-found',
    limit: settings.notFoundPerMin,
    windowSeconds: 60,
    by: 'ip',
  };

  // One policy per client limit in use (keys share it; their buckets are per client).
  const perClient = new Map<number, RateLimitPolicy>();
  const clientPolicy = (limit: number): RateLimitPolicy => {
    let policy = perClient.get(limit);
    if (policy === undefined) {
      policy = { name: 'api-client', limit, windowSeconds: 60, by: 'client' };
      if (perClient.size < 1_000) perClient.set(limit, policy);
    }
    return policy;
  };

  let lastErrorLog = 0;
  /** A store failure under `policy`: the refusal when it fails closed, undefined when open. */
  function storeFailed(policy: RateLimitPolicy, error: unknown): HttpError | undefined {
    const mode = policy.failMode ?? 'open';
    errors?.inc({ policy: policy.name, mode });
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now();
      logger.warn(
        { err: { message: (error as Error).message }, policy: policy.name, mode },
        'rate-limit store failed',
      );
    }
    if (mode === 'closed')
      return new HttpError(TrafficCodes.RATE_LIMIT_UNAVAILABLE, {
        headers: { 'retry-after': '5' },
      });
    return undefined;
  }

  /** Sets the headers of the decisions made; the 429 when one of them refused the request. */
  function conclude(
    request: FastifyRequest,
    reply: FastifyReply,
    applied: Applied[],
  ): HttpError | undefined {
    if (applied.length === 0) return undefined;
    let refused: Applied | undefined;
    for (const entry of applied) {
      if (
        !entry.decision.allowed &&
        (!refused || entry.decision.retryAfterSeconds > refused.decision.retryAfterSeconds)
      )
        refused = entry;
    }
    // A route's own policies are checked after the API default: the headers list both.
    const earlier = request.rateLimitsApplied;
    const all = earlier === undefined ? applied : [...earlier, ...applied];
    request.rateLimitsApplied = all;
    const h = header(all);
    reply.header('ratelimit-policy', h.policy);
    reply.header('ratelimit', h.limit);
    if (!refused) return undefined;
    limited?.inc({ policy: refused.policy.name });
    return new HttpError(HttpCodes.RATE_LIMITED, {
      detail: `Too many requests (${refused.policy.name}); retry in ${String(refused.decision.retryAfterSeconds)} s.`,
      headers: {
        'retry-after': String(refused.decision.retryAfterSeconds),
        'ratelimit-policy': h.policy,
        ratelimit: h.limit,
      },
    });
  }

  type Outcome = HttpError | undefined;

  /**
   * Decides `policies` for the request, from policy `from` on: the refusal, or undefined when
   * allowed. Synchronous while the store answers synchronously (the in-process one), so a request
   * under it makes no promise; a promise from the first asynchronous answer (Redis) on.
   */
  function decide(
    request: FastifyRequest,
    reply: FastifyReply,
    policies: readonly RateLimitPolicy[],
    from = 0,
    applied: Applied[] = [],
  ): Outcome | Promise<Outcome> {
    for (let i = from; i < policies.length; i++) {
      const policy = policies[i] as RateLimitPolicy;
      const key = keyOf(policy, request);
      if (key === undefined) continue;
      let taken: Decision | Promise<Decision>;
      try {
        taken = store.take(
          `${policy.name}:${policy.by}:${key}`,
          policy.limit,
          policy.windowSeconds * 1000,
        );
      } catch (error) {
        const refusal = storeFailed(policy, error);
        if (refusal) return refusal;
        continue;
      }
      if (taken instanceof Promise) {
        return taken.then(
          (decision) => {
            applied.push({ policy, decision });
            return decide(request, reply, policies, i + 1, applied);
          },
          (error: unknown) =>
            storeFailed(policy, error) ?? decide(request, reply, policies, i + 1, applied),
        );
      }
      applied.push({ policy, decision: taken });
    }
    return conclude(request, reply, applied);
  }

  /** A callback-style hook deciding `policies`: no promise when the store answers synchronously. */
  function check(
    request: FastifyRequest,
    reply: FastifyReply,
    policies: readonly RateLimitPolicy[],
    done: (error?: Error) => void,
  ): void {
    const outcome = decide(request, reply, policies);
    if (outcome instanceof Promise) outcome.then(done, done);
    else done(outcome);
  }

  const validate = (url: string, policies: readonly RateLimitPolicy[]) => {
    for (const p of policies) {
      if (!NAME.test(p.name) || !(p.limit >= 1) || !(p.windowSeconds >= 1))
        throw new Error(`route ${url}: invalid rate-limit policy ${JSON.stringify(p.name)}`);
      if (p.by === 'account' && !p.account)
        throw new Error(`route ${url}: policy ${p.name} is by account but names none`);
    }
  };

  // Hooks go on the routes that are limited only (decided once, at registration), so operational
  // routes pay nothing per request. Routes registered before this (health, metrics) are never limited.
  app.addHook('onRoute', (route) => {
    const own = route.config?.rateLimit;
    if (own) validate(route.url, own);
    if (!settings.enabled || own === false) return;
    const api = route.url.startsWith(`${API_PREFIX}/`);
    if (!api && !own) return;
    // The API default runs first thing (route-level onRequest, after authentication set the
    // user), so requests refused later (bad body, bad token, validation) still count. A route's
    // own policies may read the body, so they run once it is parsed and validated.
    if (api) {
      const apiLimit = (request: FastifyRequest, reply: FastifyReply, done: HookDone) => {
        const policy =
          request.userId !== undefined
            ? perTier[request.userTier ?? 'free']
            : request.apiClientId !== undefined && request.apiClientLimitPerMin !== undefined
              ? clientPolicy(request.apiClientLimitPerMin)
              : anonymous;
        check(request, reply, [policy], done);
      };
      route.onRequest = [...[route.onRequest ?? []].flat(), apiLimit];
    }
    if (own && own.length > 0) {
      const ownLimit = (request: FastifyRequest, reply: FastifyReply, done: HookDone) => {
        check(request, reply, own, done);
      };
      route.preHandler = [...[route.preHandler ?? []].flat(), ownLimit];
    }
  });

  if (!settings.enabled) return;
  // Unknown routes: counted per IP before anything else runs (scanners walk paths). A callback
  // hook, so matched routes pay a property read and no promise.
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.is404) {
      done();
      return;
    }
    check(request, reply, [notFound], done);
  });
}
