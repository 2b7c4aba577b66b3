import { Redis } from 'ioredis';
import type { Config } from '../config/index.ts';
import type { Logger } from '../observability/index.ts';

export type { Redis } from 'ioredis';

/**
 * The process's one Redis client (`REDIS_URL`), or null when none is configured and the
 * in-process stores stand in. Commands fail fast instead of queueing while disconnected, so
 * callers (rate limits, cache) can apply their fail mode at once; the client keeps reconnecting
 * in the background.
 */
export async function connectRedis(config: Config, logger: Logger): Promise<Redis | null> {
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

/** Readiness check: PING within the signal's deadline. */
export async function pingRedis(client: Redis, signal?: AbortSignal): Promise<void> {
  const reply = await Promise.race([
    client.ping(),
    new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(new Error('timed out'));
      signal?.addEventListener('abort', () => reject(new Error('timed out')), { once: true });
    }),
  ]);
  if (reply !== 'PONG') throw new Error(`unexpected PING reply ${String(reply)}`);
}

/** Closes the client: QUIT when connected, otherwise drops the socket. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
