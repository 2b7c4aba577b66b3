import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listAuditEvents } from '../../src/platform/audit/index.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser } from '../helpers/identity.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `main.ts users ...` against the test database; resolves with its exit code and output. */
function users(
  url: string,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/main.ts', 'users', ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        APP_ENV: 'test',
        DATABASE_URL: url,
        LOG_LEVEL: 'info',
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
    const events = await listAuditEvents(tdb.database.db, { subjectId: ada.id });
    assert.equal(events.length, 1, 'a repeated grant changes nothing and writes nothing');
    assert.equal(events[0]?.action, 'admin.user.roles');
    assert.equal(events[0]?.actorId, null);
    assert.deepEqual(events[0]?.data, { added: ['admin'], removed: [], via: 'cli' });
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
