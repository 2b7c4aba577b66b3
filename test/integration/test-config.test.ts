/**
 * The test configuration sheds no load: a saturated shared machine stalls a test process's event
 * loop for seconds, and contract tests must not turn into 503 OVERLOADED (they did, under a
 * second copy of the suite). The shedding itself is tested with it turned on
 * (http-security.test.ts), and the servers tests start inherit it off from the global setup.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildTestApp, testConfig } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

describe('test configuration: no load shedding unless a test asks for it', () => {
  test('regression: an event loop blocked past MAX_EVENT_LOOP_DELAY_MS’s default still answers 200, not 503', async (t) => {
    assert.equal(testConfig().http.maxEventLoopDelayMs, 0);
    assert.equal(testConfig({ MAX_EVENT_LOOP_DELAY_MS: '250' }).http.maxEventLoopDelayMs, 250);
    assert.equal(process.env.MAX_EVENT_LOOP_DELAY_MS, '0', 'what started servers inherit');

    const { app } = await buildTestApp(
      { PRESSURE_SAMPLE_INTERVAL_MS: '50' },
      { apps: [testkitApp] },
    );
    t.after(() => app.close());
    // Well past the default threshold (1 s), then long enough for a sampler to have seen it.
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      /* busy */
    }
    await sleep(120);
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      payload: { name: 'Ada', email: 'ada@example.com' },
    });
    assert.equal(res.statusCode, 200, res.body);
  });
});
