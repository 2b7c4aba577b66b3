import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compareTimings,
  median,
  medianDifferenceInterval,
  probabilityOfSuperiority,
  seededRandom,
} from '../helpers/timing.ts';

/**
 * Answer times as a busy machine gives them: a base, log-normal jitter, and now and then a long
 * stall (GC, another process on the core) of up to 40 ms.
 */
function answerTimes(n: number, seed: number, baseMs: number): number[] {
  const random = seededRandom(seed);
  const normal = () => {
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  return Array.from({ length: n }, () => {
    const jitter = Math.exp(0.35 * normal()); // a median of 1 ms, a long right tail
    const stall = random() < 0.05 ? random() * 40 : 0;
    return baseMs + jitter + stall;
  });
}

describe('timing comparison (the statistics of the timing side-channel tests)', () => {
  test('P(A > B): 1 when A is always slower, 0.5 for the same values, ties count half', () => {
    assert.equal(probabilityOfSuperiority([5, 6, 7], [1, 2, 3]), 1);
    assert.equal(probabilityOfSuperiority([1, 2, 3], [5, 6, 7]), 0);
    assert.equal(probabilityOfSuperiority([1, 2, 3], [1, 2, 3]), 0.5);
    assert.equal(probabilityOfSuperiority([2], [2, 2]), 0.5);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });

  test('two paths a few ms apart (the defect: 3 ms on about 5) are found to differ', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const a = answerTimes(250, seed, 7);
      const b = answerTimes(250, seed + 100, 4);
      const c = compareTimings(a, b);
      assert.equal(c.differ, true, JSON.stringify(c));
      assert.ok(c.superiority > 0.9, String(c.superiority));
      assert.ok(c.interval[0] > 2 && c.interval[1] < 4, JSON.stringify(c.interval));
    }
  });

  test('a gap of 1 ms under the same noise is found too; the other way round as well', () => {
    const a = answerTimes(250, 11, 5);
    const b = answerTimes(250, 12, 4);
    assert.equal(compareTimings(a, b).differ, true);
    assert.equal(compareTimings(b, a).differ, true);
  });

  test('two samples of one distribution, stalls and all, are alike (no false alarm over 20 seeds)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = compareTimings(answerTimes(250, seed, 5), answerTimes(250, seed + 1_000, 5));
      assert.equal(c.differ, false, `seed ${String(seed)}: ${JSON.stringify(c)}`);
    }
  });

  test('a gap surely under MIN_GAP_MS (0.2 ms) is not a difference, however many tries', () => {
    const a = answerTimes(250, 31, 4.2);
    const b = answerTimes(250, 32, 4);
    assert.equal(compareTimings(a, b).differ, false);
  });

  test('the bootstrap interval of the median difference covers the true shift', () => {
    const a = answerTimes(400, 21, 6);
    const b = answerTimes(400, 22, 4);
    const [low, high] = medianDifferenceInterval(a, b);
    assert.ok(low < 2 && 2 < high, `[${String(low)}, ${String(high)}]`);
  });
});
