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
  INVALID_RESET_TOKEN: {
    kind: 'BadRequest',
    title: 'Invalid or expired reset token',
    description:
      'The password reset token is unknown, expired or already used; ask for a new mail. Expired and used tokens of an account count towards its lockout.',
  },
  PASSWORD_REUSED: {
    kind: 'Invalid',
    title: 'Password used before',
    description:
      'The new password is the current one or one of the four before it; choose another.',
  },
  REAUTHENTICATION_REQUIRED: {
    kind: 'Forbidden',
    title: 'Recent authentication required',
    description:
      'This change needs a sign-in at most `AUTH_STEP_UP_MAX_AGE` old: confirm your password with `POST /api/v1/auth/reauthenticate`, then retry.',
  },
  EMAIL_TAKEN: {
    kind: 'Conflict',
    title: 'Address taken',
    description:
      'Another account took this address after the change was requested; the change was not made. (Only answered to whoever holds the confirmation link.)',
  },
  SESSION_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Session not found',
    description: 'You have no live session with this id.',
  },
  // Roles and permissions (rbac) ------------------------------------------------------------
  MFA_REQUIRED: {
    kind: 'Forbidden',
    title: 'Second factor required',
    description:
      'The permission comes only from roles that require MFA (`mfa_required`, e.g. `admin`), and this session did not sign in with a second factor. Sign in again with one.',
  },
  USER_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Account not found',
    description: 'No live account has this id.',
  },
  ROLE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Role not found',
    description: 'No role has this id.',
  },
  UNKNOWN_ROLE: {
    kind: 'Invalid',
    title: 'Unknown role',
    description: 'A role name in the request does not exist; `errors` names each one.',
  },
  ROLE_NAME_TAKEN: {
    kind: 'Conflict',
    title: 'Role name taken',
    description: 'Another role has this name.',
  },
  ROLE_BUILTIN: {
    kind: 'Conflict',
    title: 'Built-in role',
    description:
      'The platform roles (`admin`, `moderator`, `user`) cannot be renamed or deleted, and `admin` keeps every platform permission; otherwise their permissions and description can be edited.',
  },
  ROLE_IN_USE: {
    kind: 'Conflict',
    title: 'Role in use',
    description:
      'Accounts still hold this role: remove it from them (`PATCH /admin/users/:id`) before deleting it.',
  },
  CANNOT_LOCK_SELF: {
    kind: 'Conflict',
    title: 'Cannot lock yourself',
    description: 'An administrator cannot lock their own account (it would end this session).',
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
