// Realtime across processes through Redis: two apps (two platforms, two hubs, one database, one
// Redis prefix) in this process stand for two server processes. What one publishes reaches the
// other's subscribers, offsets and history are shared, a revocation closes sockets everywhere.
// test/e2e/realtime.test.ts does the same with three real server processes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineModule } from '../../src/platform/modules/index.ts';
import { defineChannel, realtime } from '../../src/platform/realtime/index.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { bearer, createUser, signIn } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import {
  closedWithin,
  startRealtimeHarness,
  TestSocket,
  type RealtimeHarness,
} from '../helpers/realtime.ts';
import { needsRedis } from '../helpers/redis.ts';

const fixture = defineModule({
  name: 'rt-redis-fixture',
  description: 'Public rooms.',
  dependsOn: ['realtime'],
  channels: [defineChannel({ name: 'rooms.room:*', description: 'Public rooms.', public: true })],
});

const skip = await needsRedis();
let a: RealtimeHarness;
let b: RealtimeHarness;
const sockets: TestSocket[] = [];

async function open(h: RealtimeHarness, token?: string): Promise<TestSocket> {
  const s = await TestSocket.open(h.base);
  sockets.push(s);
  await s.auth(token);
  return s;
}

describe('realtime over Redis', skip, () => {
  before(async () => {
    const prefix = `gw-rtr-${process.pid}-${Date.now()}:`;
    // One signing key for both, as a deployment has.
    const settings = { REALTIME_HISTORY_SIZE: '10', AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY };
    a = await startRealtimeHarness(settings, [fixture], { redis: prefix });
    // The second "process" serves only: events are dispatched by the first, as by a worker.
    b = await startRealtimeHarness(settings, [fixture], {
      redis: prefix,
      database: a.tdb,
      work: false,
    });
    assert.ok(realtime(a.platform).hasRedis && realtime(b.platform).hasRedis);
  });

  after(async () => {
    for (const s of sockets) s.ws.terminate();
    await b?.close();
    await a?.close();
  });

  test('a message published on one process reaches the subscribers of both, in order', async () => {
    const onA = await open(a);
    const onB = await open(b);
    await onA.subscribe('rooms.room:1');
    await onB.subscribe('rooms.room:1');
    const offsets: number[] = [];
    for (let i = 0; i < 20; i++)
      offsets.push(
        await realtime(i % 2 ? a.platform : b.platform).publish('rooms.room:1', 'rooms.said', {
          i,
        }),
      );
    assert.deepEqual(
      offsets,
      [...offsets].sort((x, y) => x - y),
      'one counter for both processes',
    );
    for (const s of [onA, onB]) {
      await eventually('20 events', () => Promise.resolve(s.events('rooms.room:1').length === 20));
      assert.deepEqual(
        s.events('rooms.room:1').map((e) => e.offset),
        offsets,
      );
      assert.deepEqual(
        s.events('rooms.room:1').map((e) => (e.data as { i: number }).i),
        [...Array(20).keys()],
      );
    }
  });

  test('recovery on one process from what was published on the other', async () => {
    const first = await realtime(a.platform).publish('rooms.room:2', 'rooms.said', { n: 0 });
    for (let n = 1; n <= 3; n++)
      await realtime(a.platform).publish('rooms.room:2', 'rooms.said', { n });
    const s = await open(b);
    await s.subscribe('rooms.room:2', first);
    await eventually('3 missed events', () =>
      Promise.resolve(s.events('rooms.room:2').length === 3),
    );
    assert.deepEqual(
      s.events('rooms.room:2').map((e) => (e.data as { n: number }).n),
      [1, 2, 3],
    );
    // Past the history (10 kept): a reset.
    for (let n = 4; n <= 20; n++)
      await realtime(a.platform).publish('rooms.room:2', 'rooms.said', { n });
    const late = await open(a);
    await late.subscribe('rooms.room:2', first);
    await late.next('reset');
  });

  test('a session revoked through one process closes its socket on the other', async () => {
    const user = await createUser(a);
    const tokens = await signIn(a.app, user);
    const s = await open(b, tokens.accessToken);
    const res = await a.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(tokens.accessToken),
    });
    assert.ok(res.statusCode < 300, res.body);
    const { code, reason } = await closedWithin(s, 10_000);
    assert.equal(code, 1008);
    assert.equal(reason, 'session revoked');
  });
});
