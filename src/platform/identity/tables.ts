import type { ColumnType } from 'kysely';

type Defaulted<T> = ColumnType<T, T | undefined, T>;
type CreatedAt = ColumnType<Date, never, never>;

export type UserTier = 'free' | 'premium' | 'enterprise';

/** An account. Emails and user names are stored normalised (NFKC, lowercase). */
export interface UserTable {
  id: string;
  email: string;
  username: string;
  /** argon2id PHC string; never selected outside the password checks. Null: provider sign-in only. */
  password_hash: string | null;
  email_verified_at: Date | null;
  tier: Defaulted<UserTier>;
  /** Failures since the last success or lockout. */
  failed_login_count: Defaulted<number>;
  /** Lockouts since the last success: each one doubles the next. */
  lockout_count: Defaulted<number>;
  locked_until: Date | null;
  last_login_at: Date | null;
  created_at: CreatedAt;
  updated_at: CreatedAt;
  deleted_at: Date | null;
}

export type UserTokenPurpose = 'verify-email' | 'reset-password' | 'change-email';

/** Single-use tokens sent by mail; only their SHA-256 is stored. */
export interface UserTokenTable {
  id: string;
  user_id: string;
  purpose: UserTokenPurpose;
  token_hash: string;
  /** The address the token was sent to (a verification is for that address only). */
  email: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** A signed-in device: one refresh token chain. */
export interface SessionTable {
  id: string;
  user_id: string;
  remember_me: boolean;
  user_agent: string | null;
  ip: string | null;
  created_at: CreatedAt;
  last_used_at: Date;
  /** The absolute end of the session, whatever the refreshes. */
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  /** The last time the session proved who it is (sign-in, second factor, re-authentication). */
  authenticated_at: Defaulted<Date>;
  /** Authentication methods used (RFC 8176): `pwd`, `otp`, `fed`. */
  amr: Defaulted<AuthMethod[]>;
}

/** RFC 8176 names; `otp` marks a second factor that counts for roles requiring MFA. */
export type AuthMethod = 'pwd' | 'otp' | 'fed' | 'sms' | 'hwk';

/** Every refresh token a session was given; a spent one presented again is a reuse. */
export interface RefreshTokenTable {
  token_hash: string;
  session_id: string;
  expires_at: Date;
  spent_at: Date | null;
  /** The token that replaced this one, encrypted (AES-256-GCM), for the reuse grace window. */
  successor: string | null;
  created_at: CreatedAt;
}

export type LoginOutcome = 'success' | 'failure' | 'locked' | 'unverified' | 'refresh-reuse';

/** Sign-in attempts against known accounts, and refresh-token reuse. */
export interface LoginEventTable {
  id: string;
  user_id: string;
  outcome: LoginOutcome;
  ip: string | null;
  user_agent: string | null;
  session_id: string | null;
  created_at: CreatedAt;
}

/** This part's tables (see `IdentityTables`). */
export interface CoreTables {
  gw_user: UserTable;
  gw_user_token: UserTokenTable;
  gw_session: SessionTable;
  gw_refresh_token: RefreshTokenTable;
  gw_login_event: LoginEventTable;
}
