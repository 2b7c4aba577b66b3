import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { openDatabase, type Database } from '../../src/platform/db/index.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser } from '../helpers/identity.ts';
import { freePort, get, isAlive, parseLogs } from '../helpers/process.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** initdb and a first start take a few seconds; more on a busy machine. */
const STARTUP_TIMEOUT_MS = 90_000;

/** Runs `main.ts users ...` against the test database; resolves with its exit code and output. */
function users(
  url: string,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return usersWith({ DATABASE_URL: url }, ...args);
}

/** Runs `main.ts users ...` with `env` over a minimal environment. */
function usersWith(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/main.ts', 'users', ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        APP_ENV: 'test',
        LOG_LEVEL: 'info',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('users grant-role (operator command)', () => {
  const config = testConfig();
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase({ config });
  });
  after(() => tdb.drop());

  const roles = async (userId: string) =>
    (
      await tdb.database.pool.query<{ name: string }>(
        `select r.name from gw_user_role ur join gw_role r on r.id = ur.role_id
          where ur.user_id = $1 order by r.name`,
        [userId],
      )
    ).rows.map((r) => r.name);

  test('grants a role by address or user name, once, audited as a system action', async () => {
    const h = { tdb, config };
    const ada = await createUser(h, { email: 'ada@cli.example', username: 'ada_cli' });
    const res = await users(tdb.url, 'grant-role', 'Ada@CLI.example', 'admin');
    assert.equal(res.status, 0, res.stderr + res.stdout);
    assert.deepEqual(await roles(ada.id), ['admin']);
    const again = await users(tdb.url, 'grant-role', 'ADA_CLI', 'admin');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already holds the role admin/);
    // admin requires MFA: the command says so, and how the account enrols.
    assert.match(res.stdout, /The role admin requires MFA/);
    assert.match(res.stdout, /POST \/api\/v1\/auth\/mfa\/totp\/setup/);
    assert.match(res.stdout, /POST \/api\/v1\/auth\/mfa\/totp\/enable/);
    assert.match(res.stdout, /POST \/api\/v1\/auth\/mfa\/verify/);
    assert.match(again.stdout, /The role admin requires MFA/, 'said again on a repeated grant');
    const events = await listAuditEvents(tdb.database.db, { subjectId: ada.id });
    assert.equal(events.length, 1, 'a repeated grant changes nothing and writes nothing');
    assert.equal(events[0]?.action, 'admin.user.roles');
    assert.equal(events[0]?.actorId, null);
    assert.deepEqual(events[0]?.data, {
      added: ['admin'],
      removed: [],
      via: 'cli',
      changes: { roles: { from: [], to: ['admin'] } },
    });
  });

  test('a role that does not require MFA: granted with no MFA note', async () => {
    const mod = await createUser({ tdb, config }, { email: 'mod@cli.example' });
    const res = await users(tdb.url, 'grant-role', mod.email, 'moderator');
    assert.equal(res.status, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /granted the role moderator/);
    assert.doesNotMatch(res.stdout, /requires MFA/);
    assert.deepEqual(await roles(mod.id), ['moderator']);
  });

  test('an unknown account or role exits 1 and changes nothing; bad usage exits 64', async () => {
    const bob = await createUser({ tdb, config }, { email: 'bob@cli.example' });
    const noUser = await users(tdb.url, 'grant-role', 'nobody@cli.example', 'admin');
    assert.equal(noUser.status, 1);
    assert.match(noUser.stderr, /Account not found/);
    const noRole = await users(tdb.url, 'grant-role', bob.email, 'wizard');
    assert.equal(noRole.status, 1);
    assert.match(noRole.stderr, /No role is named "wizard"/);
    assert.deepEqual(await roles(bob.id), []);
    for (const args of [[], ['grant-role'], ['grant-role', bob.email], ['revoke-role', 'x', 'y']]) {
      const res = await users(tdb.url, ...args);
      assert.equal(res.status, 64, JSON.stringify(args));
      assert.match(res.stderr, /usage: main users/);
    }
  });
});

describe('users grant-role on the embedded database while the server runs (no DATABASE_URL)', () => {
  const config = testConfig();
  let dataDir = '';
  let server: ChildProcess | undefined;
  let stdout = '';
  let postmaster: number | undefined;
  let database: Database | undefined;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-users-embedded-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      APP_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      DATABASE_URL: '',
      DATA_DIR: dataDir,
    };
    delete env.NODE_TEST_CONTEXT;
    server = spawn(process.execPath, ['src/main.ts', 'serve'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    let exited = false;
    server.on('exit', () => (exited = true));
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while ((await get(port, '/health/ready', 2_000).catch(() => null))?.status !== 200) {
      if (exited) assert.fail(`the server exited during startup\n${stdout}`);
      if (Date.now() > deadline) assert.fail(`not ready in ${STARTUP_TIMEOUT_MS} ms\n${stdout}`);
      await sleep(100);
    }
    const started = parseLogs(stdout).find((l) => l.msg === 'embedded postgres started');
    postmaster = started?.postmasterPid as number;
    const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
    database = await openDatabase(config, {
      logger: pino({ level: 'silent' }),
      url: `postgres://postgres:${password}@127.0.0.1:${String(started?.port)}/postgres`,
    });
  });

  after(async () => {
    await database?.close();
    if (server?.exitCode === null) {
      const exit = once(server, 'exit');
      server.kill('SIGTERM');
      await Promise.race([exit, sleep(30_000)]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (postmaster !== undefined && isAlive(postmaster)) process.kill(postmaster, 'SIGINT');
    for (let i = 0; i < 100 && postmaster !== undefined && isAlive(postmaster); i++)
      await sleep(100);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('regression: connects to the running server’s embedded database instead of refusing DATA_DIR as in use', async () => {
    assert.ok(database && postmaster !== undefined, stdout);
    const tdb = { name: 'postgres', url: '', database, drop: async () => undefined };
    const grace = await createUser({ tdb, config }, { email: 'grace@embedded.example' });
    const res = await usersWith(
      { DATABASE_URL: '', DATA_DIR: dataDir },
      'grant-role',
      grace.email,
      'admin',
    );
    assert.equal(res.status, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /using the embedded database of the server running on DATA_DIR/);
    assert.match(res.stdout, /granted the role admin/);
    assert.match(res.stdout, /The role admin requires MFA/);
    const { rows } = await database.pool.query<{ name: string }>(
      `select r.name from gw_user_role ur join gw_role r on r.id = ur.role_id where ur.user_id = $1`,
      [grace.id],
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['admin'],
    );
    // The server and its PostgreSQL were left alone.
    assert.equal(isAlive(postmaster), true);
    assert.equal(server?.exitCode, null);
  });
});
