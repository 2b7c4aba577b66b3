import { Migrator, NO_MIGRATIONS, type Migration, type MigrationResult } from 'kysely/migration';
import type { AnyDb } from './database.ts';

/** Migrations by name; names sort into one history across the platform and every app. */
export type MigrationSet = Readonly<Record<string, Migration>>;

// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with '_', outside [a-z0-9]: linear
const NAME = /^\d{12}_[a-z0-9]+(_[a-z0-9]+)*$/;

/** Merges migration sets, refusing duplicate or badly named entries (`YYYYMMDDHHMM_area_what`). */
export function mergeMigrations(...sets: MigrationSet[]): MigrationSet {
  const all: Record<string, Migration> = {};
  for (const set of sets) {
    for (const [name, migration] of Object.entries(set)) {
      if (!NAME.test(name))
        throw new Error(`migration name ${name} must look like 202611221200_area_what`);
      if (all[name]) throw new Error(`migration ${name} is declared twice`);
      if (typeof migration.down !== 'function') throw new Error(`migration ${name} has no down`);
      all[name] = migration;
    }
  }
  return Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Kysely's migrator: on PostgreSQL it holds a transaction-scoped advisory lock while it runs, so
 * concurrent runners (several replicas starting) apply each migration once, inside a transaction.
 *
 * Pending migrations run in name order, but one may sort before an applied one: the history is the
 * platform's and the enabled apps' together, so an app enabled later (`APPS`) brings migrations
 * older than the platform migrations applied meanwhile, and a release adds platform migrations
 * beside apps' applied ones. Each module's own migrations still run in their order (they sort by
 * name and an app's depend only on the platform's, which are always in the set), and a rollback
 * undoes the most recently applied first (Kysely orders the applied ones by execution time).
 */
function migrator(db: AnyDb, migrations: MigrationSet): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    allowUnorderedMigrations: true,
  });
}

export interface MigrationStatus {
  name: string;
  executedAt: Date | null;
}

function check(outcome: { error?: unknown; results?: MigrationResult[] }): MigrationResult[] {
  if (outcome.error) {
    const failed = outcome.results?.find((r) => r.status === 'Error');
    throw new Error(
      `migration ${failed?.migrationName ?? ''} failed: ${String((outcome.error as Error).message ?? outcome.error)}`,
      {
        cause: outcome.error,
      },
    );
  }
  return outcome.results ?? [];
}

/** Applies every pending migration; returns the names applied. */
export async function migrateToLatest(db: AnyDb, migrations: MigrationSet): Promise<string[]> {
  return check(await migrator(db, migrations).migrateToLatest()).map((r) => r.migrationName);
}

/** Rolls back the last `steps` migrations, or all of them; returns the names rolled back. */
export async function rollback(
  db: AnyDb,
  migrations: MigrationSet,
  steps: number | 'all',
): Promise<string[]> {
  const m = migrator(db, migrations);
  if (steps === 'all') return check(await m.migrateTo(NO_MIGRATIONS)).map((r) => r.migrationName);
  const done: string[] = [];
  for (let i = 0; i < steps; i++) {
    const results = check(await m.migrateDown());
    if (results.length === 0) break;
    done.push(...results.map((r) => r.migrationName));
  }
  return done;
}

/** Every known migration with when it was applied (null: pending). */
export async function migrationStatus(
  db: AnyDb,
  migrations: MigrationSet,
): Promise<MigrationStatus[]> {
  const infos = await migrator(db, migrations).getMigrations();
  return infos.map((i) => ({ name: i.name, executedAt: i.executedAt ?? null }));
}
