import type { ColumnType } from 'kysely';

/** Hashes of an account's earlier passwords (never the passwords), newest kept only. */
export interface PasswordHistoryTable {
  id: string;
  user_id: string;
  /** argon2id PHC string of a replaced password; never selected outside the reuse check. */
  password_hash: string;
  created_at: ColumnType<Date, never, never>;
}

declare module '../../db/database.ts' {
  interface DB {
    gw_password_history: PasswordHistoryTable;
  }
}
