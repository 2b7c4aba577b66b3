/**
 * Cache hit path in process: the latency of `cache.getOrSet(key, compute, ...)` when the key is
 * cached, for the in-process backend and the Redis backend (Redis at `BENCH_REDIS_URL`, under a
 * unique key prefix, deleted at the end). One call at a time, each timed on its own; warm-up calls
 * first; percentiles from the sorted samples. The value is a ~300-byte JSON object (a small API
 * response); metrics are recorded as in the server. `compute` throws: a miss would fail the run.
 *
 * Part of `npm run bench -- traffic`; on its own: `node bench/traffic-cache.ts`.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createCache, type Cache } from '../src/platform/cache/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { createMetricsRegistry } from '../src/platform/observability/index.ts';
import { closeRedis, connectRedis } from '../src/platform/redis/index.ts';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const MEMORY = { warmup: 20_000, iterations: 200_000 };
const REDIS = { warmup: 2_000, iterations: 20_000 };

export interface CacheHitResult {
  backend: string;
  p50Us: number;
  p99Us: number;
  opsPerSecond: number;
}

const VALUE = {
  id: '0195d3c2-7a4e-7b1c-9f00-0123456789ab',
  name: 'Harbour lookout',
  description: 'A short walk from the old pier; best light an hour before sunset.',
  tags: ['coast', 'sunset', 'walk'],
  location: { lat: 51.5072, lng: -0.1276 },
  rating: 4.6,
  updatedAt: '2026-03-01T10:00:00.123Z',
};

function percentile(sorted: Float64Array, p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

const miss = (): never => {
  throw new Error('cache miss during the hit-path benchmark');
};

async function measure(
  backend: string,
  cache: Cache,
  runs: { warmup: number; iterations: number },
): Promise<CacheHitResult> {
  const key = cache.key('bench', 'hit', randomUUID());
  const options = { ttlSeconds: 600, tags: ['bench'] };
  await cache.set(key, VALUE, options);
  try {
    for (let i = 0; i < runs.warmup; i++) await cache.getOrSet(key, miss, options);
    const samples = new Float64Array(runs.iterations);
    const started = process.hrtime.bigint();
    for (let i = 0; i < runs.iterations; i++) {
      const t0 = process.hrtime.bigint();
      await cache.getOrSet(key, miss, options);
      samples[i] = Number(process.hrtime.bigint() - t0) / 1_000;
    }
    const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
    samples.sort();
    return {
      backend,
      p50Us: percentile(samples, 50),
      p99Us: percentile(samples, 99),
      opsPerSecond: runs.iterations / elapsedS,
    };
  } finally {
    await cache.invalidateTag('bench');
  }
}

/** p50/p99 of a cache hit through `getOrSet`, per backend (microseconds), and sequential ops/s. */
export async function cacheHitLatency(): Promise<CacheHitResult[]> {
  const logger = pino({ level: 'warn' });
  const results: CacheHitResult[] = [];

  const memory = createCache({ redis: null, logger, metrics: createMetricsRegistry() });
  try {
    results.push(await measure('in-process (lru-cache)', memory, MEMORY));
  } finally {
    memory.close();
  }

  const config = loadConfig({
    APP_ENV: 'test',
    REDIS_URL,
    REDIS_KEY_PREFIX: `gwbench:${randomUUID()}:`,
  });
  const client = await connectRedis(config, logger);
  if (client === null || client.status !== 'ready') {
    if (client) await closeRedis(client);
    throw new Error(`Redis not answering at ${REDIS_URL} (set BENCH_REDIS_URL)`);
  }
  const redis = createCache({ redis: client, logger, metrics: createMetricsRegistry() });
  try {
    results.push(await measure('Redis (loopback)', redis, REDIS));
  } finally {
    redis.close();
    await closeRedis(client);
  }
  return results;
}

if (import.meta.main) {
  const rows = await cacheHitLatency();
  process.stdout.write(
    '| Backend | p50 (µs) | p99 (µs) | ops/s (one at a time) |\n| --- | --- | --- | --- |\n',
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.backend} | ${r.p50Us.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${Math.round(r.opsPerSecond).toLocaleString('en')} |\n`,
    );
}
