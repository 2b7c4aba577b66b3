/**
 * Many processes as one: three `serve` and two `worker` processes on one PostgreSQL database
 * (made for this file) and one Redis (the shared one, under a key prefix of its own), behind
 * Debian's nginx with deploy/nginx/ (test/helpers/nginx.ts). Promises:
 *
 * - a rate limit holds across processes: through nginx, from one client, at most the limit
 *   (plus what the GCRA refills while the burst runs) is allowed in all, whichever process answers;
 * - a sign-out on one process is effective on the others at their next request;
 * - every job runs exactly once (enqueued through several serve processes, run by the workers);
 * - a cache invalidation made on one process reaches every process;
 * - a realtime message published by a worker reaches subscribers on every serve process;
 * - a rolling restart (SIGTERM to each serve process in turn, restarted on its port) under a
 *   constant load of GETs and POSTs through nginx fails no request.
 *
 * A chaos file (npm run test:chaos, one file at a time): it runs six processes and a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { testConfig } from '../helpers/app.ts';
import { startServer, waitFor, type ServerProcess } from '../helpers/chaos.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser } from '../helpers/identity.ts';
import { quantile, tally } from '../helpers/load.ts';
import {
  call,
  CLIENT_IP,
  httpsLoad,
  needsNginx,
  openSocket,
  startNginx,
  type ProxySocket,
} from '../helpers/nginx.ts';
import { get } from '../helpers/process.ts';
import { needsRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

const preload = fileURLToPath(new URL('../fixtures/cluster-app.ts', import.meta.url));
const nginxSkip = needsNginx();
const skip = nginxSkip.skip !== undefined ? nginxSkip : await needsRedis();
/** Anonymous API requests per minute per IP: under 100, so Redis decides each one (no leases). */
const LIMIT = 20;

describe('many processes as one, behind nginx', { ...skip, timeout: 420_000 }, () => {
  let tdb: TestDatabase;
  const sockets: ProxySocket[] = [];
  before(async () => {
    tdb = await createTestDatabase();
    await tdb.database.pool.query(
      'create table cluster_runs (tag text not null, job_id uuid not null, pid int not null)',
    );
    await tdb.database.pool.query(
      'create table cluster_values (name text primary key, value text not null)',
    );
  });
  after(async () => {
    for (const s of sockets) s.ws.terminate();
    await tdb?.drop();
  });

  test('three serve and two worker processes', async (t) => {
    const began = performance.now();
    const env = {
      DATABASE_URL: tdb.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `gw-cluster-${String(process.pid)}-${String(Date.now())}:`,
      APPS: 'cluster-fixture',
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_ANONYMOUS_PER_MIN: String(LIMIT),
      // One deployment: one public address, so one token issuer.
      PUBLIC_URL: 'https://groundwork.test',
      // Six processes on one database: small pools.
      DATABASE_POOL_MAX: '4',
      JOBS_POOL_MAX: '2',
      EVENTS_POLL_INTERVAL_MS: '200',
      SHUTDOWN_DRAIN_DELAY_MS: '500',
      SHUTDOWN_GRACE_MS: '5000',
    };
    const start = (role: 'serve' | 'worker', port?: number) =>
      startServer(t, {
        role,
        preload: [preload],
        env,
        startTimeoutMs: 90_000,
        ...(port === undefined ? {} : { port }),
      });
    // All at once, as a deployment starts them (pg-boss makes its schema under a lock).
    const all = await Promise.all([
      start('serve'),
      start('serve'),
      start('serve'),
      start('worker'),
      start('worker'),
    ]);
    const serves: ServerProcess[] = all.slice(0, 3);
    const workers = all.slice(3);
    const nginx = await startNginx(t, {
      upstreams: serves.map((s) => `127.0.0.1:${String(s.port)}`),
    });
    const started = performance.now() - began;
    t.diagnostic(`5 processes and nginx started in ${started.toFixed(0)} ms`);
    const direct = (s: ServerProcess, path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${String(s.port)}${path}`, init);

    await t.test('a sign-out on one process is effective on the others at once', async () => {
      const user = await createUser({ tdb, config: testConfig() });
      const login = await call(nginx, '/api/v1/auth/login', {
        method: 'POST',
        body: JSON.stringify({ login: user.email, password: user.password }),
      });
      assert.equal(login.status, 200, login.body);
      const { accessToken } = login.json<{ accessToken: string }>();
      const auth = { headers: { authorization: `Bearer ${accessToken}` } };
      // Every process has checked (and cached) the session.
      for (const s of serves)
        assert.equal((await direct(s, '/api/v1/auth/sessions', auth)).status, 200);
      const [a, b, c] = serves as [ServerProcess, ServerProcess, ServerProcess];
      const out = await direct(a, '/api/v1/auth/logout', { method: 'POST', ...auth });
      assert.ok(out.status < 300, String(out.status));
      for (const s of [b, c]) {
        const next = await direct(s, '/api/v1/auth/sessions', auth);
        assert.equal(next.status, 401, `pid ${String(s.pid)}: ${await next.text()}`);
      }
      const through = await call(nginx, '/api/v1/auth/sessions', auth);
      assert.equal(through.status, 401);
    });

    await t.test('every job runs exactly once', async () => {
      const perCall = 25;
      const calls = 4;
      for (let i = 0; i < calls; i++) {
        const sent = await call(nginx, '/api/v1/cluster/jobs', {
          method: 'POST',
          body: JSON.stringify({ tag: 'once', n: perCall }),
        });
        assert.equal(sent.status, 200, sent.body);
        assert.equal(sent.json<{ created: number }>().created, perCall);
      }
      const total = perCall * calls;
      let lastCount = 0;
      const count = async () =>
        (lastCount = Number(
          (
            await tdb.database.pool.query<{ n: string }>(
              "select count(*) as n from cluster_runs where tag = 'once'",
            )
          ).rows[0]?.n,
        ));
      const ms = await waitFor(
        'every job ran',
        async () => (await count()) >= total,
        60_000,
        200,
      ).catch((error: unknown) => {
        const logs = workers.map((w) => w.stdout().slice(-3000)).join('\n---\n');
        throw new Error(`${String(error)}; ran ${String(lastCount)}\n${logs}`);
      });
      await sleep(1_500); // a duplicate would show up now
      const { rows } = await tdb.database.pool.query<{ runs: string; jobs: string; pid: number }>(
        "select count(*) as runs, count(distinct job_id) as jobs, pid from cluster_runs where tag = 'once' group by pid",
      );
      const runs = rows.reduce((n, r) => n + Number(r.runs), 0);
      const jobs = rows.reduce((n, r) => n + Number(r.jobs), 0);
      t.diagnostic(
        `${String(total)} jobs ran in ${String(ms)} ms; by worker: ${rows.map((r) => `${String(r.pid)}:${r.runs}`).join(' ')}`,
      );
      assert.equal(runs, total, 'no job ran twice');
      assert.equal(jobs, total, 'no job was lost');
      const workerPids = new Set(workers.map((w) => w.pid));
      assert.ok(
        rows.every((r) => workerPids.has(r.pid)),
        'run by the workers only',
      );
    });

    await t.test('a cache invalidation on one process reaches every process', async () => {
      await tdb.database.pool.query(
        "insert into cluster_values (name, value) values ('greeting', 'v1')",
      );
      type Cached = { value: string; computedBy: number; servedBy: number };
      const read = async (s: ServerProcess) =>
        (await (await direct(s, '/api/v1/cluster/cache/greeting')).json()) as Cached;
      const [a, b, c] = serves as [ServerProcess, ServerProcess, ServerProcess];
      const warm = await read(a);
      assert.deepEqual(warm, { value: 'v1', computedBy: a.pid, servedBy: a.pid });
      for (const s of [b, c])
        assert.deepEqual(await read(s), { value: 'v1', computedBy: a.pid, servedBy: s.pid });
      // Changed underneath: every process still serves the cached value...
      await tdb.database.pool.query(
        "update cluster_values set value = 'v2' where name = 'greeting'",
      );
      for (const s of serves) assert.equal((await read(s)).value, 'v1');
      // ...until one process invalidates it.
      const inv = await direct(c, '/api/v1/cluster/cache/greeting/invalidate', { method: 'POST' });
      assert.equal(inv.status, 200);
      for (const s of serves) assert.equal((await read(s)).value, 'v2', `pid ${String(s.pid)}`);
    });

    await t.test('a realtime message reaches subscribers on every process', async () => {
      // Sockets through nginx (least_conn spreads them) until each serve process holds one,
      // read from each process's own realtime_connections gauge.
      const held = async (s: ServerProcess) => {
        const text = (await get(s.port, '/metrics')).body;
        let open = 0;
        for (const m of text.matchAll(/^realtime_connections\{[^}]*\} (\d+)/gm))
          open += Number(m[1]);
        return open;
      };
      for (let i = 0; i < 12; i++) {
        const socket = await openSocket(nginx);
        sockets.push(socket);
        socket.send({ type: 'auth' });
        await socket.next('ready');
        assert.equal((await subscribe(socket, 'cluster.news')).type, 'subscribed');
        const counts = await Promise.all(serves.map(held));
        t.diagnostic(`sockets per serve process after ${String(i + 1)}: ${counts.join(', ')}`);
        if (counts.every((n) => n > 0)) break;
      }
      const counts = await Promise.all(serves.map(held));
      t.diagnostic(`sockets per serve process: ${counts.join(', ')}`);
      assert.ok(
        counts.every((n) => n > 0),
        'a subscriber on every process',
      );
      const sent = await call(nginx, '/api/v1/cluster/announce', {
        method: 'POST',
        body: JSON.stringify({ text: 'hello, every process' }),
      });
      assert.equal(sent.status, 200, sent.body);
      const workerPids = new Set(workers.map((w) => w.pid));
      for (const socket of sockets) {
        const event = await socket
          .next((f) => f.type === 'event' && f.event === 'cluster.announced', 15_000)
          .catch((error: unknown) => {
            const logs = [...workers, ...serves]
              .flatMap((w) => w.logs())
              .filter(
                (l) =>
                  JSON.stringify(l).includes('announce') ||
                  l.level === 'error' ||
                  l.level === 'warn',
              );
            throw new Error(`${String(error)}\n${JSON.stringify(logs).slice(0, 5000)}`);
          });
        const data = event.data as { text: string; pid: number };
        assert.equal(data.text, 'hello, every process');
        assert.ok(workerPids.has(data.pid), 'published by a worker');
      }
    });

    await t.test('a rate limit holds across processes', async () => {
      const t0 = performance.now();
      const replies = await Promise.all(
        Array.from({ length: 3 * LIMIT }, () =>
          call(nginx, '/api/v1/cluster/whoami', { localAddress: '127.0.0.20' }),
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      const allowed = replies.filter((r) => r.status === 200);
      const refused = replies.filter((r) => r.status === 429);
      assert.equal(allowed.length + refused.length, replies.length);
      // GCRA: a burst of LIMIT, then one more every 60/LIMIT s while the requests run.
      const margin = Math.ceil((seconds * LIMIT) / 60);
      t.diagnostic(
        `allowed ${String(allowed.length)} of ${String(replies.length)} in ${seconds.toFixed(1)} s (limit ${String(LIMIT)}, refill margin ${String(margin)})`,
      );
      assert.ok(allowed.length >= LIMIT, 'the burst is allowed');
      assert.ok(allowed.length <= LIMIT + margin, 'never more than the limit in all');
      const pids = new Set(allowed.map((r) => r.json<{ pid: number }>().pid));
      assert.ok(pids.size >= 2, `answered by several processes (${[...pids].join(',')})`);
      for (const r of allowed) assert.equal(r.json<{ ip: string }>().ip, '127.0.0.20');
      assert.equal(refused[0]?.json<{ code: string }>().code, 'RATE_LIMITED');
      // Keyed by the client's address: another client is not limited.
      const other = await call(nginx, '/api/v1/cluster/whoami');
      assert.equal(other.status, 200, other.body);
      assert.equal(other.json<{ ip: string }>().ip, CLIENT_IP);
    });

    await t.test('a rolling restart under load through nginx fails no request', async () => {
      await tdb.database.pool.query(
        "insert into cluster_values (name, value) values ('load', 'steady')",
      );
      const load = httpsLoad(nginx, {
        concurrency: 6,
        path: (n) => `/api/v1/cluster/cache/load?n=${String(n)}`,
        pauseMs: 2,
      });
      // And writes: nginx passes a POST on only when it never reached a server, so none may fail.
      const writes = httpsLoad(nginx, {
        concurrency: 2,
        method: 'POST',
        path: () => '/api/v1/cluster/cache/load/invalidate',
        pauseMs: 5,
      });
      t.after(() => {
        load.stop();
        writes.stop();
      });
      await sleep(1_000);
      const restarts: string[] = [];
      for (let i = 0; i < serves.length; i++) {
        const old = serves[i] as ServerProcess;
        const t0 = performance.now();
        process.kill(old.pid, 'SIGTERM');
        const exit = await old.exited;
        assert.equal(exit.code, 0, old.stdout().slice(-2000));
        const exitedMs = performance.now() - t0;
        const fresh = await start('serve', old.port);
        serves[i] = fresh;
        const readyMs = performance.now() - t0;
        // Back in rotation (nginx retries a failed server after fail_timeout, 5 s) before the next.
        await waitFor(
          'the restarted process serves through nginx',
          async () =>
            load.outcomes.some(
              (o) => (JSON.parse(o.body ?? '{}') as { servedBy?: number }).servedBy === fresh.pid,
            ),
          15_000,
          100,
        );
        restarts.push(
          `:${String(old.port)} exit ${exitedMs.toFixed(0)} ms, ready ${readyMs.toFixed(0)} ms, serving ${(performance.now() - t0).toFixed(0)} ms`,
        );
      }
      await sleep(500);
      load.stop();
      writes.stop();
      const outcomes = await load.done;
      const counts = tally(outcomes);
      const written = tally(await writes.done);
      t.diagnostic(
        `restarts: ${restarts.join('; ')}; POSTs ${JSON.stringify(written)}; GETs ${JSON.stringify(counts)}, p99 ${quantile(
          outcomes.map((o) => o.ms),
          0.99,
        ).toFixed(0)} ms`,
      );
      assert.ok(outcomes.length > 100, 'a real load');
      assert.deepEqual(Object.keys(counts), ['200'], JSON.stringify(counts));
      assert.deepEqual(Object.keys(written), ['200'], `POSTs: ${JSON.stringify(written)}`);
      assert.doesNotMatch(nginx.errorLog(), /\[(emerg|alert|crit)\]/);
    });

    t.diagnostic(`whole scenario ${(performance.now() - began).toFixed(0)} ms`);
  });
});

async function subscribe(socket: ProxySocket, channel: string) {
  const id = `s${Math.random().toString(36).slice(2)}`;
  socket.send({ type: 'subscribe', channel, id });
  return socket.next((f) => (f.type === 'subscribed' || f.type === 'error') && f.id === id);
}
