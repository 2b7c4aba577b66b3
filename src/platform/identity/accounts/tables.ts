import type { ColumnType } from 'kysely';

/** Hashes of an account's earlier passwords (never the passwords), newest kept only. */
export interface PasswordHistoryTable {
  id: string;
  user_id: string;
  /** argon2id PHC string of a replaced password; never selected outside the reuse check. */
  password_hash: string;
  created_at: ColumnType<Date, never, never>;
}

/** This part's tables (see `IdentityTables`). */
export interface AccountsTables {
  gw_password_history: PasswordHistoryTable;
}
