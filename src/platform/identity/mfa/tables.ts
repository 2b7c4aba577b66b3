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

/** One phone number per account for SMS codes (E.164); pending until `enabled_at` is set. */
export interface MfaSmsTable {
  user_id: string;
  phone: string;
  enabled_at: Date | null;
  created_at: CreatedAt;
}

export type SmsCodePurpose = 'enrol' | 'sign-in' | 'step-up';

/** An SMS code sent: its keyed hash only; the rows also count the sends of the last hour. */
export interface MfaSmsCodeTable {
  id: string;
  user_id: string;
  phone: string;
  purpose: SmsCodePurpose;
  /** For `sign-in`: the SHA-256 of the mfaToken the code answers. */
  challenge_hash: string | null;
  code_hash: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** A passkey (WebAuthn credential). */
export interface PasskeyTable {
  id: string;
  user_id: string;
  /** base64url. */
  credential_id: string;
  /** The COSE public key. */
  public_key: Buffer;
  /** `bigint`: read as a string, written as a number. */
  counter: ColumnType<string, number | undefined, number>;
  transports: ColumnType<string[], string[] | undefined, string[]>;
  name: string;
  device_type: string;
  backed_up: boolean;
  flagged_at: Date | null;
  created_at: CreatedAt;
  last_used_at: Date | null;
}

export type WebauthnPurpose = 'registration' | 'sign-in' | 'second-factor';

/** A WebAuthn ceremony's challenge: single use, short-lived, bound to its purpose. */
export interface WebauthnChallengeTable {
  id: string;
  purpose: WebauthnPurpose;
  challenge: string;
  user_id: string | null;
  mfa_token_hash: string | null;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** This part's tables (see `IdentityTables`). */
export interface MfaTables {
  gw_mfa_totp: MfaTotpTable;
  gw_mfa_backup_code: MfaBackupCodeTable;
  gw_mfa_challenge: MfaChallengeTable;
  gw_mfa_sms: MfaSmsTable;
  gw_mfa_sms_code: MfaSmsCodeTable;
  gw_passkey: PasskeyTable;
  gw_webauthn_challenge: WebauthnChallengeTable;
}
