import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_PREFIX, HttpCodes, HttpError } from '../http/index.ts';
import { identitySettings } from './config.ts';
import { IdentityCodes } from './errors.ts';
import { claimedIssuer, ExternalTokens } from './external/tokens.ts';
import type { AuthenticationResult } from './schemas.ts';
import type { IdentityService } from './sessions/service.ts';
import type { AuthMethod } from './tables.ts';

/**
 * `required`: a valid access token or 401. `optional`: a token, when sent, must be valid (401
 * otherwise, so a client knows to refresh); none is anonymous. `none`: the header is not read
 * (routes with their own bearer scheme, such as the admin API).
 */
export type AuthMode = 'required' | 'optional' | 'none';

declare module 'fastify' {
  interface FastifyRequest {
    /** The session of the access token, set by the identity area. */
    sessionId?: string;
    /** When and how that session last authenticated (step-up checks, MFA-only permissions). */
    authenticatedAt?: Date;
    amr?: AuthMethod[];
  }
  interface FastifyContextConfig {
    /** Authentication of the route; default `optional` under `/api/`, `none` elsewhere. */
    auth?: AuthMode;
  }
  interface FastifyInstance {
    /**
     * Checks an access token as the `Authorization` hook does (Groundwork's own, or the external
     * issuer's): for other transports (the WebSocket endpoint).
     */
    authenticateBearer(token: string): Promise<AuthenticationResult>;
  }
}

/** Longest `Authorization` header read; longer ones are refused without parsing. */
export const MAX_AUTHORIZATION_LENGTH = 4_096;
// Exactly `Bearer <jws>`: one space, three base64url segments (no padding, no other scheme).
/** The scheme, case-insensitive, and one space; the token's syntax is checked by the key ring. */
const BEARER_PREFIX = /^bearer $/i;

const REALM = 'Bearer realm="groundwork"';

function missing(): HttpError {
  return new HttpError(HttpCodes.UNAUTHORIZED, {
    detail: 'Sign in and send the access token as `Authorization: Bearer <token>`.',
    headers: { 'www-authenticate': REALM },
  });
}

function invalid(description: string): HttpError {
  return new HttpError(IdentityCodes.INVALID_ACCESS_TOKEN, {
    headers: {
      'www-authenticate': `${REALM}, error="invalid_token", error_description="${description}"`,
    },
  });
}

/** The route's mode: its own `config.auth`, else `optional` under `/api/` and `none` elsewhere. */
function modeOf(url: string, own: AuthMode | undefined): AuthMode {
  if (own !== undefined) return own;
  return url.startsWith(`${API_PREFIX}/`) ? 'optional' : 'none';
}

/**
 * Reads `Authorization: Bearer <jwt>` on every route that takes one and sets `request.userId`,
 * `request.userTier` and `request.sessionId`. The hook is attached per route when the route is
 * added (routes registered after this call), decided from its url and `config.auth`, so `none`
 * routes (health, metrics, the auth routes) carry no hook at all. It goes first among the
 * route's `onRequest` hooks, so the rate limits attached after it key on the user. Without
 * `service` (no database) no token is read and `required` routes refuse.
 */
export function registerAuthentication(
  app: FastifyInstance,
  service: IdentityService | null,
): void {
  type Done = (error?: Error) => void;
  const external = service ? externalTokens(app) : null;
  /** Groundwork's own token, or the external issuer's (chosen by its claimed `iss`). */
  const verify = (token: string) =>
    external !== null && claimedIssuer(token) === external.issuer
      ? external.authenticate(token)
      : (service as IdentityService).authenticate(token);
  app.decorate('authenticateBearer', async (token: string): Promise<AuthenticationResult> => {
    if (service === null) return null;
    return verify(token);
  });
  const apply = (request: FastifyRequest, auth: AuthenticationResult): HttpError | undefined => {
    if (auth === 'malformed') return invalid('malformed');
    if (auth === null) return invalid('invalid, expired or revoked');
    request.userId = auth.userId;
    request.userTier = auth.tier;
    request.sessionId = auth.sessionId;
    request.authenticatedAt = auth.authenticatedAt;
    request.amr = auth.amr;
    return undefined;
  };
  // A callback hook: a token verified before, with its session check cached in process, is
  // answered without a promise or an extra turn.
  const check = (mode: 'required' | 'optional') =>
    function authenticate(request: FastifyRequest, _reply: FastifyReply, done: Done): void {
      const header = request.headers.authorization;
      if (service === null || header === undefined) {
        done(mode === 'required' ? missing() : undefined);
        return;
      }
      if (header.length > MAX_AUTHORIZATION_LENGTH || !BEARER_PREFIX.test(header.slice(0, 7))) {
        done(invalid('malformed'));
        return;
      }
      let outcome;
      try {
        outcome = verify(header.slice(7));
      } catch (error) {
        done(error as Error);
        return;
      }
      if (outcome instanceof Promise) outcome.then((auth) => done(apply(request, auth)), done);
      else done(apply(request, outcome));
    };
  const required = check('required');
  const optional = check('optional');
  app.addHook('onRoute', (route) => {
    const mode = modeOf(route.url, route.config?.auth);
    if (mode === 'none') return;
    route.onRequest = [
      mode === 'required' ? required : optional,
      ...[route.onRequest ?? []].flat(),
    ];
  });
}

/** The signed-in user of a `required` route. */
export interface CurrentUser {
  userId: string;
  sessionId: string;
  authenticatedAt: Date;
  amr: AuthMethod[];
}

/** The signed-in user of a `required` route (the hook has already refused anyone else). */
export function currentUser(request: FastifyRequest): CurrentUser {
  const { userId, sessionId, authenticatedAt, amr } = request;
  if (!userId || !sessionId || !authenticatedAt || !amr) throw missing();
  return { userId, sessionId, authenticatedAt, amr };
}

/** The external issuer's token verifier (`AUTH_EXTERNAL_ISSUER`), or null when none is set. */
function externalTokens(app: FastifyInstance): ExternalTokens | null {
  const platform = (app as Partial<Pick<FastifyInstance, 'platform'>>).platform;
  if (!platform) return null;
  const settings = identitySettings(platform.config);
  if (!settings.external) return null;
  return new ExternalTokens({
    settings: settings.external,
    db: platform.database.db,
    cache: platform.cache,
    permissionTtlS: settings.permissionCacheTtlS,
    logger: platform.logger,
    timeoutMs: platform.config.upstream.timeoutMs,
  });
}
