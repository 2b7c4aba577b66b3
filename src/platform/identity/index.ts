import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Cache } from '../cache/index.ts';
import type { Config } from '../config/index.ts';
import type { AnyDb, Database } from '../db/index.ts';
import { identityDb } from './db.ts';
import { findUserContact } from './repository.ts';
import { API_PREFIX, corsAllowsOrigin } from '../http/index.ts';
import type { Mailer, MailTemplate } from '../mail/index.ts';
import { defineModule } from '../modules/index.ts';
import type { Logger } from '../observability/index.ts';
import { registerAdminRoutes } from './admin/routes.ts';
import { identityEvents, type EventPublisher } from './events.ts';
import {
  checkIdentityConfig,
  IDENTITY_CONFIG_PREFIXES,
  IdentityConfigSchema,
  identitySettings,
  parseIdentityConfig,
} from './config.ts';
import { AdminService } from './admin/service.ts';
import { AccountMail } from './accounts/mail.ts';
import { purgeDeletedAccountsJob } from './accounts/jobs.ts';
import { purgeOidcStatesJob } from './oidc/jobs.ts';
import { AccountService } from './accounts/service.ts';
import { registerAccountRoutes } from './accounts/routes.ts';
import { registerAuthentication as registerAuthenticationHook } from './authenticate.ts';
import { registerPermissionChecks } from './rbac/authorize.ts';
import { KeyRing } from './keys.ts';
import { OidcService } from './oidc/service.ts';
import { OidcProviders } from './oidc/client.ts';
import { registerOidcRoutes } from './oidc/routes.ts';
import { PasswordHasher, passwordProblems } from './passwords.ts';
import { PlatformPermissions, type AccessControl } from './rbac/permissions.ts';
import { ProfileService } from './accounts/profile.ts';
import { MfaService } from './mfa/service.ts';
import { registerMfaRoutes } from './mfa/routes.ts';
import { PasskeyService } from './passkeys/service.ts';
import { registerPasskeyRoutes } from './passkeys/routes.ts';
import { smsSenderFor } from './sms/senders.ts';
import { purgeMfaChallengesJob } from './mfa/jobs.ts';
import { CookieMode } from './sessions/cookies.ts';
import { registerAuthRoutes } from './sessions/routes.ts';
import { registerSessionRoutes } from './sessions/cookie-routes.ts';
import { IdentityService } from './sessions/service.ts';
import { SessionCache } from './sessions/session-cache.ts';
import { TokenBox } from './tokens.ts';
import { accountMailTemplates } from './accounts/templates.ts';
import { SecurityMail } from './security-mail.ts';
import { securityMailTemplates } from './security-templates.ts';
import type { SecurityNotices } from './security-notices.ts';
import { RecoveryService } from './recovery/service.ts';
import { registerRecoveryRoutes } from './recovery/routes.ts';
import { completeRecoveriesJob } from './recovery/jobs.ts';
import type { JobContext } from '../jobs/index.ts';
import {
  newSignInTemplate,
  registerAttemptTemplate,
  verifyEmailTemplate,
} from './sessions/templates.ts';

export { IdentityCodes } from './errors.ts';
export {
  identityEvents,
  roleGranted,
  roleRevoked,
  sessionRevoked,
  userDeleted,
  userEmailVerified,
  userRegistered,
} from './events.ts';
export { identitySettings, IDENTITY_CONFIG_PREFIXES } from './config.ts';

/**
 * The address and user name of a live account, for another module's mail to its owner (null for
 * an unknown or deleted account). Modules ask identity; they never read its tables.
 */
export async function accountContact(
  db: AnyDb,
  userId: string,
): Promise<{ email: string; username: string } | null> {
  return (await findUserContact(identityDb(db), userId)) ?? null;
}
export type { IdentitySettings } from './config.ts';
export type { OidcProviderConfig } from './oidc/providers-config.ts';
export { AccountService, PASSWORD_HISTORY } from './accounts/service.ts';
export { maskEmail, ProfileService } from './accounts/profile.ts';
export type { ReauthenticateInput, SignedIn } from './accounts/service.ts';
export { purgeDeletedAccountsJob } from './accounts/jobs.ts';
export { accountMailTemplates, resetPasswordTemplate } from './accounts/templates.ts';
export { requireRecentAuthentication } from './accounts/step-up.ts';
export { currentUser, MAX_AUTHORIZATION_LENGTH } from './authenticate.ts';
export type { AuthMode, CurrentUser } from './authenticate.ts';
export { KeyRing } from './keys.ts';
export {
  CookieMode,
  CSRF_COOKIE,
  CSRF_HEADER,
  REFRESH_COOKIE,
  REFRESH_PATH,
  TRANSPORT_HEADER,
} from './sessions/cookies.ts';
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
export { IdentityService } from './sessions/service.ts';
export { MfaService } from './mfa/service.ts';
export { PasskeyService } from './passkeys/service.ts';
export { FactorCodes } from './mfa/errors.ts';
export {
  factorEvents,
  userMfaDisabled,
  userMfaEnabled,
  userPasskeyAdded,
  userPasskeyRemoved,
} from './mfa/events.ts';
export { purgeMfaChallengesJob } from './mfa/jobs.ts';
export { parsePhone } from './sms/phone.ts';
export { ConsoleSmsSender, SmsDeliveryError } from './sms/provider.ts';
export type { SmsMessage, SmsSender } from './sms/provider.ts';
export { TwilioSmsSender } from './sms/twilio.ts';
export type { MfaStatus, TotpSetup } from './mfa/service.ts';
export { SessionCache, sessionsTag } from './sessions/session-cache.ts';
export { describeDevice, parseDevice } from './sessions/device.ts';
export type { Device } from './sessions/device.ts';
export type {
  Authenticated,
  Client,
  MfaChallenge,
  OpenedSession,
  SecondFactor,
  TokenPair,
} from './schemas.ts';
export { OidcService, usernameCandidates } from './oidc/service.ts';
export type { LinkedIdentity } from './oidc/service.ts';
export { purgeOidcStatesJob } from './oidc/jobs.ts';
export { newSignInTemplate, registerAttemptTemplate, verifyEmailTemplate };
export { hashToken, newOpaqueToken } from './tokens.ts';
export type { AuthMethod, LoginOutcome, UserTier } from './tables.ts';
export {
  AccessControl,
  isPermission,
  PERMISSION_PATTERN,
  PlatformPermissions,
  ROLE_NAME_PATTERN,
} from './rbac/permissions.ts';
export type { AccessControlOptions, Grants, Verdict } from './rbac/permissions.ts';
export { AdminService } from './admin/service.ts';
export type { Actor } from './admin/service.ts';
export { registerPermissionChecks } from './rbac/authorize.ts';
/** Adds a permission to a built-in role that lacks it (a module's default grants, applied at start). */
export { grantBuiltinPermission } from './rbac/repository.ts';

/** The identity area's templates, passed to the `Mailer` (`main.ts`, test harnesses). */
export const identityMailTemplates: readonly MailTemplate[] = [
  verifyEmailTemplate,
  registerAttemptTemplate,
  ...accountMailTemplates,
  newSignInTemplate,
  ...securityMailTemplates,
];

export interface IdentityOptions {
  config: Config;
  database: Database | null;
  mail: Mailer | null;
  logger: Logger;
  /** Roles and permissions (null without a database). */
  access?: AccessControl | null;
  /** Domain events (`platform.events`); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
  /** The platform cache, for the session check (`AUTH_SESSION_CACHE`); none: not cached. */
  cache?: Cache | null;
}

const JwksSchema = Type.Object({
  keys: Type.Array(Type.Record(Type.String(), Type.Unknown())),
});

declare module 'fastify' {
  interface FastifyInstance {
    /** The identity area: keys, service, session-check cache (set by `registerAuthentication`). */
    identity: Identity;
  }
}

/** The identity area of one app instance: the token keys and the service (null without a database). */
export interface Identity {
  readonly keys: KeyRing;
  readonly service: IdentityService | null;
  /** Roles and permissions; null without a database (permission routes then answer 401). */
  readonly access: AccessControl | null;
  /** The admin API's rules; null without a database. */
  readonly admin: AdminService | null;
  /** Password reset and change, step-up (null without a database). */
  readonly accounts: AccountService | null;
  /** Profile, email change, deletion (null without a database). */
  readonly profiles: ProfileService | null;
  /** TOTP and backup codes; `verifySecondFactor` for step-up (null without a database). */
  readonly mfa: MfaService | null;
  /** Passkeys: registration, passwordless sign-in, second factor (null without a database). */
  readonly passkeys: PasskeyService | null;
  /** The session-check cache; invalidate it after anything that changes a session's answer. */
  readonly sessionCache: SessionCache;
  /** Provider sign-in (OpenID Connect, GitHub); null without a database. */
  readonly oidc: OidcService | null;
  /** Lost-device recovery, the admin MFA reset, address-change reports (null without a database). */
  readonly recovery: RecoveryService | null;
  /** Mail to an account's owner about its security changes (`SecurityMail`). */
  readonly notices: SecurityNotices;
}

/**
 * The cache the session check may use: Redis is shared, so always; an in-process cache only
 * where one process is the rule (development, test) or when `AUTH_SESSION_CACHE=on` says so,
 * since another process would never hear of a revocation made here.
 */
function sessionCacheBackend(config: Config, cache: Cache | null | undefined): Cache | null {
  const mode = identitySettings(config).sessionCache;
  if (!cache || mode === 'off') return null;
  if (mode === 'on' || cache.backend === 'redis' || !config.isDeployed) return cache;
  return null;
}

/** Loads (or, in development and test, generates) the signing key and builds the service. */
export async function createIdentity(options: IdentityOptions): Promise<Identity> {
  const { config, database, mail, logger, cache, events } = options;
  const identity = identitySettings(config);
  const keys = await KeyRing.create({
    privateKeyPem: identity.jwtPrivateKey,
    previousKeyPems: identity.jwtPreviousKeys,
    issuer: identity.jwtIssuer,
    audience: identity.jwtAudience,
    accessTokenTtlS: identity.accessTokenTtlS,
  });
  const hasher = new PasswordHasher(identity.argon2);
  // Security notices are mailed after the answer; SecurityMail drains its own pending sends.
  const notices = new SecurityMail({
    db: database?.db ?? null,
    mail: new AccountMail(mail, logger),
  });
  const sessionCache = new SessionCache({
    cache: database ? sessionCacheBackend(config, cache) : null,
    ttlS: identity.sessionCacheTtlS,
    logger,
  });
  const mfa = database
    ? new MfaService({
        db: database.db,
        config: identity,
        hasher,
        appSecret: config.secrets.appSecret,
        logger,
        events,
        sessions: sessionCache,
        sms: smsSenderFor(identity.factors.sms, { logger, timeoutMs: config.upstream.timeoutMs }),
        notices,
      })
    : null;
  const passkeys = database
    ? new PasskeyService({
        db: database.db,
        config: identity,
        logger,
        events,
        sessions: sessionCache,
        mfa,
        notices,
      })
    : null;
  if (mfa && passkeys) mfa.usePasskeys(passkeys);
  const service = database
    ? new IdentityService({
        db: database.db,
        config: identity,
        hasher,
        keys,
        box: new TokenBox(config.secrets.appSecret),
        mail,
        logger,
        mfa,
        sessionCache,
        events,
      })
    : null;
  const access = options.access ?? null;
  const admin =
    database && access
      ? new AdminService({
          db: database.db,
          access,
          paging: {
            secret: config.secrets.appSecret,
            estimateAbove: config.database.estimateAbove,
          },
          sessions: sessionCache,
          events,
        })
      : null;
  const accountMail = new AccountMail(mail, logger);
  const accounts = database
    ? new AccountService({
        db: database.db,
        config: identity,
        hasher,
        mail: accountMail,
        logger,
        mfa,
        sessions: sessionCache,
        events,
        notices,
      })
    : null;
  const profiles = database
    ? new ProfileService({
        db: database.db,
        config: identity,
        mail: accountMail,
        sessions: sessionCache,
        events,
        notices,
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
          events,
          notices,
        })
      : null;
  const recovery =
    database && mfa
      ? new RecoveryService({
          db: database.db,
          config: identity,
          mail: accountMail,
          mfa,
          logger,
          publicUrl: config.mail.publicUrl,
          notices,
          sessions: sessionCache,
          events,
        })
      : null;
  return {
    keys,
    service,
    access,
    admin,
    accounts,
    profiles,
    mfa,
    passkeys,
    sessionCache,
    oidc,
    recovery,
    notices,
  };
}

/**
 * The bearer-token hook and the permission checks of routes declaring `config.permission`.
 * Register it before the rate limits (they key on the user it sets) and before any route.
 * Without a database no token is read and `required` and permission routes answer 401.
 */
export function registerAuthentication(app: FastifyInstance, identity: Identity): void {
  registerAuthenticationHook(app, identity.service);
  registerPermissionChecks(app, identity.access);
  // Other areas reach the session-cache invalidation (account lock, reset, deletion) through it.
  app.decorate('identity', identity);
  app.addHook('onClose', () => {
    identity.sessionCache.close();
    return Promise.resolve();
  });
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
  const { keys, service, mfa, oidc } = identity;
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
  const cookies = new CookieMode({
    appSecret: config.secrets.appSecret,
    publicUrl: config.mail.publicUrl,
    corsAllows: (origin) => corsAllowsOrigin(config, origin),
  });
  const routes = {
    service: () => {
      if (!service) throw new Error('the identity area needs a database');
      return service;
    },
    cookies,
  };
  await app.register(
    async (scope) => {
      // Before the routes: `config.refreshCookie` is applied when a route is added.
      await cookies.register(scope);
      await registerAuthRoutes(scope, routes);
      await registerSessionRoutes(scope, routes);
    },
    { prefix: API_PREFIX },
  );
  const { admin } = identity;
  await app.register(
    (scope) =>
      registerAdminRoutes(scope, {
        service: () => {
          if (!admin) throw new Error('the admin API needs a database');
          return admin;
        },
      }),
    { prefix: API_PREFIX },
  );
  await app.register(
    (scope) =>
      registerMfaRoutes(scope, {
        service: () => {
          if (!service) throw new Error('the identity area needs a database');
          return service;
        },
        mfa: () => {
          if (!mfa) throw new Error('the identity area needs a database');
          return mfa;
        },
      }),
    { prefix: API_PREFIX },
  );
  const { passkeys } = identity;
  await app.register(
    (scope) =>
      registerPasskeyRoutes(scope, {
        service: () => {
          if (!service) throw new Error('the identity area needs a database');
          return service;
        },
        passkeys: () => {
          if (!passkeys) throw new Error('the identity area needs a database');
          return passkeys;
        },
        stepUpMaxAgeS: identitySettings(config).stepUpMaxAgeS,
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
        stepUpMaxAgeS: identitySettings(config).stepUpMaxAgeS,
      }),
    { prefix: API_PREFIX },
  );
  const { recovery } = identity;
  await app.register(
    (scope) =>
      registerRecoveryRoutes(scope, {
        service: () => {
          if (!recovery) throw new Error('the identity area needs a database');
          return recovery;
        },
        stepUpMaxAgeS: identitySettings(config).stepUpMaxAgeS,
        delayS: identitySettings(config).recovery.delayS,
      }),
    { prefix: API_PREFIX },
  );
  const { accounts, profiles } = identity;
  await app.register(
    (scope) =>
      registerAccountRoutes(scope, {
        accounts: () => {
          if (!accounts) throw new Error('the identity area needs a database');
          return accounts;
        },
        profiles: () => {
          if (!profiles) throw new Error('the identity area needs a database');
          return profiles;
        },
        stepUpMaxAgeS: identitySettings(config).stepUpMaxAgeS,
      }),
    { prefix: API_PREFIX },
  );
  // Reset and email-change mail runs after the answer (see AccountMail): let it finish.
  app.addHook('onClose', async () => {
    await Promise.all([
      accounts?.drain(),
      profiles?.drain(),
      service?.drain(),
      recovery?.drain(),
      identity.notices instanceof SecurityMail ? identity.notices.drain() : undefined,
    ]);
  });
  // The strength worker builds its dictionaries once (about half a second): not on a request.
  // A warm-up that fails (a start on a saturated machine) is not fatal: the first password
  // check then builds them, within its own budget.
  app.addHook('onReady', async () => {
    await passwordProblems('warm-up-password', identitySettings(config).password, []).catch(
      (error: unknown) => {
        app.log.warn(
          { err: { message: error instanceof Error ? error.message : String(error) } },
          'password strength warm-up failed; the first check will build the dictionaries',
        );
      },
    );
  });
}

/** The identity of each platform (made by `register`, or on a job's first use in a worker). */
const identities = new WeakMap<object, Identity>();

/** The recovery service of the job's platform, for `platform.mfa-recovery-complete`. */
async function recoveryOf(ctx: JobContext): Promise<RecoveryService | null> {
  const platform = ctx.platform;
  let identity = identities.get(platform);
  if (!identity) {
    identity = await createIdentity({
      config: platform.config,
      database: platform.database,
      mail: platform.mail,
      logger: platform.logger,
      access: platform.access,
      cache: platform.cache,
      events: platform.events,
    });
    identities.set(platform, identity);
  }
  return identity.recovery;
}

declare module '../modules/index.ts' {
  interface PlatformExtensions {
    /** Roles and permissions (`hasPermission`, `actableOwners`), made by `createPlatform`. */
    readonly access: AccessControl;
  }
}

/**
 * Identity on the module shape: authentication (registered before the rate limits, which key
 * on the user it sets), its routes, jobs, mail templates and permissions.
 */
export const identityModule = defineModule({
  name: 'identity',
  description: 'Accounts, sign-in, sessions and access tokens.',
  config: IdentityConfigSchema,
  configPrefixes: IDENTITY_CONFIG_PREFIXES,
  checkConfig: checkIdentityConfig,
  parseConfig: parseIdentityConfig,
  tags: [
    { name: 'identity', description: 'Accounts, sign-in, sessions and access tokens.' },
    {
      name: 'admin',
      description:
        'Operator API, by permission: accounts, roles, the audit trail, job queues and dead letters.',
    },
  ],
  permissions: [
    {
      name: PlatformPermissions.USERS_READ,
      description: 'List and read accounts.',
      roles: ['admin', 'moderator'],
    },
    {
      name: PlatformPermissions.USERS_ADMIN,
      description: 'Lock, unlock and assign roles to accounts.',
      roles: ['admin'],
    },
    {
      name: PlatformPermissions.ROLES_READ,
      description: 'List roles and the permission catalogue.',
      roles: ['admin', 'moderator'],
    },
    {
      name: PlatformPermissions.ROLES_ADMIN,
      description: 'Create, edit and delete roles.',
      roles: ['admin'],
    },
    {
      name: PlatformPermissions.AUDIT_READ,
      description: 'Read the audit trail.',
      roles: ['admin'],
    },
  ],
  jobs: ({ config }) => [
    purgeDeletedAccountsJob(config.accountRetentionS),
    purgeOidcStatesJob,
    purgeMfaChallengesJob,
    completeRecoveriesJob(recoveryOf),
  ],
  mailTemplates: identityMailTemplates,
  events: identityEvents,
  // Its routes mount themselves: `/.well-known/jwks.json` at the root, the rest under `/api/v1`.
  prefix: '',
  async register(app, { platform }) {
    // A platform that opened nothing (the OpenAPI script, HTTP-only tests) reads no token, and
    // the routes exist for the document; mail goes out only through a running queue.
    const identity = await createIdentity({
      config: platform.config,
      database: platform.live ? platform.database : null,
      mail: platform.jobs.started ? platform.mail : null,
      logger: platform.logger,
      access: platform.access,
      cache: platform.cache,
      events: platform.events,
    });
    if (platform.live) identities.set(platform, identity);
    registerAuthentication(app, identity);
  },
  routes: (app, { platform }) => registerIdentityRoutes(app, app.identity, platform.config),
});
