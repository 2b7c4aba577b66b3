import './tables.ts';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { API_PREFIX } from '../http/index.ts';
import type { Mailer } from '../mail/index.ts';
import type { Logger } from '../observability/index.ts';
import { registerAuthentication as registerAuthenticationHook } from './authenticate.ts';
import { KeyRing } from './keys.ts';
import { OidcService } from './oidc.ts';
import { OidcProviders } from './oidc-client.ts';
import { registerOidcRoutes } from './oidc-routes.ts';
import { PasswordHasher, passwordProblems } from './passwords.ts';
import { registerAuthRoutes } from './routes.ts';
import { IdentityService } from './service.ts';
import { TokenBox } from './tokens.ts';

export { IdentityCodes } from './errors.ts';
export { currentUser, MAX_AUTHORIZATION_LENGTH } from './authenticate.ts';
export type { AuthMode, CurrentUser } from './authenticate.ts';
export { KeyRing } from './keys.ts';
export type { AccessClaims } from './keys.ts';
export {
  normalizeEmail,
  normalizeIdentifier,
  normalizePassword,
  normalizeUsername,
  RESERVED_USERNAMES,
} from './normalize.ts';
export { PasswordHasher, passwordProblems } from './passwords.ts';
export type { Argon2Params, PasswordPolicy } from './passwords.ts';
export { IdentityService } from './service.ts';
export type { Authenticated, Client, OpenedSession, TokenPair } from './service.ts';
export { OidcService, usernameCandidates } from './oidc.ts';
export type { LinkedIdentity } from './oidc.ts';
export { purgeOidcStatesJob } from './oidc-jobs.ts';
export {
  identityMailTemplates,
  registerAttemptTemplate,
  verifyEmailTemplate,
} from './templates.ts';
export { hashToken, newOpaqueToken } from './tokens.ts';
export type { AuthMethod, LoginOutcome, UserTier } from './tables.ts';

export interface IdentityOptions {
  config: Config;
  database: Database | null;
  mail: Mailer | null;
  logger: Logger;
}

const JwksSchema = Type.Object({
  keys: Type.Array(Type.Record(Type.String(), Type.Unknown())),
});

/** The identity area of one app instance: the token keys and the service (null without a database). */
export interface Identity {
  readonly keys: KeyRing;
  readonly service: IdentityService | null;
  /** Provider sign-in (OpenID Connect, GitHub); null without a database. */
  readonly oidc: OidcService | null;
}

/** Loads (or, in development and test, generates) the signing key and builds the service. */
export async function createIdentity(options: IdentityOptions): Promise<Identity> {
  const { config, database, mail, logger } = options;
  const identity = config.identity;
  const keys = await KeyRing.create({
    privateKeyPem: identity.jwtPrivateKey,
    issuer: identity.jwtIssuer,
    audience: identity.jwtAudience,
    accessTokenTtlS: identity.accessTokenTtlS,
  });
  const service = database
    ? new IdentityService({
        db: database.db,
        config: identity,
        hasher: new PasswordHasher(identity.argon2),
        keys,
        box: new TokenBox(config.secrets.appSecret),
        mail,
        logger,
      })
    : null;
  const oidc =
    database && service
      ? new OidcService({
          db: database.db,
          identity: service,
          providers: new OidcProviders(identity.oidcProviders, {
            callbackBase: `${config.mail.publicUrl}${API_PREFIX}/auth/oidc`,
            timeoutMs: config.upstream.timeoutMs,
          }),
          box: new TokenBox(config.secrets.appSecret, 'identity oidc code verifier'),
          logger,
        })
      : null;
  return { keys, service, oidc };
}

/**
 * The bearer-token hook. Register it before the rate limits (they key on the user it sets) and
 * before any route. Without a database no token is read and `required` routes answer 401.
 */
export function registerAuthentication(app: FastifyInstance, identity: Identity): void {
  registerAuthenticationHook(app, identity.service);
}

/**
 * `/.well-known/jwks.json` and the `/api/v1/auth` routes. Register them after the rate limits
 * and HTTP caching (Fastify gives a route the hooks present when it is added). Without a
 * database they exist (for the OpenAPI document) and fail.
 */
export async function registerIdentityRoutes(
  app: FastifyInstance,
  identity: Identity,
  config: Config,
): Promise<void> {
  const { keys, service, oidc } = identity;
  app.get(
    '/.well-known/jwks.json',
    {
      config: { cache: { maxAge: 300 } },
      schema: {
        tags: ['identity'],
        summary: 'Public keys that verify access tokens (JWKS)',
        response: { 200: JwksSchema },
      },
    },
    async () => keys.jwks,
  );
  await app.register(
    (scope) =>
      registerAuthRoutes(scope, {
        service: () => {
          if (!service) throw new Error('the identity area needs a database');
          return service;
        },
      }),
    { prefix: API_PREFIX },
  );
  await app.register(
    (scope) =>
      registerOidcRoutes(scope, {
        service: () => {
          if (!oidc) throw new Error('the identity area needs a database');
          return oidc;
        },
      }),
    { prefix: API_PREFIX },
  );
  // The password estimator builds its dictionaries once (about half a second): not on a request.
  app.addHook('onReady', async () => {
    passwordProblems('warm-up-password', config.identity.password, []);
  });
}
