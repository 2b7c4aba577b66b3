import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { RedisBreaker, type RedisCircuitState } from '../../src/platform/redis/index.ts';

const timeout = () => new Error('Command timed out');
/** What ioredis rejects with when Redis answered with an error (redis-errors' ReplyError). */
function replyError(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

/** A breaker whose probe answers as `answer` says at the time it runs; probes are recorded. */
function breaker(options: { threshold?: number; firstProbeMs?: number; maxProbeMs?: number } = {}) {
  const changes: { state: RedisCircuitState; from: RedisCircuitState }[] = [];
  const probes: number[] = [];
  const control = { answer: false, inFlight: 0, maxInFlight: 0, probeMs: 0 };
  const b = new RedisBreaker({
    failureThreshold: options.threshold ?? 3,
    firstProbeMs: options.firstProbeMs ?? 10,
    maxProbeIntervalMs: options.maxProbeMs ?? 40,
    probe: async () => {
      probes.push(Date.now());
      control.inFlight += 1;
      control.maxInFlight = Math.max(control.maxInFlight, control.inFlight);
      try {
        if (control.probeMs > 0) await sleep(control.probeMs);
        if (!control.answer) throw timeout();
      } finally {
        control.inFlight -= 1;
      }
    },
    onChange: (state, from) => changes.push({ state, from }),
  });
  return { b, changes, probes, control };
}

describe('Redis circuit breaker', () => {
  test('opens after the threshold of consecutive timeouts; a success or a reply error in between resets the count', async () => {
    const { b, changes } = breaker({ threshold: 3 });
    try {
      assert.equal(b.closed, true);
      b.failed(timeout());
      b.failed(timeout());
      b.succeeded();
      b.failed(timeout());
      b.failed(timeout());
      b.failed(replyError('NOSCRIPT No matching script'));
      b.failed(timeout());
      await tick();
      assert.equal(b.closed, true, 'never three failures in a row');
      b.failed(timeout());
      b.failed(timeout());
      await tick();
      assert.equal(b.closed, false);
      assert.equal(b.state, 'open');
      assert.equal(b.opens, 1);
      assert.deepEqual(changes, [{ state: 'open', from: 'closed' }]);
      // Late failures of commands sent before it opened change nothing.
      b.failed(timeout());
      await tick();
      assert.equal(b.opens, 1);
    } finally {
      b.stop();
    }
  });

  test('while open: one probe at a time at growing intervals, re-opening on failure; the first answered probe closes it', async () => {
    const { b, changes, probes, control } = breaker({ firstProbeMs: 10, maxProbeMs: 40 });
    try {
      control.probeMs = 15;
      for (let i = 0; i < 3; i++) b.failed(timeout());
      await tick();
      // Open, or already probing when the turn took over 10 ms (a busy machine): not closed.
      assert.equal(b.closed, false);
      assert.equal(b.opens, 1);
      await sleep(300);
      assert.ok(probes.length >= 3, `probes ${String(probes.length)}`);
      assert.ok(probes.length <= 20, `probes ${String(probes.length)}: bounded by the backoff`);
      assert.equal(control.maxInFlight, 1, 'one probe at a time');
      assert.equal(b.closed, false);
      assert.equal(b.opens, 1, 'a failed probe re-opens without counting a new outage');
      const gaps = probes.slice(1).map((t, i) => t - (probes[i] as number));
      assert.ok(
        gaps.every((g) => g <= 40 + 15 + 150),
        `gaps ${gaps.join(',')}: at most the max interval`,
      );

      control.answer = true;
      const answeredAt = Date.now();
      for (let i = 0; i < 40 && !b.closed; i++) await sleep(5);
      assert.equal(b.closed, true);
      assert.ok(Date.now() - answeredAt <= 40 + 15 + 150, 'closed within one interval');
      assert.deepEqual(changes.at(-1), { state: 'closed', from: 'half-open' });
      assert.ok(changes.some((c) => c.state === 'half-open'));
      const count = probes.length;
      await sleep(100);
      assert.equal(probes.length, count, 'no probe once closed');

      // A second outage counts again.
      for (let i = 0; i < 3; i++) b.failed(timeout());
      await tick();
      assert.equal(b.opens, 2);
    } finally {
      b.stop();
    }
  });

  test('a reconnection closes an open circuit at once; onRecovered fires on close and on a reconnection while closed', async () => {
    const { b } = breaker({ firstProbeMs: 10_000, maxProbeMs: 10_000 });
    try {
      let recovered = 0;
      b.onRecovered(() => (recovered += 1));
      b.reconnected();
      assert.equal(recovered, 1, 'reconnected while closed');
      b.reconnected();
      assert.equal(recovered, 1, 'once per subscription');

      const unsubscribe = b.onRecovered(() => (recovered += 10));
      unsubscribe();
      b.onRecovered(() => (recovered += 1));
      for (let i = 0; i < 3; i++) b.failed(new Error('Connection is closed.'));
      await tick();
      assert.equal(b.state, 'open');
      b.reconnected();
      for (let i = 0; i < 10 && !b.closed; i++) await tick();
      assert.equal(b.closed, true, 'the ready check was a probe that succeeded');
      assert.equal(recovered, 2);
    } finally {
      b.stop();
    }
  });

  test('stopped: no probe is sent any more', async () => {
    // Probes at most 10 ms apart: running, it would send about 30 in the wait below. (The first
    // is jittered and may already have gone by the time it is stopped.)
    const { b, probes } = breaker({ firstProbeMs: 10, maxProbeMs: 10 });
    for (let i = 0; i < 3; i++) b.failed(timeout());
    await tick();
    assert.equal(b.closed, false);
    b.stop();
    const sent = probes.length;
    await sleep(300);
    assert.equal(probes.length, sent);
  });
});
