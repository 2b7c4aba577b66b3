import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyedBreakers } from '../../src/platform/resilience/index.ts';

describe('keyed breakers (one per outbound host)', () => {
  const make = (maxKeys?: number) =>
    createKeyedBreakers<{ ok: boolean }>({
      policy: { failureThreshold: 2, halfOpenAfterMs: 50 },
      isFailure: (result) => !result.ok,
      ...(maxKeys === undefined ? {} : { maxKeys }),
    });

  test('a key opens after its failures, others stay closed; open calls are not run', async () => {
    const breakers = make();
    let runs = 0;
    const fail = () => {
      runs += 1;
      return Promise.resolve({ ok: false });
    };
    assert.deepEqual(await breakers.run('a', fail), { ran: true, value: { ok: false } });
    assert.equal(breakers.state('a'), 'closed');
    await breakers.run('a', fail);
    assert.equal(breakers.state('a'), 'open');
    const refused = await breakers.run('a', fail);
    assert.equal(refused.ran, false);
    assert.ok(!refused.ran && refused.openForMs > 0 && refused.openForMs <= 50);
    assert.equal(runs, 2);
    assert.equal(breakers.state('b'), 'closed');
    assert.deepEqual(await breakers.run('b', () => Promise.resolve({ ok: true })), {
      ran: true,
      value: { ok: true },
    });
  });

  test('after the open period one trial runs; a success closes the circuit', async () => {
    const breakers = make();
    const fail = () => Promise.resolve({ ok: false });
    await breakers.run('h', fail);
    await breakers.run('h', fail);
    await sleep(60);
    assert.equal(breakers.state('h'), 'half-open');
    assert.deepEqual(await breakers.run('h', () => Promise.resolve({ ok: true })), {
      ran: true,
      value: { ok: true },
    });
    assert.equal(breakers.state('h'), 'closed');
  });

  test('a thrown error counts as a failure and is rethrown', async () => {
    const breakers = make();
    const boom = () => Promise.reject(new Error('boom'));
    await assert.rejects(breakers.run('x', boom), /boom/);
    await assert.rejects(breakers.run('x', boom), /boom/);
    assert.equal((await breakers.run('x', boom)).ran, false);
  });

  test('memory is bounded: closed breakers are forgotten first, least recently used first', async () => {
    const breakers = make(3);
    const ok = () => Promise.resolve({ ok: true });
    const fail = () => Promise.resolve({ ok: false });
    await breakers.run('open', fail);
    await breakers.run('open', fail);
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) await breakers.run(key, ok);
    assert.equal(breakers.size(), 3);
    assert.equal(breakers.state('open'), 'open');
  });
});
