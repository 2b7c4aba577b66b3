import { defineErrorCodes } from '../http/index.ts';

export const IdentityCodes = defineErrorCodes('identity', {
  INVALID_CREDENTIALS: {
    kind: 'Unauthorized',
    title: 'Invalid credentials',
    description:
      'The login or password is wrong. Also the answer for an unknown account, an unverified address and a locked account, so none of them can be told apart.',
  },
  INVALID_ACCESS_TOKEN: {
    kind: 'Unauthorized',
    title: 'Invalid access token',
    description:
      'The `Authorization` header is malformed, or its token is expired, not signed by a current key, or from a session that was signed out. Refresh, or sign in again.',
  },
  INVALID_REFRESH_TOKEN: {
    kind: 'Unauthorized',
    title: 'Invalid refresh token',
    description:
      'The refresh token is unknown, expired, already spent, or its session was signed out. Sign in again.',
  },
  INVALID_EMAIL: {
    kind: 'Invalid',
    title: 'Invalid email address',
    description:
      'Not one plain ASCII address after normalisation (internationalised addresses are not accepted yet).',
  },
  INVALID_USERNAME: {
    kind: 'Invalid',
    title: 'Invalid user name',
    description: 'User names are 3 to 32 of `a-z 0-9 _ . -` (after lowercasing), and not reserved.',
  },
  WEAK_PASSWORD: {
    kind: 'Invalid',
    title: 'Password too weak',
    description:
      'The password is too short, too long, or too easy to guess (zxcvbn score below `PASSWORD_MIN_SCORE`, counting the user name and address); `errors` says why.',
  },
  USERNAME_TAKEN: {
    kind: 'Conflict',
    title: 'User name taken',
    description: 'Another account has this user name (user names are public).',
  },
  INVALID_EMAIL_TOKEN: {
    kind: 'BadRequest',
    title: 'Invalid or expired token',
    description: 'The token from the mail is unknown, expired or already used; ask for a new mail.',
  },
  SESSION_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Session not found',
    description: 'You have no live session with this id.',
  },
  INVALID_MFA: {
    kind: 'Unauthorized',
    title: 'Second factor refused',
    description:
      'The code or backup code is wrong or already used, the `mfaToken` is unknown, expired, spent or from another client, or the account is locked: one answer for all. Sign in again when the token has expired.',
  },
  MFA_REJECTED: {
    kind: 'Forbidden',
    title: 'Password or code refused',
    description:
      'Changing the second factor needs your password and a current code (or an unused backup code): one of them is wrong or already used, or the account is locked.',
  },
  MFA_NOT_SET_UP: {
    kind: 'Conflict',
    title: 'Authenticator not set up',
    description:
      'Enabling needs `POST /auth/mfa/totp/setup` first; disabling and new backup codes need an enabled authenticator.',
  },
  MFA_ALREADY_ENABLED: {
    kind: 'Conflict',
    title: 'Authenticator already enabled',
    description: 'Disable the current authenticator before setting up another one.',
  },
});
