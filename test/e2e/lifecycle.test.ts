/**
 * End-to-end lifecycle: the real process started with `npm start` on a real port.
 *
 * `npm start` runs `sh -c "node src/main.ts all"`, so the tree is npm → sh → node. Signals go to
 * node's pid (read from its log lines): npm forwards SIGTERM/SIGINT only to `sh`, and dash dies
 * of them without passing them on, so signalling npm or the whole group loses node's exit code
 * (npm exits by the signal at once while node drains as an orphan). With only node signalled,
 * sh and npm wait for it and npm exits with node's code, which is what these tests assert.
 *
 * Test-only routes (`/test/slow`, `/test/crash`) come from the preload `test/fixtures/slow-route.ts`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent } from 'node:http';
import { keepAliveLoad, send, tally } from '../helpers/load.ts';
import { freePort, get, isAlive, parseLogs, within, type LogLine } from '../helpers/process.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const preload = fileURLToPath(new URL('../fixtures/slow-route.ts', import.meta.url));

/** Upper bound for anything a test waits on, so a hang fails instead of blocking CI. */
const STARTUP_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 45_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from spawning npm to its exit. */
  at: number;
}

interface Server {
  npm: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  logs: () => LogLine[];
  /** Resolves once npm has exited and every stdio stream has closed. */
  closed: Promise<Exit>;
}

/** Runs `npm start` in its own process group with `env` over the current environment. */
function startNpm(
  t: TestContext,
  port: number | null,
  env: Record<string, string | undefined>,
): Server {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    APP_ENV: 'test',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import ${preload}`].filter(Boolean).join(' '),
    ...(port === null ? {} : { PORT: String(port) }),
  };
  delete childEnv.NODE_TEST_CONTEXT; // node --test marks its children; the server is not one
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }

  const npm = spawn('npm', ['start'], {
    cwd: root,
    env: childEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  npm.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  npm.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const started = Date.now();
  const closed = new Promise<Exit>((resolve, reject) => {
    npm.on('error', reject);
    npm.on('close', (code, signal) => resolve({ code, signal, at: Date.now() - started }));
  });
  closed.catch(() => undefined);

  t.after(() => {
    // Whatever is left of the group (npm, sh, node) goes; node keeps npm's group even when orphaned.
    const pgid = npm.pid;
    if (pgid === undefined) return;
    const nodePid = parseLogs(stdout).find((l) => typeof l.pid === 'number')?.pid;
    const npmRunning = npm.exitCode === null && npm.signalCode === null;
    if (npmRunning || (nodePid !== undefined && isAlive(nodePid))) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  return {
    npm,
    port: port ?? 0,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => parseLogs(stdout),
    closed,
  };
}

/** Polls `/health/live` until 200 and returns node's pid (from its log lines). */
async function waitUntilLive(server: Server): Promise<number> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let exited = false;
  void server.closed.then(() => (exited = true));
  for (;;) {
    if (exited)
      assert.fail(`the server exited during startup\n${server.stdout()}\n${server.stderr()}`);
    if (Date.now() > deadline)
      assert.fail(
        `not live after ${STARTUP_TIMEOUT_MS} ms\n${server.stdout()}\n${server.stderr()}`,
      );
    const live = await get(server.port, '/health/live', 1_000).catch(() => null);
    const pid = server.logs().find((l) => l.msg?.startsWith('Server listening') === true)?.pid;
    if (live?.status === 200 && pid !== undefined) return pid;
    await sleep(50);
  }
}

async function waitForExit(server: Server): Promise<Exit> {
  return within(
    server.closed,
    EXIT_TIMEOUT_MS,
    `npm start exit\n${server.stdout()}\n${server.stderr()}`,
  );
}

async function startServer(t: TestContext, env: Record<string, string | undefined> = {}) {
  const server = startNpm(t, await freePort(), env);
  const pid = await waitUntilLive(server);
  assert.ok(pid !== server.npm.pid, 'the pid in the logs is node, not npm');
  return { ...server, pid };
}

const messages = (server: Server) => server.logs().map((l) => l.msg);

describe('lifecycle of the real process (npm start)', { timeout: TEST_TIMEOUT_MS * 8 }, () => {
  test(
    'probes answer, SIGTERM drains an in-flight request and exits 0',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = await startServer(t);

      const live = await get(server.port, '/health/live');
      assert.equal(live.status, 200);
      assert.deepEqual(JSON.parse(live.body), { status: 'ok' });
      const ready = await get(server.port, '/health/ready');
      assert.equal(ready.status, 200);
      assert.equal((JSON.parse(ready.body) as { status: string }).status, 'ok');

      const slow = get(server.port, '/test/slow?ms=1500');
      slow.catch(() => undefined); // awaited below; never an unhandled rejection if an assert fails first
      let slowSettled = false;
      void slow.finally(() => (slowSettled = true)).catch(() => undefined);
      await sleep(200);
      const signalledAt = Date.now();
      process.kill(server.pid, 'SIGTERM');

      // No drain delay is configured, so the listener closes as soon as the signal is handled:
      // a new connection is refused. (A probe that wins the race with the signal may still connect.)
      await sleep(100);
      let refused = false;
      while (!refused && Date.now() - signalledAt < 1_000) {
        refused = await get(server.port, '/health/ready', 1_000).then(
          () => false,
          (error: NodeJS.ErrnoException) => {
            assert.equal(error.code, 'ECONNREFUSED');
            return true;
          },
        );
        if (!refused) await sleep(25);
      }
      assert.ok(refused, 'new connections are refused within 1 s of SIGTERM');
      assert.equal(slowSettled, false, 'refused while the slow request is still in flight');
      assert.equal(server.npm.exitCode, null, 'still running while the request is in flight');

      const reply = await slow;
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.body), { ok: true });
      assert.equal(reply.headers.connection, 'close', 'a draining server closes the connection');

      const exit = await waitForExit(server);
      assert.deepEqual(
        { code: exit.code, signal: exit.signal },
        { code: 0, signal: null },
        server.stderr(),
      );
      assert.ok(Date.now() - signalledAt >= 1_000, 'exit waited for the in-flight request');
      assert.equal(isAlive(server.pid), false);

      const lines = server.logs();
      const shutting = lines.find((l) => l.msg === 'shutting down');
      assert.equal(shutting?.signal, 'SIGTERM');
      assert.equal(shutting.pid, server.pid);
      const slowDone = lines.findIndex(
        (l) => l.msg === 'request completed' && l.url === '/test/slow?ms=1500',
      );
      const complete = lines.findIndex((l) => l.msg === 'shutdown complete');
      assert.ok(slowDone >= 0 && complete > slowDone, `logs in order:\n${server.stdout()}`);
    },
  );

  for (const drainDelayMs of [0, 1_000]) {
    test(
      `regression (issue 12, defect 7): SIGTERM under keep-alive load answers every request sent (drain delay ${String(drainDelayMs)} ms)`,
      { timeout: TEST_TIMEOUT_MS },
      async (t) => {
        const server = await startServer(t, { SHUTDOWN_DRAIN_DELAY_MS: String(drainDelayMs) });
        // Eight keep-alive loops, each sending its next request as soon as an answer arrives; a
        // loop ends when the listener refuses it (the server never saw that request).
        const load = keepAliveLoad({
          port: server.port,
          concurrency: 8,
          path: (n) => `/test/slow?ms=${String(n % 3)}&n=${String(n)}`,
          stopOn: (o) => o.error === 'ECONNREFUSED',
          pauseMs: 1,
        });
        t.after(() => load.stop());
        await sleep(500);
        const signalledAt = load.outcomes.length;
        process.kill(server.pid, 'SIGTERM');
        const exit = await waitForExit(server);
        const outcomes = await within(load.done, 5_000, 'the load loops');
        const counts = tally(outcomes);

        assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
        assert.ok(signalledAt > 50, `load was running at the signal: ${JSON.stringify(counts)}`);
        const lost = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED');
        assert.deepEqual(
          lost.map((o) => `${o.path}: ${String(o.error)}${o.reused ? ' (reused socket)' : ''}`),
          [],
          `every request sent got an answer or was refused at connect: ${JSON.stringify(counts)}`,
        );
        const answered = outcomes.filter((o) => o.status !== undefined);
        assert.ok(
          answered.every((o) => o.status === 200 || o.status === 503),
          JSON.stringify(counts),
        );
        assert.ok(
          answered.slice(signalledAt).some((o) => o.connection === 'close'),
          'answers after the signal carry Connection: close',
        );
        // Each answered request has its log line (written before "shutdown complete").
        const logged = new Set(
          server
            .logs()
            .filter((l) => l.msg === 'request completed')
            .map((l) => l.url),
        );
        const unlogged = answered.filter((o) => !logged.has(o.path)).map((o) => o.path);
        assert.deepEqual(unlogged, [], 'every answered request was logged');
        t.diagnostic(`outcomes ${JSON.stringify(counts)}`);
      },
    );
  }

  test(
    'regression (issue 12, defect 7): a keep-alive connection idle at SIGTERM still gets an answer, with Connection: close',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = await startServer(t);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const first = await send(agent, server.port, '/test/slow?ms=0&n=first');
      assert.equal(first.status, 200);
      assert.equal(first.connection, 'keep-alive');

      process.kill(server.pid, 'SIGTERM');
      // The listener closes at once (no drain delay); the idle connection is kept a moment longer.
      await sleep(300);
      const refused = await get(server.port, '/health/live', 1_000).catch(
        (error: NodeJS.ErrnoException) => error.code,
      );
      assert.equal(refused, 'ECONNREFUSED', 'the listener is closed');
      const last = await send(agent, server.port, '/test/slow?ms=0&n=last');
      assert.deepEqual(
        { status: last.status, error: last.error, reused: last.reused },
        { status: 200, error: undefined, reused: true },
        'answered on the connection that was idle at the signal',
      );
      assert.equal(last.connection, 'close', 'its last answer closes the connection');

      const exit = await waitForExit(server);
      assert.equal(exit.code, 0, server.stderr());
      assert.ok(
        server
          .logs()
          .some((l) => l.msg === 'request completed' && l.url === '/test/slow?ms=0&n=last'),
        'the answer was logged',
      );
    },
  );

  test('SIGINT behaves like SIGTERM', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer(t);
    const slow = get(server.port, '/test/slow?ms=800');
    slow.catch(() => undefined);
    await sleep(200);
    process.kill(server.pid, 'SIGINT');

    const reply = await slow;
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), { ok: true });
    const exit = await waitForExit(server);
    assert.deepEqual(
      { code: exit.code, signal: exit.signal },
      { code: 0, signal: null },
      server.stderr(),
    );
    assert.equal(server.logs().find((l) => l.msg === 'shutting down')?.signal, 'SIGINT');
    assert.ok(messages(server).includes('shutdown complete'));
  });

  test(
    'readiness turns 503 at once while the drain delay runs',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = await startServer(t, { SHUTDOWN_DRAIN_DELAY_MS: '1500' });
      assert.equal((await get(server.port, '/health/ready')).status, 200);

      process.kill(server.pid, 'SIGTERM');
      await sleep(200);
      const ready = await get(server.port, '/health/ready');
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.body) as { status: string }).status, 'unavailable');
      assert.equal(ready.headers.connection, 'close');
      assert.equal(
        (await get(server.port, '/health/live')).status,
        200,
        'still alive while draining',
      );

      const exit = await waitForExit(server);
      assert.equal(exit.code, 0, server.stderr());
      assert.ok(messages(server).includes('shutdown complete'));
    },
  );

  test('a second signal forces exit non-zero', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer(t);
    const slow = get(server.port, '/test/slow?ms=5000').catch((error: unknown) => error);
    await sleep(200);
    const signalledAt = Date.now();
    process.kill(server.pid, 'SIGTERM');
    await sleep(200);
    process.kill(server.pid, 'SIGTERM');

    const exit = await waitForExit(server);
    const elapsed = Date.now() - signalledAt;
    assert.notEqual(exit.code, 0, server.stderr());
    assert.notEqual(exit.code, null, 'npm reports node’s exit code');
    assert.ok(
      elapsed < 3_000,
      `exited ${elapsed} ms after the first signal, well before the request's 5 s`,
    );
    assert.ok((await slow) instanceof Error, 'the in-flight request was cut off');
    assert.ok(messages(server).includes('second signal, forcing exit'), server.stdout());
    assert.equal(messages(server).includes('shutdown complete'), false);
  });

  test(
    'the grace period bounds the drain: exit non-zero after SHUTDOWN_GRACE_MS',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = await startServer(t, { SHUTDOWN_GRACE_MS: '500' });
      const slow = get(server.port, '/test/slow?ms=5000').catch((error: unknown) => error);
      await sleep(200);
      const signalledAt = Date.now();
      process.kill(server.pid, 'SIGTERM');

      const exit = await waitForExit(server);
      const elapsed = Date.now() - signalledAt;
      assert.notEqual(exit.code, 0, server.stderr());
      assert.notEqual(exit.code, null);
      assert.ok(elapsed >= 450, `waited the grace period (${elapsed} ms)`);
      assert.ok(
        elapsed < 3_000,
        `exited ${elapsed} ms after SIGTERM, about the 500 ms grace period`,
      );
      assert.ok((await slow) instanceof Error, 'the request still in flight was cut off');
      const timeout = server
        .logs()
        .find((l) => l.msg === 'shutdown grace period exceeded, forcing exit');
      assert.equal(timeout?.delayMs, 500, server.stdout());
    },
  );

  test(
    'an unhandled rejection is logged and exits non-zero',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = await startServer(t);
      const crash = await get(server.port, '/test/crash');
      assert.equal(crash.status, 202);

      const exit = await waitForExit(server);
      assert.notEqual(exit.code, 0, server.stderr());
      assert.notEqual(exit.code, null);
      const logged = server
        .logs()
        .find(
          (l) => (l.level === 'fatal' || l.level === 'error') && JSON.stringify(l).includes('boom'),
        );
      assert.ok(logged, `a fatal/error line mentions boom:\n${server.stdout()}`);
      assert.equal(logged.level, 'fatal');
      assert.equal((logged.err as { message?: string } | undefined)?.message, 'boom');
    },
  );

  test(
    'invalid configuration exits 78 and names every bad key at once',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const server = startNpm(t, null, {
        APP_ENV: 'production',
        PORT: 'abc',
        MAX_URL_LENGTH: '10',
        METRICS_TOKEN: 'changeme',
        APP_SECRET: undefined,
      });
      const exit = await waitForExit(server);
      assert.equal(exit.code, 78, server.stderr());
      const stderr = server.stderr();
      assert.match(stderr, /Invalid configuration:/);
      for (const key of ['PORT', 'MAX_URL_LENGTH', 'METRICS_TOKEN', 'APP_SECRET']) {
        assert.match(stderr, new RegExp(`^ {2}- ${key}: `, 'm'), `stderr names ${key}`);
      }
      assert.match(stderr, /^ {2}- APP_SECRET: .*required/m);
      assert.equal(server.logs().length, 0, 'nothing started, nothing logged');
    },
  );
});
