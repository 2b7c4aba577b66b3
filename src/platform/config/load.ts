import { isIP } from 'node:net';
import { join } from 'node:path';
import { Value } from 'typebox/value';
import { readEnvFiles } from './env-files.ts';
import { finishSlices, loadSlices, sliceMeta, type ConfigSlice } from './modules.ts';
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
    /** With Redis: how soon a key's low reserve is topped up (ms). */
    readonly syncIntervalMs: number;
    /** With Redis: units one process holds per key, as a share of its limit (0: none). */
    readonly localShare: number;
    /** With Redis: keys whose reserve one process keeps. */
    readonly localMaxKeys: number;
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
  readonly cache: {
    /** The near cache in front of Redis (`CACHE_NEAR_*`); unused without Redis. */
    readonly near: {
      readonly enabled: boolean;
      readonly maxEntries: number;
      readonly maxTtlMs: number;
      readonly fallbackTtlMs: number;
      readonly pingIntervalMs: number;
    };
  };
  readonly mail: {
    /** null: the dev mailbox in development; sending fails elsewhere (production requires it). */
    readonly smtpUrl: string | null;
    readonly from: string;
    readonly defaultLocale: string;
    readonly publicUrl: string;
  };
  readonly lifecycle: { readonly shutdownGraceMs: number; readonly shutdownDrainDelayMs: number };
  readonly storage: {
    readonly driver: Env['STORAGE_DRIVER'];
    /** The `local` driver's folder (`<DATA_DIR>/files` unless set). */
    readonly localDir: string;
    /** Lifetime of signed download and upload URLs, in seconds. */
    readonly signedUrlTtlS: number;
    readonly s3: {
      /** null: AWS S3 of `region`. */
      readonly endpoint: string | null;
      readonly region: string;
      readonly bucket: string;
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly forcePathStyle: boolean;
    };
  };
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
  /** Each module's own settings (its `config` schema, then its `parseConfig`), frozen, by module name. */
  readonly modules: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The validated variables, for `config:check` (print through `maskEnv`). */
  readonly vars: Readonly<Env>;
  /** The modules' variables, for `config:check`. */
  readonly moduleVars: Readonly<Record<string, unknown>>;
}

export interface LoadOptions {
  /** Folder holding the `.env` files (`envFileNames`); none are read without it. */
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
  const fromFiles = options.cwd !== undefined ? readEnvFiles(source, options.cwd) : {};

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
  const sliceSecrets: ConfigIssue[] = [];
  const slices = loadSlices(
    options.modules ?? [],
    (key) => source[key] ?? fromFiles[key],
    APP_ENVS.includes(converted.APP_ENV as AppEnv) ? (converted.APP_ENV as AppEnv) : 'development',
    unique,
    sliceSecrets,
  );
  if (unique.length > 0) {
    // Type errors make the cross-field checks meaningless; report them, plus secret checks where possible.
    const appEnv = APP_ENVS.includes(converted.APP_ENV as AppEnv)
      ? (converted.APP_ENV as AppEnv)
      : 'development';
    checkSecrets({ ...(converted as Env), APP_ENV: appEnv }, raw, unique);
    throw new ConfigError([...unique, ...sliceSecrets]);
  }

  const vars = converted as Env;
  const out: ConfigIssue[] = [];
  checkSecrets(vars, raw, out);
  out.push(...sliceSecrets);
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
  if (vars.STORAGE_DRIVER === 's3') {
    for (const key of ['S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const)
      if (vars[key] === '') out.push({ key, message: 'is required with STORAGE_DRIVER=s3' });
  }
  // S3 signs URLs for 7 days at most; the local driver follows the same bound.
  if (parseDuration(vars.STORAGE_SIGNED_URL_TTL) > 604_800)
    out.push({ key: 'STORAGE_SIGNED_URL_TTL', message: 'must be at most 7d' });
  const apps = vars.APPS.trim() === 'all' ? 'all' : list(vars.APPS);
  // The development mailbox holds sign-in links: development listens on loopback unless told.
  const host =
    vars.HOST !== '' ? vars.HOST : vars.APP_ENV === 'development' ? '127.0.0.1' : '0.0.0.0';
  const publicUrl = (
    vars.PUBLIC_URL !== '' ? vars.PUBLIC_URL : defaultPublicUrl(host, vars.PORT)
  ).replace(/\/+$/, '');
  // The modules' cross-field checks and parsing (once the public URL is known), in the same
  // pass as the platform's: one error lists every problem.
  const modules = finishSlices(
    options.modules ?? [],
    slices.values,
    { env: vars.APP_ENV, publicUrl },
    out,
  );
  if (out.length > 0) throw new ConfigError(out);
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
      syncIntervalMs: vars.RATE_LIMIT_SYNC_INTERVAL_MS,
      localShare: vars.RATE_LIMIT_LOCAL_SHARE,
      localMaxKeys: vars.RATE_LIMIT_LOCAL_MAX_KEYS,
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
    cache: {
      near: {
        enabled: vars.CACHE_NEAR,
        maxEntries: vars.CACHE_NEAR_MAX_ENTRIES,
        maxTtlMs: parseDuration(vars.CACHE_NEAR_TTL) * 1000,
        fallbackTtlMs: vars.CACHE_NEAR_FALLBACK_TTL_MS,
        pingIntervalMs: vars.CACHE_NEAR_PING_INTERVAL_MS,
      },
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
    storage: {
      driver: vars.STORAGE_DRIVER,
      localDir:
        vars.STORAGE_LOCAL_DIR === '' ? join(vars.DATA_DIR, 'files') : vars.STORAGE_LOCAL_DIR,
      signedUrlTtlS: parseDuration(vars.STORAGE_SIGNED_URL_TTL),
      s3: {
        endpoint: vars.S3_ENDPOINT === '' ? null : vars.S3_ENDPOINT,
        region: vars.S3_REGION,
        bucket: vars.S3_BUCKET,
        accessKeyId: vars.S3_ACCESS_KEY_ID,
        secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
        forcePathStyle: vars.S3_FORCE_PATH_STYLE,
      },
    },
    modules,
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

/**
 * The configuration of this process: its environment, and the `.env` files of its `APP_ENV` in
 * its working directory (`GROUNDWORK_ENV_FILE=off`, set by the image, reads none).
 */
export function loadProcessConfig(modules: readonly ConfigSlice[] = []): Config {
  return loadConfig(process.env, { cwd: process.cwd(), modules });
}
