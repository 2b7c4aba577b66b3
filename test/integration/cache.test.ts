import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis as RawRedis } from 'ioredis';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { createCache, userTag, type Cache } from '../../src/platform/cache/index.ts';
import { MemoryStore } from '../../src/platform/cache/memory-store.ts';
import { createLogger, createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { closeRedis, connectRedis, type Redis } from '../../src/platform/redis/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { needsRedis, PrivateRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

const silent = pino({ level: 'silent' });
const redisOk = await needsRedis();

/** The value of a counter or gauge for the labels given (0 when never set). */
async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) return 0;
  const { values } = await m.get();
  const hit = values.find((v) =>
    Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return hit?.value ?? 0;
}

interface Made {
  cache: Cache;
  registry: Registry;
}

/** The same behaviour, asserted for each backend. */
function behaviour(name: string, make: () => Made): void {
  test(`${name}: peek answers at once in process (hits, misses, null values, counted) and defers to get with Redis`, async () => {
    const { cache, registry } = make();
    await cache.set(cache.key('peeked', 1), { a: 1 }, { ttlSeconds: 60 });
    await cache.set(cache.key('peeked', 2), null, { ttlSeconds: 60 });
    const hits = () =>
      metric(registry, 'cache_requests_total', { namespace: 'peeked', result: 'hit' });
    const misses = () =>
      metric(registry, 'cache_requests_total', { namespace: 'peeked', result: 'miss' });
    if (cache.backend === 'redis') {
      assert.equal(cache.peek(cache.key('peeked', 1)), undefined);
      assert.equal(await hits(), 0);
      return;
    }
    assert.deepEqual(cache.peek(cache.key('peeked', 1)), { value: { a: 1 } });
    assert.deepEqual(cache.peek(cache.key('peeked', 2)), { value: null });
    assert.deepEqual(cache.peek(cache.key('peeked', 3)), { value: undefined });
    assert.equal(await hits(), 2);
    assert.equal(await misses(), 1);
  });

  test(`${name}: set then get round-trips JSON values; delete removes; a miss is undefined`, async () => {
    const { cache } = make();
    const values: unknown[] = [{ a: 1, b: [1, 'two', null] }, [1, 2], null, 0, '', 'text', false];
    for (const [i, value] of values.entries()) {
      await cache.set(cache.key('things', i), value, { ttlSeconds: 60 });
      assert.deepEqual(await cache.get(cache.key('things', i)), value);
    }
    assert.equal(await cache.get(cache.key('things', 'absent')), undefined);
    await cache.delete(cache.key('things', 0), cache.key('things', 1));
    assert.equal(await cache.get(cache.key('things', 0)), undefined);
    assert.equal(await cache.get(cache.key('things', 1)), undefined);
    assert.equal(await cache.get(cache.key('things', 2)), null);
    await assert.rejects(
      cache.set(cache.key('things', 'u'), undefined, { ttlSeconds: 60 }),
      TypeError,
    );
  });

  test(`${name}: a value expires after its TTL`, async () => {
    const { cache } = make();
    const key = cache.key('short');
    await cache.set(key, 'soon gone', { ttlSeconds: 0.2 });
    assert.equal(await cache.get(key), 'soon gone');
    await sleep(350);
    assert.equal(await cache.get(key), undefined);
  });

  test(`${name}: invalidating a tag removes every key carrying it, and only those`, async () => {
    const { cache } = make();
    const [a, b, c, d] = [
      cache.userKey(42, 'profile'),
      cache.key('posts', 'by-author', 42),
      cache.userKey(43, 'profile'),
      cache.key('posts', 'latest'),
    ];
    await cache.set(a, 'a', { ttlSeconds: 60, tags: [userTag(42)] });
    await cache.set(b, 'b', { ttlSeconds: 60, tags: [userTag(42), 'posts'] });
    await cache.set(c, 'c', { ttlSeconds: 60, tags: [userTag(43)] });
    await cache.set(d, 'd', { ttlSeconds: 60, tags: ['posts'] });
    await cache.invalidateTag('user:42');
    assert.equal(await cache.get(a), undefined);
    assert.equal(await cache.get(b), undefined);
    assert.equal(await cache.get(c), 'c');
    assert.equal(await cache.get(d), 'd');
    await cache.invalidateTags(['posts', userTag(43)]);
    assert.equal(await cache.get(c), undefined);
    assert.equal(await cache.get(d), undefined);
    await cache.invalidateTag('never-used');
  });

  test(`${name}: a key set again with other tags answers to the new tags`, async () => {
    const { cache } = make();
    const key = cache.key('retag');
    await cache.set(key, 1, { ttlSeconds: 60, tags: ['old'] });
    await cache.set(key, 2, { ttlSeconds: 60, tags: ['new'] });
    await cache.invalidateTag('new');
    assert.equal(await cache.get(key), undefined);
  });

  test(`${name}: 50 concurrent getOrSet misses for one key compute once; hits and misses are counted`, async () => {
    const { cache, registry } = make();
    const key = cache.key('report', 'daily');
    let computes = 0;
    const compute = async () => {
      computes += 1;
      await sleep(50);
      return { total: 12, computedBy: computes };
    };
    const results = await Promise.all(
      Array.from({ length: 50 }, () => cache.getOrSet(key, compute, { ttlSeconds: 60 })),
    );
    assert.equal(computes, 1);
    for (const r of results) assert.deepEqual(r, { total: 12, computedBy: 1 });
    assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), {
      total: 12,
      computedBy: 1,
    });
    assert.equal(computes, 1);
    assert.equal(
      await metric(registry, 'cache_requests_total', { namespace: 'report', result: 'miss' }),
      1,
    );
    assert.equal(
      await metric(registry, 'cache_requests_total', { namespace: 'report', result: 'coalesced' }),
      49,
    );
    assert.equal(
      await metric(registry, 'cache_requests_total', { namespace: 'report', result: 'hit' }),
      1,
    );
    // Only the namespace is a label: never the key's parts.
    const { values } = await registry.getSingleMetric('cache_requests_total')!.get();
    assert.ok(values.every((v) => v.labels.namespace === 'report'));
  });

  test(`${name}: a failing compute rejects every waiter and caches nothing`, async () => {
    const { cache } = make();
    const key = cache.key('flaky');
    let computes = 0;
    const failing = async (): Promise<string> => {
      computes += 1;
      await sleep(30);
      throw new Error('upstream down');
    };
    const settled = await Promise.allSettled(
      Array.from({ length: 50 }, () => cache.getOrSet(key, failing, { ttlSeconds: 60 })),
    );
    assert.equal(computes, 1);
    for (const s of settled) {
      assert.equal(s.status, 'rejected');
      assert.equal((s.reason as Error).message, 'upstream down');
    }
    assert.equal(await cache.get(key), undefined);
    assert.equal(await cache.getOrSet(key, () => 'recovered', { ttlSeconds: 60 }), 'recovered');
    assert.equal(await cache.get(key), 'recovered');
    // A synchronous throw is a failing compute too.
    await assert.rejects(
      cache.getOrSet(
        cache.key('flaky', 'sync'),
        () => {
          throw new Error('sync');
        },
        { ttlSeconds: 60 },
      ),
      /sync/,
    );
  });

  test(`${name}: undefined from compute is returned but not cached; bad options throw before computing`, async () => {
    const { cache } = make();
    const key = cache.key('nothing');
    let computes = 0;
    const compute = () => {
      computes += 1;
      return undefined;
    };
    assert.equal(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), undefined);
    assert.equal(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), undefined);
    assert.equal(computes, 2);
    for (const ttlSeconds of [0, -1, Number.NaN, 31 * 24 * 3600]) {
      await assert.rejects(cache.getOrSet(key, compute, { ttlSeconds }), RangeError);
      await assert.rejects(cache.set(key, 1, { ttlSeconds }), RangeError);
    }
    await assert.rejects(cache.set(key, 1, { ttlSeconds: 1, tags: [''] }), RangeError);
    assert.equal(computes, 2);
  });

  test(`${name}: two users never read each other's value, nor a public key's`, async () => {
    const { cache } = make();
    const load = (id: number) => () => ({ id, email: `user${String(id)}@example.com` });
    const opts = (id: number) => ({ ttlSeconds: 60, tags: [userTag(id)] });
    assert.deepEqual(await cache.getOrSet(cache.userKey(1, 'me'), load(1), opts(1)), load(1)());
    assert.deepEqual(await cache.getOrSet(cache.userKey(2, 'me'), load(2), opts(2)), load(2)());
    assert.deepEqual(await cache.get(cache.userKey(1, 'me')), load(1)());
    assert.deepEqual(await cache.get(cache.userKey(2, 'me')), load(2)());
    assert.equal(await cache.get(cache.key('me')), undefined);
    assert.equal(await cache.get(cache.key('me', '@1')), undefined);
    assert.equal(await cache.get(cache.userKey('1:x', 'me')), undefined);
    await cache.invalidateTag(userTag(1));
    assert.equal(await cache.get(cache.userKey(1, 'me')), undefined);
    assert.deepEqual(await cache.get(cache.userKey(2, 'me')), load(2)());
  });

  test(`${name}: returned values are copies; changing one does not change the cache`, async () => {
    const { cache } = make();
    const key = cache.key('copies');
    const original = { list: [1] };
    await cache.set(key, original, { ttlSeconds: 60 });
    original.list.push(2);
    const read = await cache.get<{ list: number[] }>(key);
    assert.deepEqual(read, { list: [1] });
    read?.list.push(3);
    assert.deepEqual(await cache.get(key), { list: [1] });
  });
}

describe('cache, in-process backend', () => {
  const caches: Cache[] = [];
  after(() => caches.forEach((c) => c.close()));
  behaviour('memory', () => {
    const registry = createMetricsRegistry();
    const cache = createCache({ redis: null, logger: silent, metrics: registry });
    caches.push(cache);
    assert.equal(cache.backend, 'memory');
    return { cache, registry };
  });

  test('memory: 100,000 distinct tagged keys keep the store, its tag index and the heap bounded', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const registry = createMetricsRegistry();
    const store = new MemoryStore({ maxEntries: 5_000, maxBytes: 4 * 1024 * 1024 });
    const payload = 'x'.repeat(1_000);
    for (let i = 0; i < 100_000; i++) {
      store.set(`k:${String(i)}`, `${payload}${String(i)}`, 60_000, [
        `t:${String(i)}`,
        `g:${String(i % 7)}`,
      ]);
    }
    const stats = store.stats();
    assert.ok(stats.entries <= 5_000, `entries ${String(stats.entries)}`);
    assert.ok(stats.bytes <= 4 * 1024 * 1024, `bytes ${String(stats.bytes)}`);
    // One tag per key plus the seven shared ones: the index only holds tags of live entries.
    assert.ok(stats.tags <= stats.entries + 7, `tags ${String(stats.tags)}`);
    gc();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    // Unbounded, this would hold about 200 MB of strings.
    assert.ok(grown < 40 * 1024 * 1024, `heap grew by ${String(grown)} bytes`);
    // Expired and evicted entries leave no tag behind.
    store.invalidateTags(['g:0', 'g:1', 'g:2', 'g:3', 'g:4', 'g:5', 'g:6']);
    assert.deepEqual(store.stats(), { entries: 0, bytes: 0, tags: 0 });

    // Through the cache: the gauges report the same bound.
    const cache = createCache({
      redis: null,
      logger: silent,
      metrics: registry,
      maxEntries: 1_000,
    });
    for (let i = 0; i < 100_000; i++) await cache.set(cache.key('many', i), i, { ttlSeconds: 60 });
    assert.equal(await metric(registry, 'cache_entries'), 1_000);
    assert.ok((await metric(registry, 'cache_size_bytes')) > 0);
    cache.close();
  });

  test('memory: entries expire and leave the tag index', async () => {
    const store = new MemoryStore({ maxEntries: 100, maxBytes: 1024 * 1024 });
    store.set('a', '1', 50, ['t']);
    await sleep(120);
    assert.equal(store.get('a'), undefined);
    assert.equal(store.stats().tags, 0);
  });

  test('memory: a value larger than the byte budget is not stored and not tagged', () => {
    const store = new MemoryStore({ maxEntries: 100, maxBytes: 1024 });
    store.set('big', 'x'.repeat(2_000), 60_000, ['t']);
    assert.equal(store.get('big'), undefined);
    assert.deepEqual(store.stats(), { entries: 0, bytes: 0, tags: 0 });
  });
});

describe('cache, Redis backend', redisOk, () => {
  const prefix = `gwtest:cache:${randomUUID()}:`;
  let client: Redis;
  let raw: RawRedis;
  let n = 0;
  const caches: Cache[] = [];

  before(async () => {
    const config = testConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const connected = await connectRedis(config, silent);
    assert.ok(connected);
    client = connected;
    raw = new RawRedis(TEST_REDIS_URL, { lazyConnect: true });
    await raw.connect();
  });
  after(async () => {
    caches.forEach((c) => c.close());
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
    await closeRedis(client);
  });

  behaviour('redis', () => {
    const registry = createMetricsRegistry();
    n += 1;
    const cache = createCache({
      redis: client,
      logger: silent,
      metrics: registry,
      keyPrefix: `cache${String(n)}:`,
    });
    caches.push(cache);
    assert.equal(cache.backend, 'redis');
    return { cache, registry };
  });

  test('redis: keys live under the client prefix; a tag set outlives its longest member', async () => {
    const cache = createCache({ redis: client, logger: silent });
    caches.push(cache);
    await cache.set(cache.key('layout', 1), 'long', { ttlSeconds: 100, tags: ['layout'] });
    await cache.set(cache.key('layout', 2), 'short', { ttlSeconds: 5, tags: ['layout'] });
    // Absolute expiry times: two PTTL reads a millisecond apart made equal expiries look unequal.
    const valueAt = Number(await raw.call('pexpiretime', `${prefix}cache:v:layout:1`));
    const tagAt = Number(await raw.call('pexpiretime', `${prefix}cache:t:layout`));
    const valueTtl = valueAt - Date.now();
    assert.ok(valueTtl > 90_000 && valueTtl <= 100_000, `value ${String(valueTtl)}`);
    assert.ok(
      tagAt >= valueAt,
      `tag expires at ${String(tagAt)}, before value at ${String(valueAt)}`,
    );
    assert.deepEqual((await raw.smembers(`${prefix}cache:t:layout`)).sort(), [
      `${prefix}cache:v:layout:1`,
      `${prefix}cache:v:layout:2`,
    ]);
    await cache.invalidateTag('layout');
    assert.equal(await raw.exists(`${prefix}cache:t:layout`, `${prefix}cache:v:layout:1`), 0);
  });

  test('redis: two processes share values and invalidations', async () => {
    const config = testConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const other = await connectRedis(config, silent);
    assert.ok(other);
    try {
      const a = createCache({ redis: client, logger: silent, keyPrefix: 'shared:' });
      const b = createCache({ redis: other, logger: silent, keyPrefix: 'shared:' });
      await a.set(a.key('price', 7), 990, { ttlSeconds: 60, tags: ['product:7'] });
      assert.equal(await b.get(b.key('price', 7)), 990);
      await b.invalidateTag('product:7');
      assert.equal(await a.get(a.key('price', 7)), undefined);
    } finally {
      await closeRedis(other);
    }
  });

  test('redis: an invalidation that fails while disconnected is applied once Redis is back', async () => {
    const config = testConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const own = await connectRedis(config, silent);
    assert.ok(own);
    const registry = createMetricsRegistry();
    const cache = createCache({
      redis: own,
      logger: silent,
      metrics: registry,
      keyPrefix: 'replay:',
    });
    try {
      await cache.set(cache.key('post', 1), 'v1', { ttlSeconds: 60, tags: ['post:1'] });
      await cache.set(cache.key('post', 2), 'v2', { ttlSeconds: 60 });
      const ended = once(own, 'end');
      own.disconnect();
      await ended;
      await cache.invalidateTag('post:1');
      await cache.delete(cache.key('post', 2));
      assert.ok((await metric(registry, 'cache_errors_total', { operation: 'invalidate' })) >= 1);
      // Stored with its expiry and tags before the JSON (for the near caches): the value ends it.
      assert.ok(
        (await raw.get(`${prefix}replay:v:post:1`))?.endsWith('\n"v1"'),
        'still there while away',
      );
      await own.connect();
      for (let i = 0; i < 50 && (await raw.exists(`${prefix}replay:v:post:1`)) === 1; i++)
        await sleep(20);
      assert.equal(await raw.exists(`${prefix}replay:v:post:1`, `${prefix}replay:v:post:2`), 0);
    } finally {
      cache.close();
      await closeRedis(own);
    }
  });
});

describe('cache, Redis stopping and coming back', redisOk, () => {
  let server: PrivateRedis;
  before(async () => {
    server = await PrivateRedis.create();
    await server.start();
  });
  after(() => server.stop());

  test('misses instead of errors while Redis is down, one warning, hits again once it is back', async () => {
    const config = testConfig({ REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: '200' });
    const logs = new LogCapture();
    const logger = createLogger({ level: 'info', destination: logs });
    const client = await connectRedis(config, silent);
    assert.ok(client);
    const registry = createMetricsRegistry();
    const cache = createCache({ redis: client, logger, metrics: registry });
    let computes = 0;
    const compute = () => {
      computes += 1;
      return { n: computes };
    };
    const key = cache.key('home');
    try {
      assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), { n: 1 });
      assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), { n: 1 });

      await server.stop();
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), { n: 2 + i });
      }
      assert.equal(await cache.get(key), undefined);
      await cache.set(key, 'x', { ttlSeconds: 60 });
      await cache.invalidateTag('anything');
      await cache.delete(key);
      assert.ok((await metric(registry, 'cache_errors_total', { operation: 'get' })) >= 5);
      assert.ok((await metric(registry, 'cache_errors_total', { operation: 'set' })) >= 5);
      const warnings = logs.lines.filter(
        (l) => l.msg === 'cache backend failing: serving misses, not caching',
      );
      assert.equal(warnings.length, 1, logs.text);

      await server.start();
      for (let i = 0; i < 100 && client.status !== 'ready'; i++) await sleep(50);
      assert.equal(client.status, 'ready');
      const before = computes;
      assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), { n: before + 1 });
      assert.deepEqual(await cache.getOrSet(key, compute, { ttlSeconds: 60 }), { n: before + 1 });
      assert.equal(computes, before + 1);
      assert.ok(
        logs.lines.some((l) => l.msg === 'cache backend answering again'),
        logs.text,
      );
    } finally {
      cache.close();
      await closeRedis(client);
    }
  });
});
