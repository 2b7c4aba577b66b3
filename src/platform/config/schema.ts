import { Type, type Static, type TSchema } from 'typebox';
import { APP_ENVS, type AppEnv } from './app-env.ts';

/** Extra metadata carried by each variable's schema, read by the loader and the docs generator. */
export interface VarMeta {
  /** Masked in `config:check` and logs; checked for length and placeholders in staging/production. */
  secret?: boolean;
  /** Must be set in staging and production (a development default may exist). */
  requiredIn?: readonly AppEnv[];
  /** Minimum length for a secret in staging/production. */
  minLength?: number;
  /** Grouping in the generated documentation. */
  group: string;
  /** Example value for `.env.example`. */
  example?: string;
  /** How `config:check` prints a secret, when not as one masked string. */
  mask?: (value: string) => string;
}

export { APP_ENVS, type AppEnv };

export const deployed = ['staging', 'production'] as const;

/** A variable's schema with its metadata (group, secret...), for the platform's and modules' settings. */
export function v<T extends TSchema>(schema: T, meta: VarMeta): T {
  return Object.assign(schema, { 'x-config': meta });
}

/** Milliseconds, an integer within bounds. */
export const ms = (description: string, def: number, min = 0, max = 86_400_000) =>
  Type.Integer({ description, default: def, minimum: min, maximum: max });

/** `15m`, `30d`: a positive whole number and one of s, m, h, d. */
export const DURATION_PATTERN = '^[1-9][0-9]{0,6}(s|m|h|d)$';

/** A duration with its unit (seconds at least), parsed once by the loader into seconds. */
export const duration = (description: string, def: string) =>
  Type.String({
    description: `${description} With a unit: \`30s\`, \`15m\`, \`12h\`, \`30d\`.`,
    default: def,
    pattern: DURATION_PATTERN,
  });

/**
 * Every environment variable Groundwork reads. Values arrive as strings and are converted to
 * the declared type; `docs/configuration.md` and `.env.example` are generated from this.
 */
export const ConfigSchema = Type.Object({
  APP_ENV: v(
    Type.Enum([...APP_ENVS], {
      description:
        'Deployment environment. Selects the `.env.<APP_ENV>` file read for local simulation (`.env` too in development and test); staging and production refuse weak secrets.',
      default: 'development',
    }),
    { group: 'Server' },
  ),
  GROUNDWORK_ENV_FILE: v(
    Type.Enum(['on', 'off'], {
      description:
        '`off`: read no `.env` file, only the process environment (the image sets it; containers get their settings from the orchestrator). Read from the process environment only.',
      default: 'on',
    }),
    { group: 'Server' },
  ),
  HOST: v(
    Type.String({
      description:
        'Interface to listen on. Unset: `127.0.0.1` in development (the development mailbox holds sign-in links), `0.0.0.0` elsewhere.',
      default: '',
    }),
    {
      group: 'Server',
    },
  ),
  PORT: v(
    Type.Integer({
      description: 'TCP port to listen on.',
      default: 3000,
      minimum: 0,
      maximum: 65535,
    }),
    {
      group: 'Server',
    },
  ),
  APPS: v(
    Type.String({
      description: 'Comma-separated list of apps to enable, or `all`.',
      default: 'all',
      pattern: '^[a-z0-9,-]+$',
    }),
    { group: 'Server' },
  ),
  APP_SECRET: v(
    Type.String({
      description:
        'Server-side secret used to sign opaque values (cursors, CSRF tokens). At least 32 characters in staging/production.',
      default: 'dev-only-insecure-secret-change-me-0000',
    }),
    {
      group: 'Server',
      secret: true,
      requiredIn: deployed,
      minLength: 32,
      example: 'replace-with-64-random-characters',
    },
  ),
  LOG_LEVEL: v(
    Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      description: 'Minimum level of log lines written to stdout.',
      default: 'info',
    }),
    { group: 'Observability' },
  ),
  TRUST_PROXY: v(
    Type.String({
      description:
        'Proxies whose `X-Forwarded-*` headers are trusted: a comma-separated list of IPs/CIDRs (`10.0.0.0/8,127.0.0.1`), a hop count (`1`), or empty for none.',
      default: '',
      pattern: '^[0-9a-fA-F:./, ]*$',
    }),
    { group: 'HTTP' },
  ),
  TLS_CERT_FILE: v(
    Type.String({
      description: 'PEM certificate; with `TLS_KEY_FILE`, serve HTTPS directly.',
      default: '',
    }),
    { group: 'HTTP' },
  ),
  TLS_KEY_FILE: v(
    Type.String({ description: 'PEM private key for `TLS_CERT_FILE`.', default: '' }),
    {
      group: 'HTTP',
    },
  ),
  ALLOWED_HOSTS: v(
    Type.String({
      description:
        'Comma-separated `Host` names this server answers (`api.example.com`, `.example.com` for subdomains). Empty allows any. Probes (`/health/live`, `/health/ready`) are exempt.',
      default: '',
    }),
    { group: 'HTTP' },
  ),
  CORS_ORIGINS: v(
    Type.String({
      description:
        'Comma-separated origins allowed by CORS, with credentials (`https://app.example.com`). Set but empty allows none. `*` allows any origin without credentials and is refused in production. Unset in development: any `http://localhost:<port>` and `http://127.0.0.1:<port>` origin is allowed; elsewhere none.',
      default: '',
    }),
    { group: 'HTTP', example: 'http://localhost:5173' },
  ),
  BODY_LIMIT_BYTES: v(
    Type.Integer({
      description: 'Largest request body accepted, in bytes (routes may override).',
      default: 1_048_576,
      minimum: 1,
      maximum: 1_073_741_824,
    }),
    { group: 'HTTP' },
  ),
  MAX_URL_LENGTH: v(
    Type.Integer({
      description: 'Longest request target (path and query) accepted; longer gets 414.',
      default: 8192,
      minimum: 256,
      maximum: 65536,
    }),
    { group: 'HTTP' },
  ),
  HANDLER_TIMEOUT_MS: v(
    ms(
      'Time a request may take from routing to response before it is answered with 503.',
      30_000,
      1,
    ),
    {
      group: 'HTTP',
    },
  ),
  REQUEST_TIMEOUT_MS: v(
    ms('Time to receive a whole request (headers and body) on a socket.', 60_000, 1),
    {
      group: 'HTTP',
    },
  ),
  HEADERS_TIMEOUT_MS: v(ms('Time to receive the request headers.', 20_000, 1), { group: 'HTTP' }),
  KEEP_ALIVE_TIMEOUT_MS: v(
    ms("Idle keep-alive timeout; keep it above your load balancer's idle timeout.", 72_000, 1),
    { group: 'HTTP' },
  ),
  MAX_EVENT_LOOP_DELAY_MS: v(
    ms(
      'Event-loop delay above which requests are shed with 503 (0 disables). Nothing is shed until two samples have been taken after start-up (the first would average in the synchronous build).',
      1_000,
      0,
      60_000,
    ),
    { group: 'HTTP' },
  ),
  PRESSURE_SAMPLE_INTERVAL_MS: v(
    // under-pressure reads an interval with no histogram sample (10 ms resolution) as an infinite
    // delay and sheds everything: at 10 ms that happens on a busy machine, so 50 ms is the floor.
    ms(
      'How often event-loop pressure is sampled (at least 50 ms: shorter intervals can see no sample and shed every request).',
      1_000,
      50,
      60_000,
    ),
    {
      group: 'HTTP',
    },
  ),
  PROBLEM_TYPE_BASE: v(
    Type.String({
      description:
        'Prefix of the `type` URI of problem responses; the lowercased code is appended.',
      default: 'urn:groundwork:problem:',
      minLength: 1,
    }),
    { group: 'HTTP' },
  ),
  DATABASE_URL: v(
    Type.String({
      description:
        'PostgreSQL connection URL. Empty: an embedded PostgreSQL server is started with its data in `DATA_DIR` (one process only; not for production).',
      default: '',
    }),
    {
      group: 'Database',
      secret: true,
      requiredIn: ['production'],
      example: 'postgres://groundwork:password@127.0.0.1:5432/groundwork',
    },
  ),
  DATA_DIR: v(
    Type.String({
      description: 'Folder for the embedded PostgreSQL data (when `DATABASE_URL` is empty).',
      default: './.data',
      minLength: 1,
    }),
    { group: 'Database' },
  ),
  DATABASE_POOL_MAX: v(
    Type.Integer({
      description: 'Most connections in the pool.',
      default: 10,
      minimum: 1,
      maximum: 1000,
    }),
    {
      group: 'Database',
    },
  ),
  DATABASE_IDLE_TIMEOUT_MS: v(ms('Time an idle pooled connection is kept.', 10_000, 0), {
    group: 'Database',
  }),
  DATABASE_CONNECT_TIMEOUT_MS: v(
    ms('Time to wait for a new connection before failing.', 5_000, 1),
    { group: 'Database' },
  ),
  DATABASE_STATEMENT_TIMEOUT_MS: v(
    ms('Server-side `statement_timeout` for every statement (0 disables).', 15_000, 0),
    {
      group: 'Database',
    },
  ),
  DATABASE_SSL: v(
    Type.Enum(['disable', 'require', 'verify-full'], {
      description:
        '`require`: TLS without certificate checks; `verify-full`: TLS with the CA in `DATABASE_SSL_CA_FILE` (or the system CAs) and host name checks.',
      default: 'disable',
    }),
    { group: 'Database' },
  ),
  DATABASE_SSL_CA_FILE: v(
    Type.String({ description: 'PEM CA bundle for `DATABASE_SSL=verify-full`.', default: '' }),
    {
      group: 'Database',
    },
  ),
  DB_SLOW_QUERY_MS: v(
    ms('Queries slower than this are logged (SQL text only, never parameters).', 200, 0),
    {
      group: 'Database',
    },
  ),
  MIGRATE_ON_START: v(
    Type.Boolean({
      description:
        'Apply pending migrations when `serve`/`all` starts. Always on in development and with the embedded database; off by default in staging/production, where `migrate` runs as a deploy step.',
      default: false,
    }),
    { group: 'Database' },
  ),
  PAGINATION_ESTIMATE_ABOVE: v(
    Type.Integer({
      description:
        'Above this many rows (planner estimate), offset pagination reports the estimate as `total` instead of counting.',
      default: 100_000,
      minimum: 0,
    }),
    { group: 'Database' },
  ),
  JOBS_POOL_MAX: v(
    Type.Integer({
      description:
        "Connections in the job queue's own pool (pg-boss), apart from `DATABASE_POOL_MAX`, so a burst of jobs never starves HTTP requests.",
      default: 5,
      minimum: 2,
      maximum: 100,
    }),
    { group: 'Jobs' },
  ),
  JOBS_POLL_INTERVAL_MS: v(
    ms(
      'How often an idle worker looks for due jobs. New jobs wake workers at once (LISTEN/NOTIFY); this bounds the start lag of delayed jobs and retries.',
      1_000,
      500,
      60_000,
    ),
    { group: 'Jobs' },
  ),
  JOBS_SUPERVISE_INTERVAL_S: v(
    Type.Integer({
      description:
        'How often a worker checks for jobs whose lease expired (a worker killed mid-job) and hands them back for a retry.',
      default: 30,
      minimum: 1,
      maximum: 3_600,
    }),
    { group: 'Jobs' },
  ),
  JOBS_CRON_INTERVAL_S: v(
    Type.Integer({
      description:
        'How often a worker checks cron schedules for due occurrences (a recurring job starts within this many seconds of its time).',
      default: 30,
      minimum: 1,
      maximum: 45,
    }),
    { group: 'Jobs' },
  ),
  REDIS_URL: v(
    Type.String({
      description:
        'Redis for rate limits, cache and pub/sub shared by every process (`redis://[:password@]host:6379/0`, `rediss://` for TLS). Unset: in-process stores, correct for one process only (see docs/traffic.md).',
      default: '',
    }),
    { group: 'Redis', secret: true, example: 'redis://127.0.0.1:6379/0' },
  ),
  REDIS_KEY_PREFIX: v(
    Type.String({
      description:
        'Prefix of every key Groundwork writes, so several deployments can share a server.',
      default: 'gw:',
      pattern: '^[A-Za-z0-9:_.-]{0,64}$',
    }),
    { group: 'Redis' },
  ),
  REDIS_COMMAND_TIMEOUT_MS: v(
    ms(
      'A Redis command slower than this fails (rate limits then follow their fail mode, the cache misses).',
      500,
      10,
      60_000,
    ),
    { group: 'Redis' },
  ),
  REDIS_BREAKER_FAILURE_THRESHOLD: v(
    Type.Integer({
      description:
        'Consecutive Redis commands that time out or find no connection before the circuit opens: then no command is sent (rate limits follow their fail mode at once, the cache misses, readiness reports Redis down) until a PING probe is answered.',
      default: 3,
      minimum: 1,
      maximum: 1_000,
    }),
    { group: 'Redis' },
  ),
  REDIS_BREAKER_MAX_PROBE_INTERVAL_MS: v(
    ms(
      'Longest wait between two probes of an open Redis circuit: the first comes within 250 ms, later ones at growing jittered intervals up to this. Bounds how long the circuit stays open once Redis answers again.',
      2_000,
      100,
      60_000,
    ),
    { group: 'Redis' },
  ),
  CACHE_NEAR: v(
    Type.Boolean({
      description:
        'With `REDIS_URL`: an in-process near cache in front of Redis for the platform cache (session checks, permissions, apps), so a lookup that hits costs no Redis round trip. Every process subscribes to invalidations on Redis pub/sub and drops what another process changed (see docs/cache.md for the bound); while that channel is not known healthy the near cache is bypassed. `false`: every lookup reads Redis.',
      default: true,
    }),
    { group: 'Cache' },
  ),
  CACHE_NEAR_MAX_ENTRIES: v(
    Type.Integer({
      description:
        'Most entries the near cache holds per process (also at most 32 MiB); the least recently used go first.',
      default: 10_000,
      minimum: 100,
      maximum: 10_000_000,
    }),
    { group: 'Cache' },
  ),
  CACHE_NEAR_TTL: v(
    duration(
      'Longest an entry is held in process, whatever its own TTL (the shorter wins). Invalidations drop entries at once; this bounds the staleness of one that never arrived (a write that failed while Redis was away).',
      '30s',
    ),
    { group: 'Cache' },
  ),
  CACHE_NEAR_FALLBACK_TTL_MS: v(
    ms(
      'While the invalidation channel is not known healthy (not yet subscribed, connection lost, PING unanswered): `0` bypasses the near cache, so a revocation made meanwhile is refused at once by every process; more holds entries at most this long (less load on Redis during an outage, revocations effective within this time).',
      0,
      0,
      10_000,
    ),
    { group: 'Cache' },
  ),
  CACHE_NEAR_PING_INTERVAL_MS: v(
    ms(
      'How often each process PINGs Redis on its invalidation subscriber connection; one unanswered by the next (or within `REDIS_COMMAND_TIMEOUT_MS`) marks the channel unhealthy. A frozen Redis keeps connections open, so this bounds how long a process trusts its near cache once messages stop.',
      250,
      50,
      10_000,
    ),
    { group: 'Cache' },
  ),
  STORAGE_DRIVER: v(
    Type.Enum(['local', 's3'], {
      description:
        'Where files are stored: `local`, a folder (`STORAGE_LOCAL_DIR`, one server only), or `s3`, an S3-compatible bucket (AWS S3, MinIO, R2).',
      default: 'local',
    }),
    { group: 'Storage' },
  ),
  STORAGE_LOCAL_DIR: v(
    Type.String({
      description: 'Folder of the `local` driver. Unset: `<DATA_DIR>/files`.',
      default: '',
    }),
    { group: 'Storage' },
  ),
  STORAGE_SIGNED_URL_TTL: v(
    duration('How long a signed download or upload URL stays valid (at most 7 days).', '5m'),
    { group: 'Storage' },
  ),
  S3_ENDPOINT: v(
    Type.String({
      description:
        'Endpoint of an S3-compatible service (`https://<account>.r2.cloudflarestorage.com`, `http://127.0.0.1:9000` for MinIO). Unset: AWS S3 of `S3_REGION`.',
      default: '',
      pattern: '^(https?://[^\\s]+)?$',
    }),
    { group: 'Storage' },
  ),
  S3_REGION: v(
    Type.String({
      description: 'Region of the bucket (`auto` for R2).',
      default: 'us-east-1',
      pattern: '^[a-z0-9-]{1,32}$',
    }),
    { group: 'Storage' },
  ),
  S3_BUCKET: v(
    Type.String({
      description: 'Bucket of the `s3` driver (required with it). Objects are private.',
      default: '',
      pattern: '^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$',
    }),
    { group: 'Storage' },
  ),
  S3_ACCESS_KEY_ID: v(
    Type.String({ description: 'Access key of the `s3` driver (required with it).', default: '' }),
    { group: 'Storage' },
  ),
  S3_SECRET_ACCESS_KEY: v(
    Type.String({ description: 'Secret key of the `s3` driver (required with it).', default: '' }),
    { group: 'Storage', secret: true },
  ),
  S3_FORCE_PATH_STYLE: v(
    Type.Boolean({
      description:
        'Address the bucket in the path (`<endpoint>/<bucket>/<key>`) rather than as a host name: MinIO and most self-hosted stores need it.',
      default: false,
    }),
    { group: 'Storage' },
  ),
  RATE_LIMIT_ENABLED: v(
    Type.Boolean({
      description:
        'Rate limits on `/api/*` and on unknown routes. Off only for benchmarks and tests that count requests.',
      default: true,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_ANONYMOUS_PER_MIN: v(
    Type.Integer({
      description: 'Requests per minute to `/api/*` per client IP without a signed-in user.',
      default: 30,
      minimum: 1,
      maximum: 100_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_FREE_PER_MIN: v(
    Type.Integer({
      description: 'Requests per minute to `/api/*` per signed-in user of the `free` tier.',
      default: 100,
      minimum: 1,
      maximum: 1_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_PREMIUM_PER_MIN: v(
    Type.Integer({
      description: 'Requests per minute to `/api/*` per signed-in user of the `premium` tier.',
      default: 1000,
      minimum: 1,
      maximum: 1_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_ENTERPRISE_PER_MIN: v(
    Type.Integer({
      description: 'Requests per minute to `/api/*` per signed-in user of the `enterprise` tier.',
      default: 10000,
      minimum: 1,
      maximum: 1_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_NOT_FOUND_PER_MIN: v(
    Type.Integer({
      description: 'Requests per minute to unknown routes per client IP (404s: scanners).',
      default: 30,
      minimum: 1,
      maximum: 1_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_MEMORY_MAX_KEYS: v(
    Type.Integer({
      description:
        'Most keys the in-process rate-limit store holds (without `REDIS_URL`); the least recently used go first.',
      default: 100_000,
      minimum: 100,
      maximum: 10_000_000,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_SYNC_INTERVAL_MS: v(
    ms(
      'With Redis: how long a key decided in process (a limit of at least 100 per period) may run with its reserve of units below half before the reserve is topped up; the low keys of this interval go to Redis in one call. Shorter: more calls, a smaller wait before a reserve is full again.',
      50,
      1,
      10_000,
    ),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_LOCAL_SHARE: v(
    Type.Number({
      description:
        "With Redis: the most units of a limit of at least 100 per period that one process holds reserved per key and spends without a round trip, as a share of the limit (at least 1 unit, at most 1,000). With N processes a key may be allowed up to N times that many units above its limit in a window, or get as many fewer; 0 makes every decision Redis's (one round trip per event-loop turn).",
      default: 0.01,
      minimum: 0,
      maximum: 0.1,
    }),
    { group: 'Rate limits' },
  ),
  RATE_LIMIT_LOCAL_MAX_KEYS: v(
    Type.Integer({
      description:
        "With Redis: most keys whose reserve and last state one process keeps (the least recently used go first; their next decision is Redis's).",
      default: 100_000,
      minimum: 100,
      maximum: 10_000_000,
    }),
    { group: 'Rate limits' },
  ),
  UPSTREAM_TIMEOUT_MS: v(
    ms(
      'Time limit of each attempt of an outbound HTTP call (connect, headers, body).',
      5_000,
      1,
      600_000,
    ),
    { group: 'Outbound HTTP' },
  ),
  UPSTREAM_RETRIES: v(
    Type.Integer({
      description:
        'Retries after the first attempt of an outbound call that may be retried (idempotent methods or calls marked so).',
      default: 2,
      minimum: 0,
      maximum: 10,
    }),
    { group: 'Outbound HTTP' },
  ),
  UPSTREAM_MAX_RETRY_AFTER_MS: v(
    ms(
      'Longest upstream `Retry-After` honoured; a longer one ends the call instead of waiting.',
      10_000,
      0,
      600_000,
    ),
    { group: 'Outbound HTTP' },
  ),
  BREAKER_FAILURE_THRESHOLD: v(
    Type.Integer({
      description:
        'Consecutive failed calls (5xx, timeouts, network errors) to one upstream that open its circuit breaker.',
      default: 5,
      minimum: 1,
      maximum: 1_000,
    }),
    { group: 'Outbound HTTP' },
  ),
  BREAKER_HALF_OPEN_AFTER_MS: v(
    ms(
      'How long an open circuit fails fast before one trial call is let through.',
      10_000,
      100,
      3_600_000,
    ),
    { group: 'Outbound HTTP' },
  ),
  ADMIN_TOKEN: v(
    Type.String({
      description:
        'Bearer token for the admin API (`/api/v1/admin/*`: queues, dead letters). Unset: the admin API refuses every request. At least 32 characters in staging/production.',
      default: '',
    }),
    { group: 'Admin', secret: true, minLength: 32 },
  ),
  PUBLIC_URL: v(
    Type.String({
      description:
        'Public base URL of the API, used for links in mail (verification, password reset). Required in staging and production. Unset: `http://<HOST>:<PORT>` (`localhost` when `HOST` is every interface).',
      default: '',
      pattern: '^(https?://[^\\s/]+(/.*)?)?$',
    }),
    { group: 'Mail', requiredIn: deployed, example: 'https://api.example.com' },
  ),
  SMTP_URL: v(
    Type.String({
      description:
        'SMTP server for outgoing mail (`smtp://user:pass@host:587`, `smtps://...:465`). Unset in development: mail goes to the dev mailbox at `/dev/mailbox`. Required in staging and production.',
      default: '',
    }),
    {
      group: 'Mail',
      secret: true,
      requiredIn: deployed,
      example: 'smtp://user:password@smtp.example.com:587',
    },
  ),
  MAIL_FROM: v(
    Type.String({
      description: 'Sender of outgoing mail, as `Name <address>` or an address.',
      default: 'Groundwork <no-reply@localhost>',
      minLength: 3,
    }),
    { group: 'Mail', requiredIn: deployed, example: 'Example <no-reply@example.com>' },
  ),
  MAIL_DEFAULT_LOCALE: v(
    Type.String({
      description:
        "Locale used when a recipient's locale has no version of a template (every template must have this one).",
      default: 'en',
      pattern: '^[a-z]{2}(-[A-Z]{2})?$',
    }),
    { group: 'Mail' },
  ),
  METRICS_TOKEN: v(
    Type.String({
      description:
        'Bearer token required by `/metrics` and `/health` when set. At least 16 characters in staging/production.',
      default: '',
    }),
    { group: 'Observability', secret: true, minLength: 16 },
  ),
  SENTRY_DSN: v(
    Type.String({
      description:
        'When set, 5xx errors are reported to this Sentry DSN; otherwise nothing is sent anywhere.',
      default: '',
    }),
    { group: 'Observability', secret: true },
  ),
  SHUTDOWN_GRACE_MS: v(
    ms(
      'Time in-flight requests get to finish after SIGTERM before the process is forced down.',
      10_000,
      0,
      600_000,
    ),
    {
      group: 'Lifecycle',
    },
  ),
  SHUTDOWN_DRAIN_DELAY_MS: v(
    ms(
      'Time between readiness turning 503 and the listener closing, so load balancers stop routing here first. Unset: 10000 in staging and production, 0 in development and test.',
      0,
      0,
      120_000,
    ),
    { group: 'Lifecycle' },
  ),
});

export type Env = Static<typeof ConfigSchema>;
export type EnvKey = keyof Env;

/** Metadata of one variable. */
export function metaOf(key: string): VarMeta {
  const schema = (ConfigSchema.properties as Record<string, TSchema & { 'x-config'?: VarMeta }>)[
    key
  ];
  return schema?.['x-config'] ?? { group: 'Other' };
}
