import type { ColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, never, never>;
/** `bigint` columns: read as strings by `pg`, written as numbers. */
type Step = ColumnType<string | null, number | null, number | null>;

/** One TOTP authenticator per account; pending until `enabled_at` is set. */
export interface MfaTotpTable {
  user_id: string;
  /** The base32 secret sealed with AES-256-GCM (`TokenBox`). */
  secret_sealed: string;
  enabled_at: Date | null;
  /** The time step (RFC 6238 counter) of the last accepted code. */
  last_used_step: Step;
  created_at: CreatedAt;
}

/** Single-use recovery codes; only an HMAC of each is stored. */
export interface MfaBackupCodeTable {
  id: string;
  user_id: string;
  code_hash: string;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** What a password sign-in hands out when a second factor is due: the `mfaToken`, hashed. */
export interface MfaChallengeTable {
  token_hash: string;
  user_id: string;
  remember_me: boolean;
  ip: string | null;
  user_agent: string | null;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** This part's tables (see `IdentityTables`). */
export interface MfaTables {
  gw_mfa_totp: MfaTotpTable;
  gw_mfa_backup_code: MfaBackupCodeTable;
  gw_mfa_challenge: MfaChallengeTable;
}
