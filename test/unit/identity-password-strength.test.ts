import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  PasswordStrengthPool,
  StrengthUnavailableError,
} from '../../src/platform/identity/password-strength.ts';

/** 256 random printable characters: zxcvbn takes seconds on these (it reads at most 256). */
const slow = () =>
  Array.from({ length: 256 }, () => String.fromCharCode(33 + randomInt(94))).join('');

describe('password strength pool (zxcvbn in a worker thread)', () => {
  test('scores like zxcvbn, with the context words', async () => {
    const pool = new PasswordStrengthPool({
      size: 1,
      runBudgetMs: 10_000,
      queueBudgetMs: 10_000,
      maxQueue: 8,
    });
    try {
      const [weak, own, strong] = await Promise.all([
        pool.score('password123', []),
        pool.score('charlie_brown2024', ['charlie_brown', 'charlie']),
        pool.score('violet-Harbor-83-quantum-Mosaic', []),
      ]);
      assert.ok(weak.score <= 1, `weak scored ${weak.score}`);
      assert.ok(own.score < 3, `the user's own name scored ${own.score}`);
      assert.equal(strong.score, 4);
    } finally {
      await pool.close();
    }
  });

  test('regression (event loop blocked by zxcvbn): a password over the run budget is refused and its worker replaced; the next one is scored', async () => {
    const pool = new PasswordStrengthPool({
      size: 1,
      runBudgetMs: 300,
      queueBudgetMs: 20_000,
      maxQueue: 8,
    });
    try {
      const started = performance.now();
      const [over, next] = await Promise.allSettled([
        pool.score(slow(), []),
        pool.score('password123', []),
      ]);
      assert.equal(over.status, 'rejected');
      assert.ok(over.reason instanceof StrengthUnavailableError, String(over.reason));
      assert.equal(next.status, 'fulfilled', String((next as PromiseRejectedResult).reason));
      // Budget, plus one worker start for the replacement (dictionaries built again).
      assert.ok(performance.now() - started < 15_000);
    } finally {
      await pool.close();
    }
  });

  test('a full queue refuses at once, and a password that waits past the queue budget is refused', async () => {
    const full = new PasswordStrengthPool({
      size: 1,
      runBudgetMs: 10_000,
      queueBudgetMs: 10_000,
      maxQueue: 1,
    });
    const waiting = full.score('first-password', []);
    await assert.rejects(full.score('second-password', []), StrengthUnavailableError);
    const refused = assert.rejects(waiting, StrengthUnavailableError);
    await full.close();
    await refused;

    const slowQueue = new PasswordStrengthPool({
      size: 1,
      runBudgetMs: 10_000,
      queueBudgetMs: 1,
      maxQueue: 8,
    });
    // The worker takes far longer than 1 ms to start: the password is refused while waiting.
    await assert.rejects(slowQueue.score('first-password', []), StrengthUnavailableError);
    await slowQueue.close();
  });
});
