import { Type } from 'typebox';
import { BACKUP_CODE_PATTERN, TOTP_CODE_PATTERN } from './mfa/codes.ts';
import type { LiveSession } from './repository.ts';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';

// The types and route schemas more than one capability folder uses. This file imports no
// service or route file, so none of them needs to import another to share a shape.

/** Where a request came from, for sessions and the sign-in history. */
export interface Client {
  ip: string | null;
  userAgent: string | null;
  requestId: string;
}

/** Who an access token speaks for, once verified and its session found live. */
export interface Authenticated extends LiveSession {
  userId: string;
  sessionId: string;
}

export type AuthenticationResult = Authenticated | null | 'malformed';

/** What a successful sign-in or refresh returns. */
export interface TokenPair {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  sessionId: string;
}

/** A session just opened, before its access token is signed. */
export interface OpenedSession {
  userId: string;
  sessionId: string;
  refreshToken: string;
  refreshExpires: Date;
}

/**
 * A second factor: a current TOTP code, an unused backup code, an SMS code just sent, or a
 * passkey assertion answering a ceremony (`POST /auth/passkeys/mfa/options`).
 */
export type SecondFactor =
  | { code: string }
  | { backupCode: string }
  | { smsCode: string }
  | { passkey: { ceremonyId: string; response: AuthenticationResponseJSON } };

/** What `POST /auth/login` answers instead of tokens when the account has a second factor. */
export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
}

/** Auth bodies are small: anything larger (a 10 MB "password") is a 413 before it is parsed. */
export const AUTH_BODY_LIMIT = 16_384;
/** Longest password read at all (the policy's maximum applies to new ones). */
const PASSWORD_READ_MAX = 1_024;

export const Password = Type.String({ minLength: 1, maxLength: PASSWORD_READ_MAX });

/** The answer of a request whose outcome is told by mail. */
export const Accepted = Type.Object({
  status: Type.Literal('accepted'),
  message: Type.String(),
});

/** A token pair in the body (the routes that have no cookie mode). */
export const TokenPairSchema = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds the access token is valid.' }),
  refreshToken: Type.String(),
  refreshExpiresIn: Type.Integer({ description: 'Seconds the refresh token is valid.' }),
  sessionId: Type.String({ format: 'uuid' }),
});

export const Code = Type.String({
  pattern: TOTP_CODE_PATTERN,
  description: 'The 6-digit code the authenticator app shows now.',
});
export const BackupCode = Type.String({
  pattern: BACKUP_CODE_PATTERN,
  description: 'One of the backup codes, `xxxxx-xxxxx` (dash and case optional).',
});

/** The answer of `POST /auth/login` for an account with a second factor. */
export const MfaChallengeSchema = Type.Object({
  mfaRequired: Type.Literal(true),
  mfaToken: Type.String({
    description:
      'Send it with a code to `POST /auth/mfa/verify`: single use, from this client only, valid `AUTH_MFA_TOKEN_TTL` (5 minutes).',
  }),
});
