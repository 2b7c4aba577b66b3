// node --test --test-global-setup: finds the PostgreSQL the tests use. TEST_DATABASE_URL (default the
// machine's server at 127.0.0.1:5432/test) when it answers; otherwise an embedded server for this run,
// so `npm ci && npm test` works on a machine with only Node.
//
// Nothing of a run lives in the checkout's `./.data`, which belongs to `npm start` (an embedded
// server there serves one process at a time): the embedded fallback and the `DATA_DIR` every child
// process inherits (a server a test starts without `DATABASE_URL`) are in a temporary folder of
// this run, removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/platform/db/index.ts';

// The user is explicit: libpq's default (the OS user) is unset in some CI environments.
const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';
let embedded: EmbeddedServer | undefined;
let runDir: string | undefined;

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops test databases left by crashed runs (named gw_test_<pid>_..., the pid no longer alive), and,
 * at the end of a run, the migrated templates unless another run is still using the server.
 */
async function dropLeftovers(url: string, templates: boolean): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      "select datname from pg_database where datname like 'gw\\_test\\_%' or datname like 'gw\\_tpl\\_%'",
    );
    const tests = rows.map((r) => r.datname).filter((n) => n.startsWith('gw_test_'));
    const live = tests.filter((n) => alive(Number(n.split('_')[2])));
    const drop = tests.filter((n) => !live.includes(n));
    if (templates && live.length === 0)
      drop.push(...rows.map((r) => r.datname).filter((n) => n.startsWith('gw_tpl_')));
    for (const name of drop) await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

export async function globalSetup(): Promise<void> {
  runDir = mkdtempSync(join(tmpdir(), 'gw-test-run-'));
  // Test files and the processes they start inherit this environment.
  process.env.DATA_DIR = join(runDir, 'data');
  // The servers tests start shed no load either (as `testConfig`): a saturated machine is no
  // overload of the server under test. A test that means it sets its own value.
  process.env.MAX_EVENT_LOOP_DELAY_MS ??= '0';
  const url = process.env.TEST_DATABASE_URL ?? DEFAULT_URL;
  if (await answers(url)) {
    process.env.TEST_DATABASE_URL = url;
  } else {
    embedded = await startEmbeddedPostgres(join(runDir, 'test-postgres'), pino({ level: 'warn' }));
    process.env.TEST_DATABASE_URL = embedded.url;
    process.stdout.write(`tests use an embedded PostgreSQL (nothing answered at ${url})\n`);
  }
  await dropLeftovers(process.env.TEST_DATABASE_URL, false);
}

export async function globalTeardown(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  if (url) await dropLeftovers(url, true).catch(() => undefined);
  await embedded?.stop();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
}
