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
  ORIGIN_NOT_ALLOWED: {
    kind: 'Forbidden',
    title: 'Origin not allowed',
    description:
      'A request authenticated by the refresh cookie came without an `Origin` header, or from an origin other than `PUBLIC_URL` and `CORS_ORIGINS`.',
  },
  CSRF_TOKEN_INVALID: {
    kind: 'Forbidden',
    title: 'Missing or invalid CSRF token',
    description:
      'A request authenticated by the refresh cookie must send the value of the `__Host-gw_csrf` cookie in the `X-CSRF-Token` header.',
  },
});
