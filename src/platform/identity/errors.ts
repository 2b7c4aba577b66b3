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
  OIDC_PROVIDER_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Unknown sign-in provider',
    description: 'No provider with this id is configured (`AUTH_OIDC_PROVIDERS`).',
  },
  OIDC_PROVIDER_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Sign-in provider unavailable',
    description: 'The provider could not be reached (discovery failed); try again later.',
  },
  OIDC_LOGIN_FAILED: {
    kind: 'BadRequest',
    title: 'Sign-in with the provider failed',
    description:
      'The provider sign-in could not be completed: an unknown, expired or already used `state`, an error from the provider (the user refused), a code the provider would not exchange, an ID token that does not validate (issuer, audience, nonce), or no verified address to match or create an account with. Start again from `authorize`.',
  },
  OIDC_IDENTITY_TAKEN: {
    kind: 'Conflict',
    title: 'Identity linked to another account',
    description:
      'This provider account is already linked to another account; unlink it there first.',
  },
  IDENTITY_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Identity not found',
    description: 'You have no linked identity with this id.',
  },
  LAST_SIGN_IN_METHOD: {
    kind: 'Conflict',
    title: 'Last way to sign in',
    description:
      'Unlinking this identity would leave the account with no way to sign in (no password and no other identity). Set a password or link another provider first.',
  },
});
