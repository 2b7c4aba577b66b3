import type { ColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, never, never>;

export type RecoveryKind = 'email' | 'admin';
/** `requested`: link mailed; `waiting`: link followed, the delay runs; then one of the ends. */
export type RecoveryState = 'requested' | 'waiting' | 'cancelled' | 'completed';

/** A lost-device recovery: self-service by mail (with its waiting period) or an admin's reset. */
export interface MfaRecoveryTable {
  id: string;
  user_id: string;
  kind: RecoveryKind;
  state: RecoveryState;
  confirm_token_hash: string | null;
  confirm_expires_at: Date | null;
  cancel_token_hash: string | null;
  completes_at: Date | null;
  ended_at: Date | null;
  reenrolled_at: Date | null;
  created_at: CreatedAt;
}

/** A single-use "this was not me" link mailed to the old address of an email change. */
export interface EmailChangeReportTable {
  id: string;
  user_id: string;
  token_hash: string;
  old_email: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** This part's tables (part of `IdentityTables` through `AccountsTables`). */
export interface RecoveryTables {
  gw_mfa_recovery: MfaRecoveryTable;
  gw_email_change_report: EmailChangeReportTable;
}
