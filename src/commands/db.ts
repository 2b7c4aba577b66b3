import type { Kysely } from 'kysely';
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
  const db = database.db as unknown as Kysely<unknown>;
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
    logger.error({ err: error }, `db ${sub} failed`);
    return 1;
  } finally {
    await database.close();
  }
}
