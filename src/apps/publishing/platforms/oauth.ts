import type { PlatformAdapter } from './types.ts';

/** A platform account the user granted at consent, with its tokens. */
export interface ConnectedIdentity {
  readonly externalId: string;
  readonly name: string;
  readonly username: string | null;
  readonly avatarUrl: string | null;
  readonly accessToken: string;
  /** Null when the platform gave none (a reconnect then keeps the stored one). */
  readonly refreshToken: string | null;
  /** Null: the token does not expire (Facebook Page tokens). */
  readonly expiresAt: Date | null;
  readonly scopes: readonly string[];
}

export interface TokenSet {
  readonly accessToken: string;
  /** Null when the answer carried none: the stored refresh token stays. */
  readonly refreshToken: string | null;
  readonly expiresAt: Date | null;
}

/** A platform's OAuth 2 side: consent URL, code exchange (with PKCE), refresh. */
export interface OAuthProvider {
  readonly scopes: readonly string[];
  authorizeUrl(input: { state: string; codeChallenge: string; redirectUri: string }): string;
  /**
   * The accounts the code grants. Throws `PlatformError`: ACCOUNT_REAUTH_REQUIRED for a code the
   * platform refuses (used, expired, wrong verifier), PLATFORM_UNAVAILABLE when it cannot answer.
   */
  exchange(
    input: { code: string; codeVerifier: string; redirectUri: string },
    signal: AbortSignal,
  ): Promise<ConnectedIdentity[]>;
  /**
   * New tokens for an account. Throws ACCOUNT_REAUTH_REQUIRED when the grant is revoked or
   * expired (`invalid_grant`, Graph 190), PLATFORM_UNAVAILABLE when the platform cannot answer.
   */
  refresh(
    current: { accessToken: string; refreshToken: string | null },
    signal: AbortSignal,
  ): Promise<TokenSet>;
}

/** An adapter and its OAuth side (what `createAdapters` builds). */
export interface ConnectableAdapter extends PlatformAdapter {
  readonly oauth: OAuthProvider;
}

/** The endpoints and app registration of one platform, from the settings. */
export interface PlatformEndpoints {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly apiUrl: string;
  readonly authUrl: string;
  readonly tokenUrl: string;
  readonly timeoutMs: number;
  readonly uploadTimeoutMs: number;
  readonly pollMs: number;
  readonly pollLimit: number;
}
