// Realtime with three real server processes (`all`: serve and dispatch) on one database and one
// Redis: a command on one process is fanned out to subscribers on the other two, a session
// revoked through one closes the socket held by another, SIGTERM gives its sockets 1001.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { authorsApp } from '../../src/apps/authors/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { testConfig } from '../helpers/app.ts';
import { startServer, type ServerProcess } from '../helpers/chaos.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser, grantRoles } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { closedWithin, TestSocket } from '../helpers/realtime.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

const preload = fileURLToPath(new URL('../helpers/realtime.ts', import.meta.url));
const skip = await needsRedis();

describe('realtime across three server processes', { ...skip, timeout: 180_000 }, () => {
  let tdb: TestDatabase;
  const sockets: TestSocket[] = [];
  before(async () => {
    tdb = await createTestDatabase({ migrations: allMigrations([authorsApp]) });
  });
  after(async () => {
    for (const s of sockets) s.ws.terminate();
    await tdb?.drop();
  });

  test('fan-out, revocation and shutdown across processes', async (t) => {
    const env = {
      DATABASE_URL: tdb.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `gw-e2e-rt-${process.pid}-${Date.now()}:`,
      RATE_LIMIT_ENABLED: 'false',
      GW_E2E_AUTHORS_APP: '1',
      // Only the app under test (whatever else src/apps/index.ts lists has no tables here).
      APPS: 'authors',
      EVENTS_POLL_INTERVAL_MS: '200',
      // One deployment: one public address, so one token issuer (it defaults to the address).
      PUBLIC_URL: 'http://groundwork.test',
    };
    const servers: ServerProcess[] = [];
    for (let i = 0; i < 3; i++)
      servers.push(
        await startServer(t, { role: 'all', preload: [preload], env, startTimeoutMs: 60_000 }),
      );
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const base = (s: ServerProcess) => `http://127.0.0.1:${String(s.port)}`;
    const h = { tdb, config: testConfig() };
    const user = await createUser(h);
    await grantRoles(h, user.id, 'moderator');
    const login = await fetch(`${base(a)}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: user.email, password: user.password }),
    });
    assert.equal(login.status, 200, await login.clone().text());
    const { accessToken } = (await login.json()) as { accessToken: string };

    const open = async (s: ServerProcess) => {
      const socket = await TestSocket.open(base(s));
      sockets.push(socket);
      await socket.auth(accessToken);
      return socket;
    };
    const onA = await open(a);
    assert.equal(onA.frames[0]?.type, 'ready');
    const onB = await open(b);
    const onC = await open(c);
    for (const s of [onB, onC]) assert.equal((await s.subscribe('authors')).type, 'subscribed');

    // A command on A; its event, dispatched after commit by whichever process, reaches B and C.
    const made = await onA.command('authors.create', { name: 'Across processes' });
    assert.equal(made.type, 'result', JSON.stringify(made));
    const id = (made.payload as { id: string }).id;
    for (const s of [onB, onC]) {
      const event = await s.next(
        (f) =>
          f.type === 'event' &&
          f.event === 'authors.author.created' &&
          (f.data as { author: { id: string } }).author.id === id,
        15_000,
      );
      assert.equal(event.channel, 'authors');
    }
    // Every process sees one offset per event: the same on B and C.
    await eventually('the same offsets', () =>
      Promise.resolve(
        JSON.stringify(onB.events('authors').map((e) => e.offset)) ===
          JSON.stringify(onC.events('authors').map((e) => e.offset)),
      ),
    );

    // The session signed out through C: the socket on A is closed at once (1008).
    const out = await fetch(`${base(c)}/api/v1/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    assert.ok(out.status < 300, String(out.status));
    const closed = await closedWithin(onA, 15_000);
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'session revoked');

    // SIGTERM on B: its sockets get 1001, and B exits cleanly.
    const anonymous = await TestSocket.open(base(b));
    sockets.push(anonymous);
    await anonymous.auth();
    process.kill(b.pid, 'SIGTERM');
    assert.equal((await closedWithin(anonymous, 15_000)).code, 1001);
    const exit = await b.exited;
    assert.equal(exit.code, 0, b.stdout().slice(-2000));
    // No token in any process's logs.
    for (const s of servers) assert.ok(!s.stdout().includes(accessToken), 'token not logged');
  });
});
