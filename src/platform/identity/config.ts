import { createPrivateKey, createPublicKey } from 'node:crypto';
import { Type, type Static } from 'typebox';
import {
  configDuration as duration,
  configVar as v,
  DEPLOYED_ENVS as deployed,
  parseDuration,
  type AppEnv,
  type Config,
  type ConfigIssue,
} from '../config/index.ts';
import {
  maskOidcProviders,
  parseOidcProviders,
  type OidcProviderConfig,
} from './oidc/providers-config.ts';
import {
  checkFactorConfig,
  FactorConfigVars,
  parseFactorConfig,
  type FactorSettings,
} from './mfa/factor-config.ts';
import {
  parseRecoveryConfig,
  RecoveryConfigVars,
  type RecoverySettings,
} from './recovery/config.ts';

/**
 * Identity's settings: its slice of the configuration, validated with the platform's at start and
 * listed under its own heading in docs/configuration.md. They keep the names deployments already
 * use (`AUTH_*`, `PASSWORD_*`, `ARGON2_*`) rather than the module's name, which the module declares
 * (`configPrefixes`); no other module may use these prefixes.
 */
export const IDENTITY_CONFIG_PREFIXES = ['AUTH_', 'PASSWORD_', 'ARGON2_'] as const;

export const IdentityConfigSchema = Type.Object({
  AUTH_JWT_PRIVATE_KEY: v(
    Type.String({
      description:
        'PKCS#8 PEM private key that signs access tokens: Ed25519 (EdDSA) or P-256 (ES256); `\\n` escapes stand for line breaks. Unset in development and test: a key is generated per process (tokens die with it). Required in staging and production.',
      default: '',
    }),
    { group: 'Module: identity', secret: true, requiredIn: deployed },
  ),
  AUTH_JWT_PREVIOUS_KEYS: v(
    Type.String({
      description:
        'Keys that signed access tokens before the current one (rotation): PEM blocks, public or private (only their public half is used), one after the other; `\\n` escapes stand for line breaks. They stay in the JWKS and still verify tokens; remove one once `AUTH_ACCESS_TOKEN_TTL` has passed since it stopped signing.',
      default: '',
    }),
    { group: 'Module: identity', secret: true },
  ),
  AUTH_JWT_ISSUER: v(
    Type.String({
      description: 'The `iss` of access tokens. Empty: `PUBLIC_URL`.',
      default: '',
    }),
    { group: 'Module: identity' },
  ),
  AUTH_JWT_AUDIENCE: v(
    Type.String({
      description: 'The `aud` of access tokens; tokens for another audience are refused.',
      default: 'groundwork-api',
      minLength: 1,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_ACCESS_TOKEN_TTL: v(duration('Lifetime of an access token (JWT).', '15m'), {
    group: 'Module: identity',
  }),
  AUTH_REFRESH_TOKEN_TTL: v(
    duration(
      'Lifetime of a refresh token without remember-me; also the idle timeout of such a session (each refresh starts it again).',
      '1d',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_REMEMBER_ME_TTL: v(
    duration('Lifetime of a refresh token when the login asked `rememberMe`.', '30d'),
    { group: 'Module: identity' },
  ),
  AUTH_SESSION_MAX_AGE: v(
    duration('Absolute lifetime of a session, however often it is refreshed.', '90d'),
    { group: 'Module: identity' },
  ),
  AUTH_REFRESH_REUSE_GRACE: v(
    duration(
      'A spent refresh token presented again within this time gets the current pair (two tabs refreshing at once); later it revokes the session.',
      '10s',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_SESSION_CACHE: v(
    Type.Enum(['auto', 'on', 'off'], {
      description:
        "Cache of the per-request session check. `auto`: in Redis with `REDIS_URL`; without it, in process in development and test only (several processes without Redis would not see each other's revocations). `on`: also in process in staging and production (one process only). `off`: every request reads the database.",
      default: 'auto',
    }),
    { group: 'Module: identity' },
  ),
  AUTH_SESSION_CACHE_TTL: v(
    duration(
      'How long a session check is cached. Revocations invalidate it at once; this only bounds the staleness of a lost invalidation (Redis away).',
      '30s',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_EMAIL_TOKEN_TTL: v(duration('Lifetime of an email verification token.', '24h'), {
    group: 'Module: identity',
  }),
  AUTH_RESET_TOKEN_TTL: v(duration('Lifetime of a password reset token (single use).', '1h'), {
    group: 'Module: identity',
  }),
  AUTH_STEP_UP_MAX_AGE: v(
    duration(
      'Oldest authentication of a session that may still change the address or delete the account (step-up); older sessions re-authenticate first.',
      '10m',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_ACCOUNT_RETENTION: v(
    duration(
      'How long a deleted account is kept (soft-deleted) before the daily purge removes it for good.',
      '30d',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_REQUIRE_VERIFIED_EMAIL: v(
    Type.Boolean({
      description:
        'Refuse sign-in (401 `INVALID_CREDENTIALS`, like a wrong password) until the address is verified.',
      default: true,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_LOCKOUT_THRESHOLD: v(
    Type.Integer({
      description: 'Failed sign-ins in a row that lock an account.',
      default: 5,
      minimum: 1,
      maximum: 1_000,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_LOCKOUT_DURATION: v(
    duration('First lockout; each further lockout doubles it (up to the maximum).', '15m'),
    { group: 'Module: identity' },
  ),
  AUTH_LOCKOUT_MAX_DURATION: v(duration('Longest lockout.', '24h'), { group: 'Module: identity' }),
  AUTH_PERMISSION_CACHE_TTL: v(
    duration(
      "How long a user's roles and permissions are cached. Edits invalidate them at once through Redis; without `REDIS_URL` only in the process that made the edit, so other processes may act on the old permissions for up to this long.",
      '30s',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_MFA_TOKEN_TTL: v(
    duration(
      'Lifetime of the `mfaToken` a password sign-in returns when the account has a second factor.',
      '5m',
    ),
    { group: 'Module: identity' },
  ),
  AUTH_TOTP_ISSUER: v(
    Type.String({
      description: 'The issuer an authenticator app shows beside a TOTP entry (otpauth URI).',
      default: 'Groundwork',
      minLength: 1,
      maxLength: 64,
      pattern: '^[^:]+$',
    }),
    { group: 'Module: identity' },
  ),
  PASSWORD_MIN_LENGTH: v(
    Type.Integer({
      description: 'Fewest characters (after NFKC normalisation) in a new password.',
      default: 12,
      minimum: 8,
      maximum: 128,
    }),
    { group: 'Module: identity' },
  ),
  PASSWORD_MAX_LENGTH: v(
    Type.Integer({
      description: 'Most characters in a new password.',
      default: 128,
      minimum: 16,
      maximum: 1_024,
    }),
    { group: 'Module: identity' },
  ),
  PASSWORD_MIN_SCORE: v(
    Type.Integer({
      description:
        'Lowest zxcvbn score (0-4) of a new password, computed with the user name and email as context.',
      default: 3,
      minimum: 0,
      maximum: 4,
    }),
    { group: 'Module: identity' },
  ),
  ARGON2_MEMORY_KIB: v(
    Type.Integer({
      description:
        'argon2id memory cost in KiB. Staging and production refuse settings below the OWASP table (19456 KiB with 2 iterations, or an equivalent row).',
      default: 19_456,
      minimum: 8,
      maximum: 4_194_304,
    }),
    { group: 'Module: identity' },
  ),
  ARGON2_TIME_COST: v(
    Type.Integer({
      description: 'argon2id iterations.',
      default: 2,
      minimum: 1,
      maximum: 100,
    }),
    { group: 'Module: identity' },
  ),
  ARGON2_PARALLELISM: v(
    Type.Integer({
      description: 'argon2id lanes.',
      default: 1,
      minimum: 1,
      maximum: 16,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_EXTERNAL_ISSUER: v(
    Type.String({
      description:
        'Also accept access tokens issued by this OpenID provider (its `iss`, e.g. a Keycloak realm URL), on HTTP and WebSocket alike, verified against its JWKS. Empty: only Groundwork’s own tokens.',
      default: '',
      maxLength: 2_048,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_EXTERNAL_JWKS_URL: v(
    Type.String({
      description:
        'The provider’s JWKS. Empty: `<AUTH_EXTERNAL_ISSUER>/.well-known/openid-configuration`’s `jwks_uri`.',
      default: '',
      maxLength: 2_048,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_EXTERNAL_AUDIENCE: v(
    Type.String({
      description:
        'The `aud` the provider’s access tokens must carry (required with `AUTH_EXTERNAL_ISSUER`).',
      default: '',
      maxLength: 256,
    }),
    { group: 'Module: identity' },
  ),
  AUTH_EXTERNAL_ROLES_CLAIM: v(
    Type.String({
      description:
        'Where the token lists the caller’s roles: a dotted path to an array of strings (Keycloak: `realm_access.roles`).',
      default: 'realm_access.roles',
      pattern: '^[A-Za-z0-9_:-]+(\\.[A-Za-z0-9_:-]+){0,4}$',
    }),
    { group: 'Module: identity' },
  ),
  AUTH_EXTERNAL_ROLE_MAP: v(
    Type.String({
      description:
        'Provider roles to Groundwork roles, `provider=groundwork` comma separated (`kc-admins=admin,kc-staff=moderator`). Empty: a provider role counts when a Groundwork role has its name. Unmapped roles are ignored.',
      default: '',
      maxLength: 4_096,
      pattern: '^([^=,]+=[a-z][a-z0-9_-]{1,31})?(,[^=,]+=[a-z][a-z0-9_-]{1,31})*$',
    }),
    { group: 'Module: identity' },
  ),
  AUTH_OIDC_PROVIDERS: v(
    Type.String({
      description:
        'Sign-in providers, a JSON array. OpenID Connect (Keycloak, Google, Apple...): `{"id":"google","kind":"oidc","issuer":"https://accounts.google.com","clientId":"...","clientSecret":"...","scopes":["openid","email","profile"]}`, with `"responseMode":"form_post"` for Apple. GitHub: `{"id":"github","kind":"github","clientId":"...","clientSecret":"..."}` (optional `authorizeUrl`, `tokenUrl`, `apiUrl`, GitHub\'s by default). The redirect URI to register is `PUBLIC_URL/api/v1/auth/oidc/<id>/callback`. Client secrets are masked in `config:check`; URLs must be https in staging and production. Empty: no provider.',
      default: '',
    }),
    { group: 'Module: identity', secret: true, mask: maskOidcProviders },
  ),
  ...FactorConfigVars,
  ...RecoveryConfigVars,
});

export type IdentityVars = Static<typeof IdentityConfigSchema>;

/** Identity's settings, parsed once (durations in seconds, PEM keys unescaped). */
export interface IdentitySettings {
  /** PKCS#8 PEM; null: generate a key per process (development and test only). */
  readonly jwtPrivateKey: string | null;
  readonly jwtIssuer: string;
  /** PEM keys (public or private) of earlier signing keys, still verifying tokens. */
  readonly jwtPreviousKeys: readonly string[];
  /** Session-check cache: `auto`, `on`, `off`; and its TTL in seconds. */
  readonly sessionCache: 'auto' | 'on' | 'off';
  readonly sessionCacheTtlS: number;
  readonly jwtAudience: string;
  /** Durations in seconds (configured with units, parsed once). */
  readonly accessTokenTtlS: number;
  readonly refreshTokenTtlS: number;
  readonly rememberMeTtlS: number;
  readonly sessionMaxAgeS: number;
  readonly refreshReuseGraceS: number;
  readonly emailTokenTtlS: number;
  readonly resetTokenTtlS: number;
  readonly stepUpMaxAgeS: number;
  readonly accountRetentionS: number;
  readonly requireVerifiedEmail: boolean;
  /** Seconds a user's grants stay cached (`AUTH_PERMISSION_CACHE_TTL`). */
  readonly permissionCacheTtlS: number;
  /** Access tokens of an external OpenID provider (`AUTH_EXTERNAL_*`); null: none accepted. */
  readonly external: ExternalIssuerSettings | null;
  readonly lockout: {
    readonly threshold: number;
    readonly durationS: number;
    readonly maxDurationS: number;
  };
  readonly mfa: {
    /** Seconds an `mfaToken` from a password sign-in is valid. */
    readonly tokenTtlS: number;
    readonly totpIssuer: string;
  };
  readonly password: {
    readonly minLength: number;
    readonly maxLength: number;
    readonly minScore: number;
  };
  readonly argon2: {
    readonly memoryKib: number;
    readonly timeCost: number;
    readonly parallelism: number;
  };
  /** Sign-in providers (`AUTH_OIDC_PROVIDERS`), defaults applied. */
  readonly oidcProviders: readonly OidcProviderConfig[];
  /** The SMS factor and passkeys (`AUTH_SMS_*`, `AUTH_WEBAUTHN_*`). */
  readonly factors: FactorSettings;
  /** Lost-device recovery (`AUTH_MFA_RECOVERY_DELAY`). */
  readonly recovery: RecoverySettings;
}

/** argon2id rows of the OWASP Password Storage Cheat Sheet (memory KiB, iterations). */
const OWASP_ARGON2: readonly (readonly [number, number])[] = [
  [47_104, 1],
  [19_456, 2],
  [12_288, 3],
  [9_216, 4],
  [7_168, 5],
];

function checkKeysAndCosts(vars: IdentityVars, env: AppEnv, issues: ConfigIssue[]): void {
  const deployedEnv = env === 'staging' || env === 'production';
  if (
    deployedEnv &&
    !OWASP_ARGON2.some(([m, t]) => vars.ARGON2_MEMORY_KIB >= m && vars.ARGON2_TIME_COST >= t)
  ) {
    issues.push({
      key: 'ARGON2_MEMORY_KIB',
      message: `with ARGON2_TIME_COST=${vars.ARGON2_TIME_COST} is below the OWASP minimum (19456 KiB and 2 iterations, or an equivalent row)`,
    });
  }
  if (vars.ARGON2_MEMORY_KIB < 8 * vars.ARGON2_PARALLELISM) {
    issues.push({ key: 'ARGON2_MEMORY_KIB', message: 'must be at least 8 × ARGON2_PARALLELISM' });
  }
  if (vars.PASSWORD_MIN_LENGTH > vars.PASSWORD_MAX_LENGTH) {
    issues.push({ key: 'PASSWORD_MIN_LENGTH', message: 'is above PASSWORD_MAX_LENGTH' });
  }
  if (parseDuration(vars.AUTH_LOCKOUT_DURATION) > parseDuration(vars.AUTH_LOCKOUT_MAX_DURATION)) {
    issues.push({ key: 'AUTH_LOCKOUT_DURATION', message: 'is above AUTH_LOCKOUT_MAX_DURATION' });
  }
  const previous = pemBlocks(vars.AUTH_JWT_PREVIOUS_KEYS);
  if (vars.AUTH_JWT_PREVIOUS_KEYS.trim() !== '' && previous.length === 0)
    issues.push({ key: 'AUTH_JWT_PREVIOUS_KEYS', message: 'holds no PEM block' });
  for (const [i, pem] of previous.entries()) {
    try {
      const key = createPublicKey(pem);
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (
        key.asymmetricKeyType !== 'ed25519' &&
        !(key.asymmetricKeyType === 'ec' && curve === 'prime256v1')
      )
        issues.push({
          key: 'AUTH_JWT_PREVIOUS_KEYS',
          message: `key ${String(i + 1)} must be an Ed25519 or P-256 key`,
        });
    } catch {
      issues.push({
        key: 'AUTH_JWT_PREVIOUS_KEYS',
        message: `key ${String(i + 1)} is not a PEM public or private key`,
      });
    }
  }
  if (vars.AUTH_JWT_PRIVATE_KEY !== '') {
    try {
      const key = createPrivateKey(jwtPem(vars.AUTH_JWT_PRIVATE_KEY));
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (
        key.asymmetricKeyType !== 'ed25519' &&
        !(key.asymmetricKeyType === 'ec' && curve === 'prime256v1')
      )
        issues.push({ key: 'AUTH_JWT_PRIVATE_KEY', message: 'must be an Ed25519 or P-256 key' });
    } catch {
      issues.push({ key: 'AUTH_JWT_PRIVATE_KEY', message: 'is not a PEM private key' });
    }
  }
}

/** The PEM blocks in a value (several keys one after the other), `\\n` escapes allowed. */
function pemBlocks(value: string): string[] {
  return jwtPem(value).match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
}

/** A PEM given in one line with `\\n` escapes, as environment files often carry it. */
function jwtPem(value: string): string {
  return value.replace(/\\n/g, '\n').trim();
}

/** The cross-field checks of identity's settings (run once every value has its type). */
export function checkIdentityConfig(vars: IdentityVars, context: { env: AppEnv }): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  checkKeysAndCosts(vars, context.env, issues);
  issues.push(...checkFactorConfig(vars, context.env));
  if (vars.AUTH_EXTERNAL_ISSUER !== '' && vars.AUTH_EXTERNAL_AUDIENCE === '')
    issues.push({
      key: 'AUTH_EXTERNAL_AUDIENCE',
      message: 'is required with AUTH_EXTERNAL_ISSUER (tokens for any audience would pass)',
    });
  parseOidcProviders(vars.AUTH_OIDC_PROVIDERS, context.env, (message) =>
    issues.push({ key: 'AUTH_OIDC_PROVIDERS', message }),
  );
  return issues;
}

/** Identity's settings from its checked variables; the issuer defaults to the public URL. */
export function parseIdentityConfig(
  vars: IdentityVars,
  context: { env: AppEnv; publicUrl: string },
): IdentitySettings {
  const publicUrl = context.publicUrl;
  const oidcProviders = parseOidcProviders(vars.AUTH_OIDC_PROVIDERS, context.env, () => undefined);
  return {
    jwtPrivateKey: vars.AUTH_JWT_PRIVATE_KEY === '' ? null : jwtPem(vars.AUTH_JWT_PRIVATE_KEY),
    jwtIssuer: vars.AUTH_JWT_ISSUER === '' ? publicUrl : vars.AUTH_JWT_ISSUER,
    jwtAudience: vars.AUTH_JWT_AUDIENCE,
    jwtPreviousKeys: pemBlocks(vars.AUTH_JWT_PREVIOUS_KEYS),
    sessionCache: vars.AUTH_SESSION_CACHE,
    sessionCacheTtlS: parseDuration(vars.AUTH_SESSION_CACHE_TTL),
    accessTokenTtlS: parseDuration(vars.AUTH_ACCESS_TOKEN_TTL),
    refreshTokenTtlS: parseDuration(vars.AUTH_REFRESH_TOKEN_TTL),
    rememberMeTtlS: parseDuration(vars.AUTH_REMEMBER_ME_TTL),
    sessionMaxAgeS: parseDuration(vars.AUTH_SESSION_MAX_AGE),
    refreshReuseGraceS: parseDuration(vars.AUTH_REFRESH_REUSE_GRACE),
    emailTokenTtlS: parseDuration(vars.AUTH_EMAIL_TOKEN_TTL),
    resetTokenTtlS: parseDuration(vars.AUTH_RESET_TOKEN_TTL),
    stepUpMaxAgeS: parseDuration(vars.AUTH_STEP_UP_MAX_AGE),
    accountRetentionS: parseDuration(vars.AUTH_ACCOUNT_RETENTION),
    requireVerifiedEmail: vars.AUTH_REQUIRE_VERIFIED_EMAIL,
    permissionCacheTtlS: parseDuration(vars.AUTH_PERMISSION_CACHE_TTL),
    external: externalIssuer(vars),
    lockout: {
      threshold: vars.AUTH_LOCKOUT_THRESHOLD,
      durationS: parseDuration(vars.AUTH_LOCKOUT_DURATION),
      maxDurationS: parseDuration(vars.AUTH_LOCKOUT_MAX_DURATION),
    },
    mfa: {
      tokenTtlS: parseDuration(vars.AUTH_MFA_TOKEN_TTL),
      totpIssuer: vars.AUTH_TOTP_ISSUER,
    },
    password: {
      minLength: vars.PASSWORD_MIN_LENGTH,
      maxLength: vars.PASSWORD_MAX_LENGTH,
      minScore: vars.PASSWORD_MIN_SCORE,
    },
    argon2: {
      memoryKib: vars.ARGON2_MEMORY_KIB,
      timeCost: vars.ARGON2_TIME_COST,
      parallelism: vars.ARGON2_PARALLELISM,
    },
    oidcProviders,
    factors: parseFactorConfig(vars, context),
    recovery: parseRecoveryConfig(vars),
  };
}

/** Identity's settings in a loaded configuration (loaded with identity's module). */
export function identitySettings(config: Config): IdentitySettings {
  const settings = config.modules.identity;
  if (settings === undefined)
    throw new Error('identity settings missing: load the configuration with the identity module');
  return settings as unknown as IdentitySettings;
}

/** The external issuer whose access tokens are accepted (`AUTH_EXTERNAL_*`). */
export interface ExternalIssuerSettings {
  readonly issuer: string;
  /** Null: discovered from the issuer's OpenID configuration. */
  readonly jwksUrl: string | null;
  readonly audience: string;
  /** The roles claim's path (`['realm_access', 'roles']`). */
  readonly rolesClaim: readonly string[];
  /** Provider role → Groundwork role; null: the same names. */
  readonly roleMap: ReadonlyMap<string, string> | null;
}

function externalIssuer(vars: IdentityVars): ExternalIssuerSettings | null {
  if (vars.AUTH_EXTERNAL_ISSUER === '') return null;
  const pairs = vars.AUTH_EXTERNAL_ROLE_MAP.split(',')
    .filter((p) => p !== '')
    .map((p) => {
      const at = p.indexOf('=');
      return [p.slice(0, at).trim(), p.slice(at + 1).trim()] as const;
    });
  return {
    issuer: vars.AUTH_EXTERNAL_ISSUER,
    jwksUrl: vars.AUTH_EXTERNAL_JWKS_URL === '' ? null : vars.AUTH_EXTERNAL_JWKS_URL,
    audience: vars.AUTH_EXTERNAL_AUDIENCE,
    rolesClaim: vars.AUTH_EXTERNAL_ROLES_CLAIM.split('.'),
    roleMap: pairs.length > 0 ? new Map(pairs) : null,
  };
}
