/**
 * Chaos: Redis stopped, and Redis frozen with SIGSTOP (a private redis-server, never the shared one).
 *
 * Promise, with Redis stopped: readiness reports `redis` down within 5 s; fail-open rate limits
 * let API requests through (a signed-in request answers 200, an anonymous one its usual 401);
 * fail-closed ones (sign-in) answer 503 `RATE_LIMIT_UNAVAILABLE`; every answer within 1 s, p95
 * under 100 ms; readiness recovers within 10 s of Redis coming back.
 * Promise, with Redis frozen: once the Redis circuit opens (3 timed-out commands), the same
 * policies apply at once: signed-in requests answer 200 with p95 under 100 ms (no 500 ms timeout
 * per command), sign-in 503 `RATE_LIMIT_UNAVAILABLE`, readiness reports `redis` down; after the
 * thaw, readiness recovers within 10 s.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { testConfig } from '../helpers/app.ts';
import { startPrivateRedis, startServer, waitFor } from '../helpers/chaos.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createUser } from '../helpers/identity.ts';
import { quantile, send, type Outcome } from '../helpers/load.ts';
import { get } from '../helpers/process.ts';

const P95_MS = 100;
const ANSWER_WITHIN_MS = 1_000;

const redisDown = async (port: number) => {
  const ready = await get(port, '/health/ready', 2_000);
  const checks = (JSON.parse(ready.body) as { checks?: { redis?: { status?: string } } }).checks;
  return ready.status === 503 && checks?.redis?.status === 'down';
};
const ready = async (port: number) => (await get(port, '/health/ready', 2_000)).status === 200;

describe('chaos: Redis stopped and frozen', { timeout: 120_000 }, () => {
  test('fail-open and fail-closed policies apply, readiness reports Redis, answers stay fast', async (t) => {
    const redis = await startPrivateRedis(t);
    const tdb = await createTestDatabase();
    t.after(() => tdb.drop());
    const user = await createUser({ tdb, config: testConfig() });
    const server = await startServer(t, {
      role: 'serve',
      env: { DATABASE_URL: tdb.url, REDIS_URL: redis.url },
    });
    const signIn = () =>
      send(false, server.port, '/api/v1/auth/login', {
        method: 'POST',
        body: JSON.stringify({ login: user.email, password: user.password }),
      });
    const first = await signIn();
    assert.equal(first.status, 200, first.body);
    const token = (JSON.parse(first.body ?? '{}') as { accessToken: string }).accessToken;
    const me = () =>
      send(false, server.port, '/api/v1/users/me', {
        headers: { authorization: `Bearer ${token}` },
      });
    assert.equal((await me()).status, 200);

    /** `count` signed-in requests, one after another; their outcomes. */
    const signedIn = async (count: number) => {
      const outcomes: Outcome[] = [];
      for (let i = 0; i < count; i++) outcomes.push(await me());
      return outcomes;
    };
    const figures = (outcomes: Outcome[]) => ({
      statuses: [...new Set(outcomes.map((o) => o.error ?? o.status))],
      p95: Math.round(
        quantile(
          outcomes.map((o) => o.ms),
          0.95,
        ),
      ),
      max: Math.round(Math.max(...outcomes.map((o) => o.ms))),
    });
    const closedPolicy = async () => {
      const login = await signIn();
      assert.equal(login.status, 503, login.body);
      assert.equal(
        (JSON.parse(login.body ?? '{}') as { code?: string }).code,
        'RATE_LIMIT_UNAVAILABLE',
      );
      assert.ok(
        login.ms < ANSWER_WITHIN_MS,
        `sign-in refused within ${String(ANSWER_WITHIN_MS)} ms (${login.ms.toFixed(0)})`,
      );
      return Math.round(login.ms);
    };

    // Stopped.
    await redis.stop();
    const downAfter = await waitFor(
      'readiness reports redis down',
      () => redisDown(server.port),
      5_000,
    );
    const stopped = figures(await signedIn(40));
    const anonymous = await send(false, server.port, '/api/v1/users/me');
    assert.equal(anonymous.status, 401, 'fail-open: the anonymous request reaches authentication');
    const stoppedLogin = await closedPolicy();
    assert.deepEqual(stopped.statuses, [200], 'fail-open: signed-in requests are served');
    assert.ok(
      stopped.max < ANSWER_WITHIN_MS,
      `stopped: every answer within ${String(ANSWER_WITHIN_MS)} ms: ${JSON.stringify(stopped)}`,
    );
    assert.ok(
      stopped.p95 < P95_MS,
      `stopped: p95 under ${String(P95_MS)} ms: ${JSON.stringify(stopped)}`,
    );
    await redis.start();
    const upAfter = await waitFor(
      'readiness recovers after the restart',
      () => ready(server.port),
      10_000,
    );

    // Frozen: connections stay open, nothing answers.
    redis.freeze();
    t.after(() => redis.thaw());
    const opening = figures(await signedIn(5)); // the breaker needs a few timed-out commands
    await sleep(500);
    const frozen = figures(await signedIn(40));
    const frozenDown = await waitFor(
      'readiness reports redis down while frozen',
      () => redisDown(server.port),
      5_000,
    );
    const frozenLogin = await closedPolicy();
    t.diagnostic(
      `stopped: readiness down after ${String(downAfter)} ms, signed-in ${JSON.stringify(stopped)}, sign-in refused in ${String(stoppedLogin)} ms, readiness up ${String(upAfter)} ms after restart; frozen: first requests ${JSON.stringify(opening)}, then ${JSON.stringify(frozen)}, readiness down after ${String(frozenDown)} ms, sign-in refused in ${String(frozenLogin)} ms`,
    );
    assert.deepEqual(frozen.statuses, [200], 'fail-open while frozen');
    assert.ok(
      frozen.p95 < P95_MS,
      `frozen, circuit open: p95 under ${String(P95_MS)} ms: ${JSON.stringify(frozen)}`,
    );
    redis.thaw();
    const thawedAfter = await waitFor(
      'readiness recovers after the thaw',
      () => ready(server.port),
      10_000,
    );
    t.diagnostic(`readiness up ${String(thawedAfter)} ms after the thaw`);
  });
});
