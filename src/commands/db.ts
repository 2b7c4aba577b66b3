import type { Config } from '../platform/config/index.ts';
import {
  backupDatabase,
  migrateToLatest,
  migrationStatus,
  openDatabase,
  restoreDatabase,
  rollback,
  type MigrationSet,
} from '../platform/db/index.ts';
import type { Logger } from '../platform/observability/index.ts';

const USAGE = `usage: main db <command>
  migrate            apply every pending migration
  rollback [--all]   roll back the last migration (or all of them)
  status             list migrations, applied and pending
  backup <file>      pg_dump (custom format) of the database to <file>
  restore <file>     pg_restore <file> into the (empty) database`;

/** The PostgreSQL client programs backup and restore run, and where they come from. */
const CLIENT_TOOLS = ['pg_dump', 'pg_restore', 'psql'];
const CLIENT_PACKAGE =
  'the PostgreSQL client tools, of the same major version as the server or newer (Debian/Ubuntu: `apt-get install postgresql-client`; Alpine: `apk add postgresql-client`; macOS: `brew install libpq`)';

/** The client program that could not be run (not installed, not on PATH), if that is the error. */
function missingTool(error: unknown): string | null {
  const e = error as { code?: unknown; path?: unknown };
  return e.code === 'ENOENT' && typeof e.path === 'string' && CLIENT_TOOLS.includes(e.path)
    ? e.path
    : null;
}

/** `main db ...`: migration and backup commands for operators; returns the exit code. */
export async function runDbCommand(
  args: readonly string[],
  config: Config,
  logger: Logger,
  migrations: MigrationSet,
): Promise<number> {
  const [sub, arg] = args;
  const needsFile = sub === 'backup' || sub === 'restore';
  if (
    !sub ||
    !['migrate', 'rollback', 'status', 'backup', 'restore'].includes(sub) ||
    (needsFile && !arg)
  ) {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  let database;
  try {
    database = await openDatabase(config, { logger, role: 'db' });
  } catch (error) {
    logger.error({ err: error }, `db ${sub}: cannot open the database`);
    return 1;
  }
  const db = database.db;
  try {
    switch (sub) {
      case 'migrate': {
        const applied = await migrateToLatest(db, migrations);
        logger.info(
          { applied },
          applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date',
        );
        break;
      }
      case 'rollback': {
        const undone = await rollback(db, migrations, arg === '--all' ? 'all' : 1);
        logger.info({ rolledBack: undone }, `rolled back ${undone.length} migration(s)`);
        break;
      }
      case 'status': {
        for (const m of await migrationStatus(db, migrations)) {
          process.stdout.write(
            `${m.executedAt ? `applied ${m.executedAt.toISOString()}` : 'pending                         '}  ${m.name}\n`,
          );
        }
        break;
      }
      case 'backup':
        await backupDatabase(database.url, arg ?? '');
        logger.info({ file: arg }, 'backup written');
        break;
      case 'restore':
        await restoreDatabase(database.url, arg ?? '');
        logger.info({ file: arg }, 'backup restored');
        break;
    }
    return 0;
  } catch (error) {
    const tool = missingTool(error);
    if (tool) {
      process.stderr.write(
        `db ${sub}: \`${tool}\` is not installed or not on PATH; it comes with ${CLIENT_PACKAGE}\n`,
      );
      return 1;
    }
    logger.error({ err: error }, `db ${sub} failed`);
    return 1;
  } finally {
    await database.close();
  }
}
