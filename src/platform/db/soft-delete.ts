import { sql } from 'kysely';
import type { AnyDb } from './database.ts';

/**
 * Soft-delete operations for tables with `deleted_at`. Reads hide soft-deleted rows by adding
 * `where deleted_at is null` (see `notDeleted`); these helpers change the flag or purge for good.
 * Table names are identifiers from code, never from clients.
 */
export const softDelete = {
  /** Marks a row deleted; false when it does not exist or is already deleted. */
  async remove(db: AnyDb, table: string, id: string): Promise<boolean> {
    const r =
      await sql`update ${sql.table(table)} set deleted_at = now() where id = ${id} and deleted_at is null`.execute(
        db,
      );
    return (r.numAffectedRows ?? 0n) > 0n;
  },
  /** Brings a soft-deleted row back; false when there is nothing to restore. */
  async restore(db: AnyDb, table: string, id: string): Promise<boolean> {
    const r =
      await sql`update ${sql.table(table)} set deleted_at = null where id = ${id} and deleted_at is not null`.execute(
        db,
      );
    return (r.numAffectedRows ?? 0n) > 0n;
  },
  /** Deletes for good the rows soft-deleted before `before`; returns how many. */
  async purge(db: AnyDb, table: string, before: Date): Promise<number> {
    const r =
      await sql`delete from ${sql.table(table)} where deleted_at is not null and deleted_at < ${before}`.execute(
        db,
      );
    return Number(r.numAffectedRows ?? 0n);
  },
};
