import { sql, type CreateTableBuilder } from 'kysely';
import { v7 as uuidv7 } from 'uuid';
import type { AnyDb } from './database.ts';

/** A new primary key: UUID v7, made in the app (time-ordered, so inserts stay index-friendly). */
export function newId(): string {
  return uuidv7();
}

/** Adds `id uuid primary key`, `created_at` and `updated_at` (timestamptz, default now()). */
export function withBaseColumns<T extends string>(
  table: CreateTableBuilder<T, never>,
): CreateTableBuilder<T, 'id' | 'created_at' | 'updated_at'> {
  return table
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`));
}

/** Adds the opt-in soft-delete column `deleted_at`. */
export function withSoftDelete<T extends string, C extends string>(
  table: CreateTableBuilder<T, C>,
): CreateTableBuilder<T, C | 'deleted_at'> {
  return table.addColumn('deleted_at', 'timestamptz');
}

/** Keeps `updated_at` current on every UPDATE (trigger using the platform's `gw_set_updated_at`). */
export async function addUpdatedAtTrigger(db: AnyDb, table: string): Promise<void> {
  await sql`create trigger ${sql.id(`${table}_set_updated_at`)} before update on ${sql.table(table)} for each row execute function gw_set_updated_at()`.execute(
    db,
  );
}
