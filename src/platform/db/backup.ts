import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Splits a connection URL into libpq environment variables, so the password is never on a command line. */
function libpqEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    // The child needs PATH and locale from our environment; no setting is read from it.
    // eslint-disable-next-line no-restricted-syntax
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username) || 'postgres',
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    ...(u.searchParams.get('sslmode')
      ? { PGSSLMODE: u.searchParams.get('sslmode') ?? undefined }
      : {}),
  };
}

/** `pg_dump` in custom format (compressed, restorable table by table) to `file`. */
export async function backupDatabase(url: string, file: string): Promise<void> {
  await run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--file=${file}`], {
    env: libpqEnv(url),
  });
}

/** `pg_restore` of a custom-format dump into an empty database; refuses a database with tables. */
export async function restoreDatabase(url: string, file: string): Promise<void> {
  const env = libpqEnv(url);
  const { stdout } = await run(
    'psql',
    [
      '-XAtc',
      "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')",
    ],
    { env },
  );
  if (Number(stdout.trim()) > 0)
    throw new Error('restore needs an empty database: this one has tables');
  await run(
    'pg_restore',
    [
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--single-transaction',
      `--dbname=${env.PGDATABASE ?? ''}`,
      file,
    ],
    { env },
  );
}
