/**
 * `npm test` while `npm start` runs in the same checkout: nothing of a test run uses the checkout's
 * `./.data` (where `npm start` keeps its embedded PostgreSQL, which serves one process at a time).
 * The processes tests start inherit a `DATA_DIR` of the run, and the embedded PostgreSQL the global
 * setup falls back to lives in the run's temporary folder, removed at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const checkoutData = join(root, '.data');
const TIMEOUT_MS = 120_000;

function run(args: string[], env: NodeJS.ProcessEnv) {
  const childEnv = { ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      args,
      { cwd: root, env: childEnv, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) =>
        done({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

const inside = (dir: string, parent: string) => !relative(parent, resolve(dir)).startsWith('..');

describe('a test run never uses the checkout’s ./.data (npm start may be using it)', () => {
  test('a server a test starts without DATABASE_URL gets the run’s DATA_DIR, outside the checkout', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, APP_ENV: 'test' };
    delete env.DATABASE_URL;
    const res = await run(['scripts/config-check.ts'], env);
    assert.equal(res.code, 0, res.stderr);
    const dataDir = (JSON.parse(res.stdout) as { DATA_DIR: string }).DATA_DIR;
    assert.equal(inside(dataDir, root), false, `DATA_DIR ${dataDir} is outside ${root}`);
    assert.equal(inside(dataDir, checkoutData), false);
  });

  test(
    'with no PostgreSQL answering, the embedded fallback lives in the run’s temporary folder and goes with it',
    { timeout: TIMEOUT_MS },
    async () => {
      const script = `
        import pg from 'pg';
        const setup = await import('./test/helpers/global-setup.ts');
        await setup.globalSetup();
        const client = new pg.Client(process.env.TEST_DATABASE_URL);
        await client.connect();
        const { rows } = await client.query('show data_directory');
        await client.end();
        await setup.globalTeardown();
        console.log(JSON.stringify({ pgdata: rows[0].data_directory, dataDir: process.env.DATA_DIR }));
      `;
      // Port 1 on loopback: nothing answers, so the setup starts its embedded server.
      const env = { ...process.env, TEST_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
      const res = await run(['--input-type=module', '-e', script], env);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      assert.match(res.stdout, /tests use an embedded PostgreSQL/);
      const line = res.stdout.trim().split('\n').at(-1) ?? '';
      const { pgdata, dataDir } = JSON.parse(line) as { pgdata: string; dataDir: string };
      assert.equal(inside(pgdata, root), false, `the embedded data ${pgdata} is outside ${root}`);
      assert.equal(inside(dataDir, root), false, `DATA_DIR ${dataDir} is outside ${root}`);
      assert.equal(existsSync(pgdata), false, 'removed at the end of the run');
    },
  );
});
