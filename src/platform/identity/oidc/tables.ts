import type { ColumnType } from 'kysely';

type Defaulted<T> = ColumnType<T, T | undefined, T>;
type CreatedAt = ColumnType<Date, never, never>;

/** An account's identity at a sign-in provider: `subject` is the provider's stable user id. */
export interface UserIdentityTable {
  id: string;
  user_id: string;
  /** The provider id from `AUTH_OIDC_PROVIDERS`. */
  provider: string;
  subject: string;
  /** The address the provider last asserted, normalised; null when it gave none. */
  email: string | null;
  email_verified: Defaulted<boolean>;
  /** When the identity was linked. */
  created_at: CreatedAt;
  last_login_at: Date | null;
}

/** An authorization request in flight; found by the SHA-256 of its `state`, spent once. */
export interface OidcStateTable {
  state_hash: string;
  provider: string;
  nonce: string;
  /** The PKCE code verifier, sealed (AES-256-GCM with a key from `APP_SECRET`). */
  code_verifier: string;
  /** Set when a signed-in user started the flow to link the provider to their account. */
  link_user_id: string | null;
  /** The session that started the linking flow: it must still be live at the callback. */
  link_session_id: string | null;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

/** This part's tables (see `IdentityTables`). */
export interface OidcTables {
  gw_user_identity: UserIdentityTable;
  gw_oidc_state: OidcStateTable;
}
