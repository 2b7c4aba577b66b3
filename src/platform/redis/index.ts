import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import type { Logger } from '../observability/index.ts';
import { RedisBreaker, type RedisCircuitState } from './breaker.ts';

export type { Redis } from 'ioredis';
export {
  REDIS_CIRCUIT_OPEN,
  RedisBreaker,
  RedisCircuitOpenError,
  type RedisBreakerOptions,
  type RedisCircuitState,
} from './breaker.ts';

/** The first probe of an open circuit comes about this long after it opened (jittered). */
const FIRST_PROBE_MS = 250;

interface BreakerSettings {
  failureThreshold: number;
  maxProbeIntervalMs: number;
}

/** For clients not made by `connectRedis` (tests, scripts): the configuration's defaults. */
const DEFAULT_BREAKER: BreakerSettings = { failureThreshold: 3, maxProbeIntervalMs: 2_000 };

const breakers = new WeakMap<Redis, RedisBreaker>();

/**
 * The circuit breaker of `client`, shared by every user of the client: read `closed` before
 * sending a command, report the outcome. Made with the default settings for a client that
 * `connectRedis` did not make.
 */
export function redisBreaker(client: Redis): RedisBreaker {
  return breakers.get(client) ?? attachBreaker(client, DEFAULT_BREAKER);
}

export interface ConnectRedisOptions {
  /** Registry for the circuit's metrics (`redis_circuit_state`, `redis_circuit_opens_total`). */
  metrics?: Registry;
}

/**
 * The process's one Redis client (`REDIS_URL`), or null when none is configured and the
 * in-process stores stand in. Commands fail fast instead of queueing while disconnected, so
 * callers (rate limits, cache) can apply their fail mode at once; the client keeps reconnecting
 * in the background. A circuit breaker (`redisBreaker`) comes with it: after repeated timeouts
 * (a frozen server answers nothing, so each command would wait out its timeout) no command is
 * sent until a probe is answered.
 */
export async function connectRedis(
  config: Config,
  logger: Logger,
  options: ConnectRedisOptions = {},
): Promise<Redis | null> {
  const { url, keyPrefix, commandTimeoutMs } = config.redis;
  if (url === null) return null;
  const log = logger.child({ component: 'redis' });
  const client = new Redis(url, {
    keyPrefix,
    commandTimeout: commandTimeoutMs,
    connectTimeout: config.database.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect forever, backing off to 2 s: Redis coming back must heal the process by itself.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    connectionName: 'groundwork',
  });
  attachBreaker(
    client,
    {
      failureThreshold: config.redis.breakerFailureThreshold,
      maxProbeIntervalMs: config.redis.breakerMaxProbeIntervalMs,
    },
    log,
    options.metrics,
  );
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: { message: error.message } }, 'redis unavailable, retrying');
  });
  client.on('ready', () => {
    if (down) log.info('redis connection restored');
    down = false;
  });
  // Wait for the first connection a while; a Redis that is down at start fails readiness instead.
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => client.once('ready', () => resolve(true))),
    new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), config.database.connectTimeoutMs).unref(),
    ),
  ]);
  if (!ready) log.warn('redis did not answer at start; continuing, readiness reports it down');
  return client;
}

const CIRCUIT_STATE_VALUE: Record<RedisCircuitState, number> = {
  closed: 0,
  open: 1,
  'half-open': 2,
};

/** The circuit metrics of a registry: one client per registry (the process's) is shown. */
const circuitMetrics = new WeakMap<Registry, { breaker: RedisBreaker; opens: Counter }>();

function attachBreaker(
  client: Redis,
  settings: BreakerSettings,
  log?: Logger,
  registry?: Registry,
): RedisBreaker {
  let metrics = registry ? circuitMetrics.get(registry) : undefined;
  const breaker = new RedisBreaker({
    failureThreshold: settings.failureThreshold,
    firstProbeMs: Math.min(FIRST_PROBE_MS, settings.maxProbeIntervalMs),
    maxProbeIntervalMs: settings.maxProbeIntervalMs,
    // The probe waits as long as any command (the client's command timeout): a shorter one could
    // keep the circuit open against a Redis slow but answering within it.
    probe: async () => {
      const reply = await client.ping();
      if (reply !== 'PONG') throw new Error(`unexpected PING reply ${String(reply)}`);
    },
    onChange: (state, from, reason) => {
      if (state === 'open' && from === 'closed') {
        metrics?.opens.inc();
        log?.warn(
          {
            failures: settings.failureThreshold,
            err: { message: reason instanceof Error ? reason.message : String(reason) },
          },
          'redis circuit open: no command sent, fail modes apply until a probe is answered',
        );
      } else if (state === 'closed') {
        log?.info({ openMs: Date.now() - breaker.openedAt }, 'redis circuit closed');
      }
    },
  });
  breakers.set(client, breaker);
  client.on('ready', () => breaker.reconnected());
  if (registry) {
    if (metrics) {
      metrics.breaker = breaker;
    } else {
      const current = {
        breaker,
        opens: new Counter({
          name: 'redis_circuit_opens_total',
          help: 'Times the Redis circuit opened after repeated timeouts or connection errors',
          registers: [registry],
        }),
      };
      new Gauge({
        name: 'redis_circuit_state',
        help: 'Redis circuit breaker: 0 closed, 1 open (no command sent), 2 half-open (one probe under way)',
        registers: [registry],
        collect() {
          this.set(CIRCUIT_STATE_VALUE[current.breaker.state]);
        },
      });
      circuitMetrics.set(registry, current);
      metrics = current;
    }
  }
  return breaker;
}

/** Readiness check: down at once while the circuit is open, otherwise PING within the deadline. */
export async function pingRedis(client: Redis, signal?: AbortSignal): Promise<void> {
  const breaker = redisBreaker(client);
  if (!breaker.closed) throw new Error(`circuit ${breaker.state}: waiting for a probe to answer`);
  const reply = await Promise.race([
    breaker.observe(client.ping()),
    new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(new Error('timed out'));
      signal?.addEventListener('abort', () => reject(new Error('timed out')), { once: true });
    }),
  ]);
  if (reply !== 'PONG') throw new Error(`unexpected PING reply ${String(reply)}`);
}

/** Closes the client: QUIT when connected, otherwise drops the socket. */
export async function closeRedis(client: Redis): Promise<void> {
  breakers.get(client)?.stop();
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}

/**
 * A dedicated subscriber connection to the server of `client` (same URL and settings), for a
 * pub/sub channel: not connected until `connect()`, reconnecting by itself, without the client's
 * key prefix (channel names are given in full) and without automatic resubscription (the owner
 * subscribes on each `ready`, so it knows when the subscription is live again).
 */
export function redisSubscriber(client: Redis, connectionName: string): Redis {
  return client.duplicate({
    keyPrefix: '',
    lazyConnect: true,
    autoResubscribe: false,
    connectionName,
  });
}
