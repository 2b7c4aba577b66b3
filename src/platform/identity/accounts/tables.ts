import type { ColumnType } from 'kysely';
import type { RecoveryTables } from '../recovery/tables.ts';

/** Hashes of an account's earlier passwords (never the passwords), newest kept only. */
export interface PasswordHistoryTable {
  id: string;
  user_id: string;
  /** argon2id PHC string of a replaced password; never selected outside the reuse check. */
  password_hash: string;
  created_at: ColumnType<Date, never, never>;
}

/** This part's tables (see `IdentityTables`), with recovery's and the address-change reports. */
export interface AccountsTables extends RecoveryTables {
  gw_password_history: PasswordHistoryTable;
}
