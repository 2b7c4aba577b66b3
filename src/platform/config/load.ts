import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { Value } from 'typebox/value';
import { loadSlices, sliceMeta, type ConfigSlice } from './modules.ts';
import { parseOidcProviders, type OidcProviderConfig } from './oidc-providers.ts';
import { APP_ENVS, ConfigSchema, metaOf, type AppEnv, type Env } from './schema.ts';

/** One problem found in the environment: the variable and why it was refused. */
export interface ConfigIssue {
  key: string;
  message: string;
}

/** Thrown when the environment does not make a valid configuration; lists every issue at once. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Exit code for a configuration error (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

export interface Config {
  readonly env: AppEnv;
  readonly isProduction: boolean;
  /** staging or production: real secrets, no dev conveniences. */
  readonly isDeployed: boolean;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly apps: readonly string[] | 'all';
  };
  readonly secrets: { readonly appSecret: string };
  readonly http: {
    readonly trustProxy: readonly string[] | number | false;
    readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
    readonly allowedHosts: readonly string[];
    readonly corsOrigins: readonly string[];
    /** Development with `CORS_ORIGINS` unset: `http://localhost:*` and `http://127.0.0.1:*` are allowed. */
    readonly corsLocalhost: boolean;
    readonly bodyLimit: number;
    readonly maxUrlLength: number;
    readonly handlerTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly headersTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly maxEventLoopDelayMs: number;
    readonly pressureSampleIntervalMs: number;
    readonly problemTypeBase: string;
  };
  readonly observability: {
    readonly logLevel: Env['LOG_LEVEL'];
    readonly metricsToken: string | null;
    readonly sentryDsn: string | null;
  };
  readonly jobs: {
    readonly poolMax: number;
    readonly pollIntervalMs: number;
    readonly superviseIntervalS: number;
    readonly cronIntervalS: number;
  };
  readonly identity: {
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
  };
  readonly rateLimit: {
    readonly enabled: boolean;
    readonly anonymousPerMin: number;
    readonly tiers: {
      readonly free: number;
      readonly premium: number;
      readonly enterprise: number;
    };
    readonly notFoundPerMin: number;
    readonly memoryMaxKeys: number;
  };
  readonly upstream: {
    readonly timeoutMs: number;
    readonly retries: number;
    readonly maxRetryAfterMs: number;
    readonly breakerFailureThreshold: number;
    readonly breakerHalfOpenAfterMs: number;
  };
  readonly redis: {
    /** null: in-process stores (one process only). */
    readonly url: string | null;
    readonly keyPrefix: string;
    readonly commandTimeoutMs: number;
    /** Consecutive timeouts or connection errors that open the Redis circuit. */
    readonly breakerFailureThreshold: number;
    /** Longest interval between probes of an open circuit. */
    readonly breakerMaxProbeIntervalMs: number;
  };
  readonly mail: {
    /** null: the dev mailbox in development; sending fails elsewhere (production requires it). */
    readonly smtpUrl: string | null;
    readonly from: string;
    readonly defaultLocale: string;
    readonly publicUrl: string;
  };
  readonly lifecycle: { readonly shutdownGraceMs: number; readonly shutdownDrainDelayMs: number };
  readonly database: {
    /** null: start the embedded PostgreSQL server. */
    readonly url: string | null;
    readonly dataDir: string;
    readonly poolMax: number;
    readonly idleTimeoutMs: number;
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
    readonly ssl: Env['DATABASE_SSL'];
    readonly sslCaFile: string | null;
    readonly slowQueryMs: number;
    /** Apply pending migrations when serving starts (development, test, embedded, or opted in). */
    readonly migrateOnStart: boolean;
    readonly estimateAbove: number;
  };
  /** Each module's own settings (its `config` schema), parsed and frozen, by module name. */
  readonly modules: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The validated variables, for `config:check` (print through `maskEnv`). */
  readonly vars: Readonly<Env>;
  /** The modules' variables, for `config:check`. */
  readonly moduleVars: Readonly<Record<string, unknown>>;
}

export interface LoadOptions {
  /** Folder holding `.env` files (development and test only). */
  cwd?: string;
  /** The modules whose settings are validated together with the platform's. */
  modules?: readonly ConfigSlice[];
}

const PLACEHOLDER_EXACT = new Set([
  'secret',
  'password',
  'changeme',
  'changethis',
  'default',
  'example',
  'test',
  'token',
  'admin',
  'placeholder',
  'todo',
  'xxx',
  'none',
  'null',
  'undefined',
  '123456',
  '12345678',
]);
const PLACEHOLDER_PARTS = [
  'changeme',
  'changethis',
  'replacewith',
  'replaceme',
  'devonly',
  'insecure',
  'placeholder',
  'yoursecret',
];

/** True for values people leave in templates: `changeme`, `secret`, `replace-with-...`, `aaaa...`. */
export function isPlaceholderSecret(value: string): boolean {
  const norm = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (norm.length === 0) return true;
  if (PLACEHOLDER_EXACT.has(norm)) return true;
  if (PLACEHOLDER_PARTS.some((p) => norm.includes(p))) return true;
  return new Set(value).size <= 2;
}

function readDotenvFiles(cwd: string, appEnv: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['.env', `.env.${appEnv}`]) {
    const file = join(cwd, name);
    if (existsSync(file)) Object.assign(out, parseEnv(readFileSync(file, 'utf8')));
  }
  return out;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function parseTrustProxy(value: string, issues: ConfigIssue[]): readonly string[] | number | false {
  const trimmed = value.trim();
  if (trimmed === '') return false;
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const entries = list(trimmed);
  for (const entry of entries) {
    const [addr = '', prefix, extra] = entry.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= max);
    if (family === 0 || !prefixOk || extra !== undefined) {
      issues.push({ key: 'TRUST_PROXY', message: `"${entry}" is not an IP address or CIDR range` });
    }
  }
  return entries;
}

function parseOrigins(value: string, env: AppEnv, issues: ConfigIssue[]): string[] {
  const origins = list(value);
  for (const origin of origins) {
    if (origin === '*') {
      if (env === 'production')
        issues.push({ key: 'CORS_ORIGINS', message: '"*" is not allowed in production' });
      continue;
    }
    let ok: boolean;
    try {
      const url = new URL(origin);
      ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === origin;
    } catch {
      ok = false;
    }
    if (!ok)
      issues.push({
        key: 'CORS_ORIGINS',
        message: `"${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`,
      });
  }
  return origins;
}

function parseHosts(value: string, issues: ConfigIssue[]): string[] {
  const hosts = list(value).map((h) => h.toLowerCase());
  for (const host of hosts) {
    if (
      !/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host) &&
      isIP(host) === 0
    ) {
      issues.push({ key: 'ALLOWED_HOSTS', message: `"${host}" is not a host name` });
    }
  }
  return hosts;
}

/** Staging/production rules: required variables must be set (defaults do not count); secrets must be strong. */
function checkSecrets(vars: Env, given: Record<string, unknown>, issues: ConfigIssue[]): void {
  const appEnv = vars.APP_ENV;
  if (appEnv !== 'staging' && appEnv !== 'production') return;
  for (const key of Object.keys(ConfigSchema.properties)) {
    const meta = metaOf(key);
    // A development default never counts as set here, secret or not (MAIL_FROM, PUBLIC_URL...).
    const value = given[key] === undefined ? '' : String(vars[key as keyof Env] ?? '');
    if (value === '') {
      if (meta.requiredIn?.includes(appEnv))
        issues.push({ key, message: `is required in ${appEnv}` });
      continue;
    }
    if (!meta.secret || meta.minLength === undefined) continue;
    if (isPlaceholderSecret(value)) {
      issues.push({ key, message: `is a placeholder value; set a real secret in ${appEnv}` });
    } else if (value.length < meta.minLength) {
      issues.push({ key, message: `must be at least ${meta.minLength} characters in ${appEnv}` });
    }
  }
}

/** `PUBLIC_URL` when unset: the address served, `localhost` for every interface. */
function defaultPublicUrl(host: string, port: number): string {
  const name =
    host === '0.0.0.0' || host === '::' ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host;
  return `http://${name}:${String(port)}`;
}

/** `SHUTDOWN_DRAIN_DELAY_MS` when unset in staging and production (readiness 5 s × 1, plus propagation). */
const DEPLOYED_DRAIN_DELAY_MS = 10_000;

const UNIT_SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;

/** `15m` → 900. The schema's pattern has already checked the shape. */
export function parseDuration(value: string): number {
  const unit = value.slice(-1) as keyof typeof UNIT_SECONDS;
  return Number(value.slice(0, -1)) * UNIT_SECONDS[unit];
}

/** argon2id rows of the OWASP Password Storage Cheat Sheet (memory KiB, iterations). */
const OWASP_ARGON2: readonly (readonly [number, number])[] = [
  [47_104, 1],
  [19_456, 2],
  [12_288, 3],
  [9_216, 4],
  [7_168, 5],
];

function checkIdentity(vars: Env, issues: ConfigIssue[]): void {
  const deployedEnv = vars.APP_ENV === 'staging' || vars.APP_ENV === 'production';
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

/** The values an enum variable (`Type.Enum`, or a union of literals) accepts; undefined for others. */
function allowedValues(key: string): string[] | undefined {
  const schema = (
    ConfigSchema.properties as Record<string, { enum?: unknown[]; anyOf?: { const?: unknown }[] }>
  )[key];
  if (Array.isArray(schema?.enum)) return schema.enum.map(String);
  const literals = schema?.anyOf?.map((s) => s.const);
  if (literals?.length && literals.every((c) => c !== undefined)) return literals.map(String);
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates the environment against the schema and returns the frozen configuration.
 * Throws `ConfigError` listing every bad variable.
 */
export function loadConfig(
  source: Readonly<Record<string, string | undefined>>,
  options: LoadOptions = {},
): Config {
  const rawEnv = source.APP_ENV ?? 'development';
  const fromFiles =
    (rawEnv === 'development' || rawEnv === 'test') && options.cwd !== undefined
      ? readDotenvFiles(options.cwd, rawEnv)
      : {};

  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const value = source[key] ?? fromFiles[key];
    if (value === undefined) continue;
    // An empty value means "unset" for anything that is not free text.
    if (value === '' && (schema as { type?: string }).type !== 'string') continue;
    raw[key] = value;
  }

  const issues: ConfigIssue[] = [];
  // Default and Convert mutate their input: keep `raw` as given, to tell unset from defaulted.
  const withDefaults = Value.Default(ConfigSchema, { ...raw });
  const converted = Value.Convert(ConfigSchema, withDefaults) as Record<string, unknown>;
  for (const error of Value.Errors(ConfigSchema, converted)) {
    const key = error.instancePath.replace(/^\//, '').split('/')[0] ?? '';
    if (key === '') continue;
    const given = raw[key];
    const allowed = allowedValues(key);
    issues.push({
      key,
      message: `${allowed ? `must be one of: ${allowed.join(', ')}` : error.message}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`,
    });
  }
  // Keep the first error per key: one reason is enough to act on.
  const seen = new Set<string>();
  const unique = issues.filter((i) => (seen.has(i.key) ? false : (seen.add(i.key), true)));
  // The modules' settings are checked in the same pass: one error lists every problem.
  const slices = loadSlices(
    options.modules ?? [],
    (key) => source[key] ?? fromFiles[key],
    APP_ENVS.includes(converted.APP_ENV as AppEnv) ? (converted.APP_ENV as AppEnv) : 'development',
    unique,
  );
  if (unique.length > 0) {
    // Type errors make the cross-field checks meaningless; report them, plus secret checks where possible.
    const appEnv = APP_ENVS.includes(converted.APP_ENV as AppEnv)
      ? (converted.APP_ENV as AppEnv)
      : 'development';
    checkSecrets({ ...(converted as Env), APP_ENV: appEnv }, raw, unique);
    throw new ConfigError(unique);
  }

  const vars = converted as Env;
  const out: ConfigIssue[] = [];
  checkSecrets(vars, raw, out);
  checkIdentity(vars, out);
  const oidcProviders = parseOidcProviders(vars.AUTH_OIDC_PROVIDERS, vars.APP_ENV, (message) =>
    out.push({ key: 'AUTH_OIDC_PROVIDERS', message }),
  );
  const trustProxy = parseTrustProxy(vars.TRUST_PROXY, out);
  const corsOrigins = parseOrigins(vars.CORS_ORIGINS, vars.APP_ENV, out);
  const allowedHosts = parseHosts(vars.ALLOWED_HOSTS, out);
  if ((vars.TLS_CERT_FILE === '') !== (vars.TLS_KEY_FILE === '')) {
    out.push({
      key: vars.TLS_CERT_FILE === '' ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE',
      message: 'TLS_CERT_FILE and TLS_KEY_FILE go together',
    });
  }
  if (vars.DATABASE_URL !== '' && !/^postgres(ql)?:\/\//.test(vars.DATABASE_URL)) {
    out.push({ key: 'DATABASE_URL', message: 'must be a postgres:// or postgresql:// URL' });
  }
  if (vars.REDIS_URL !== '' && !/^rediss?:\/\/[^/\s]*/.test(vars.REDIS_URL)) {
    out.push({ key: 'REDIS_URL', message: 'must be a redis:// or rediss:// URL' });
  }
  if (vars.SMTP_URL !== '' && !/^smtps?:\/\/[^/\s]+/.test(vars.SMTP_URL)) {
    out.push({ key: 'SMTP_URL', message: 'must be an smtp:// or smtps:// URL' });
  }
  if (out.length > 0) throw new ConfigError(out);

  const apps = vars.APPS.trim() === 'all' ? 'all' : list(vars.APPS);
  // The development mailbox holds sign-in links: development listens on loopback unless told.
  const host =
    vars.HOST !== '' ? vars.HOST : vars.APP_ENV === 'development' ? '127.0.0.1' : '0.0.0.0';
  const publicUrl = (
    vars.PUBLIC_URL !== '' ? vars.PUBLIC_URL : defaultPublicUrl(host, vars.PORT)
  ).replace(/\/+$/, '');
  return deepFreeze<Config>({
    env: vars.APP_ENV,
    isProduction: vars.APP_ENV === 'production',
    isDeployed: vars.APP_ENV === 'production' || vars.APP_ENV === 'staging',
    server: { host, port: vars.PORT, apps },
    secrets: { appSecret: vars.APP_SECRET },
    http: {
      trustProxy,
      tls:
        vars.TLS_CERT_FILE === ''
          ? null
          : { certFile: vars.TLS_CERT_FILE, keyFile: vars.TLS_KEY_FILE },
      allowedHosts,
      corsOrigins,
      corsLocalhost: vars.APP_ENV === 'development' && raw.CORS_ORIGINS === undefined,
      bodyLimit: vars.BODY_LIMIT_BYTES,
      maxUrlLength: vars.MAX_URL_LENGTH,
      handlerTimeoutMs: vars.HANDLER_TIMEOUT_MS,
      requestTimeoutMs: vars.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: vars.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: vars.KEEP_ALIVE_TIMEOUT_MS,
      maxEventLoopDelayMs: vars.MAX_EVENT_LOOP_DELAY_MS,
      pressureSampleIntervalMs: vars.PRESSURE_SAMPLE_INTERVAL_MS,
      problemTypeBase: vars.PROBLEM_TYPE_BASE,
    },
    observability: {
      logLevel: vars.LOG_LEVEL,
      metricsToken: vars.METRICS_TOKEN === '' ? null : vars.METRICS_TOKEN,
      sentryDsn: vars.SENTRY_DSN === '' ? null : vars.SENTRY_DSN,
    },
    database: {
      url: vars.DATABASE_URL === '' ? null : vars.DATABASE_URL,
      dataDir: vars.DATA_DIR,
      poolMax: vars.DATABASE_POOL_MAX,
      idleTimeoutMs: vars.DATABASE_IDLE_TIMEOUT_MS,
      connectTimeoutMs: vars.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: vars.DATABASE_STATEMENT_TIMEOUT_MS,
      ssl: vars.DATABASE_SSL,
      sslCaFile: vars.DATABASE_SSL_CA_FILE === '' ? null : vars.DATABASE_SSL_CA_FILE,
      slowQueryMs: vars.DB_SLOW_QUERY_MS,
      migrateOnStart:
        vars.MIGRATE_ON_START ||
        vars.DATABASE_URL === '' ||
        vars.APP_ENV === 'development' ||
        vars.APP_ENV === 'test',
      estimateAbove: vars.PAGINATION_ESTIMATE_ABOVE,
    },
    jobs: {
      poolMax: vars.JOBS_POOL_MAX,
      pollIntervalMs: vars.JOBS_POLL_INTERVAL_MS,
      superviseIntervalS: vars.JOBS_SUPERVISE_INTERVAL_S,
      cronIntervalS: vars.JOBS_CRON_INTERVAL_S,
    },
    identity: {
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
    },
    rateLimit: {
      enabled: vars.RATE_LIMIT_ENABLED,
      anonymousPerMin: vars.RATE_LIMIT_ANONYMOUS_PER_MIN,
      tiers: {
        free: vars.RATE_LIMIT_FREE_PER_MIN,
        premium: vars.RATE_LIMIT_PREMIUM_PER_MIN,
        enterprise: vars.RATE_LIMIT_ENTERPRISE_PER_MIN,
      },
      notFoundPerMin: vars.RATE_LIMIT_NOT_FOUND_PER_MIN,
      memoryMaxKeys: vars.RATE_LIMIT_MEMORY_MAX_KEYS,
    },
    upstream: {
      timeoutMs: vars.UPSTREAM_TIMEOUT_MS,
      retries: vars.UPSTREAM_RETRIES,
      maxRetryAfterMs: vars.UPSTREAM_MAX_RETRY_AFTER_MS,
      breakerFailureThreshold: vars.BREAKER_FAILURE_THRESHOLD,
      breakerHalfOpenAfterMs: vars.BREAKER_HALF_OPEN_AFTER_MS,
    },
    redis: {
      url: vars.REDIS_URL === '' ? null : vars.REDIS_URL,
      keyPrefix: vars.REDIS_KEY_PREFIX,
      commandTimeoutMs: vars.REDIS_COMMAND_TIMEOUT_MS,
      breakerFailureThreshold: vars.REDIS_BREAKER_FAILURE_THRESHOLD,
      breakerMaxProbeIntervalMs: vars.REDIS_BREAKER_MAX_PROBE_INTERVAL_MS,
    },
    mail: {
      smtpUrl: vars.SMTP_URL === '' ? null : vars.SMTP_URL,
      from: vars.MAIL_FROM,
      defaultLocale: vars.MAIL_DEFAULT_LOCALE,
      publicUrl,
    },
    lifecycle: {
      shutdownGraceMs: vars.SHUTDOWN_GRACE_MS,
      // Behind a balancer the drain delay must outlast its readiness checks: 10 s by default there.
      shutdownDrainDelayMs:
        raw.SHUTDOWN_DRAIN_DELAY_MS === undefined &&
        (vars.APP_ENV === 'staging' || vars.APP_ENV === 'production')
          ? DEPLOYED_DRAIN_DELAY_MS
          : vars.SHUTDOWN_DRAIN_DELAY_MS,
    },
    modules: slices.values,
    // What is in effect, for `config:check`: the derived host and public URL included.
    vars: { ...vars, HOST: host, PUBLIC_URL: publicUrl },
    moduleVars: slices.vars,
  });
}

const URL_SECRET = /^(postgres|postgresql|redis|rediss|smtp|smtps|http|https):\/\//;

/** A connection URL keeps its shape with its credentials hidden; any other secret is hidden whole. */
export function maskSecret(value: string): string {
  if (!URL_SECRET.test(value)) return '********';
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '********';
    // A Sentry DSN carries its key as the user name.
    else if (url.username !== '') url.username = '********';
    return url.toString();
  } catch {
    return '********';
  }
}

/** The variables with secrets masked, for printing; the modules' after the platform's. */
export function maskEnv(
  vars: Readonly<Env>,
  modules: { vars: Readonly<Record<string, unknown>>; slices: readonly ConfigSlice[] } = {
    vars: {},
    slices: [],
  },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const metas = new Map(
    modules.slices.flatMap((s) =>
      Object.keys(s.config?.properties ?? {}).map((k) => [k, sliceMeta(s, k)] as const),
    ),
  );
  for (const [key, value] of [...Object.entries(vars), ...Object.entries(modules.vars)]) {
    const meta = metas.get(key) ?? metaOf(key);
    out[key] = meta.secret && value !== '' ? (meta.mask ?? maskSecret)(String(value)) : value;
  }
  return out;
}

/** The configuration of this process: its environment, and `.env` files in its working directory. */
export function loadProcessConfig(modules: readonly ConfigSlice[] = []): Config {
  return loadConfig(process.env, { cwd: process.cwd(), modules });
}
