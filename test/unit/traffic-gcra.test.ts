import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  gcra,
  LOCAL_MIN_LIMIT,
  localAllowance,
  MAX_ALLOWANCE,
  MemoryRateStore,
} from '../../src/platform/traffic/index.ts';

describe('GCRA', () => {
  test('allows a burst of the limit, then one request per interval', () => {
    const period = 60_000;
    let tat: number | null = null;
    const t0 = 1_000_000;
    for (let i = 0; i < 5; i++) {
      const r = gcra(tat, t0, 5, period);
      assert.equal(r.decision.allowed, true, `request ${String(i + 1)}`);
      assert.equal(r.decision.remaining, 4 - i);
      tat = r.tat;
    }
    const refused = gcra(tat, t0, 5, period);
    assert.equal(refused.decision.allowed, false);
    assert.equal(refused.tat, null, 'a refusal spends nothing');
    assert.equal(refused.decision.retryAfterSeconds, 12); // one interval: 60 s / 5
    assert.equal(refused.decision.remaining, 0);
    assert.equal(refused.decision.resetSeconds, 60);
    // One interval later exactly one more is allowed: no window edge to double the rate.
    const later = gcra(tat, t0 + 12_000, 5, period);
    assert.equal(later.decision.allowed, true);
    assert.equal(gcra(later.tat, t0 + 12_000, 5, period).decision.allowed, false);
    // After a whole period idle the full burst is back.
    assert.equal(gcra(later.tat, t0 + 12_000 + period, 5, period).decision.remaining, 4);
  });

  test('the in-process store stays bounded with 100,000 distinct keys', async () => {
    const store = new MemoryRateStore(10_000);
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i++) {
      const d = store.take(
        `ip:10.${String(i >> 16)}.${String((i >> 8) & 255)}.${String(i & 255)}`,
        30,
        60_000,
      );
      assert.equal(d.allowed, true);
    }
    assert.equal(store.size, 10_000);
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew ${String(grown)} bytes`);
    // Recent keys are still counted after the churn.
    const recent = 'ip:10.1.134.159'; // i = 99,999
    for (let i = 0; i < 29; i++) store.take(recent, 30, 60_000);
    assert.equal(store.take(recent, 30, 60_000).allowed, false);
  });
});

test('the in-process store: a key whose TAT has passed counts as new, and is kept, not expired', async () => {
  const store = new MemoryRateStore(100);
  assert.equal(store.take('lone', 2, 100).allowed, true);
  assert.equal(store.take('lone', 2, 100).allowed, true);
  const refused = store.take('lone', 2, 100);
  assert.equal(refused.allowed, false);
  assert.ok(refused.retryAfterSeconds >= 1);
  await new Promise((resolve) => setTimeout(resolve, 120));
  const again = store.take('lone', 2, 100);
  assert.equal(again.allowed, true);
  assert.equal(again.remaining, 1, 'the whole quota back, one spent');
  assert.equal(store.size, 1);
});

test('the allowance of a key decided in process: 1% of its limit, at least 1, none under 100 or with a share of 0', () => {
  assert.equal(LOCAL_MIN_LIMIT, 100);
  assert.equal(localAllowance(99, 0.01), 0, "under 100: every decision Redis's");
  assert.equal(localAllowance(5, 0.5), 0);
  assert.equal(localAllowance(100, 0.01), 1);
  assert.equal(localAllowance(150, 0.01), 1);
  assert.equal(localAllowance(1_000, 0.01), 10);
  assert.equal(localAllowance(10_000, 0.01), 100);
  assert.equal(localAllowance(10_000, 0), 0, 'a share of 0 turns it off');
  assert.equal(localAllowance(10_000, 0.0000001), 1, 'at least one unit');
  assert.equal(MAX_ALLOWANCE, 1_000);
  assert.equal(localAllowance(100_000_000, 0.01), 1_000, 'at most 1,000 units');
});
