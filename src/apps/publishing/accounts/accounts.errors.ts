import { defineErrorCodes } from '../../../platform/http/index.ts';

export const AccountCodes = defineErrorCodes('publishing', {
  PUBLISHING_PLATFORM_NOT_ENABLED: {
    kind: 'NotFound',
    title: 'Platform not enabled',
    description:
      'The platform is not configured on this server (its `PUBLISHING_<PLATFORM>_CLIENT_ID` is empty).',
  },
  PUBLISHING_ACCOUNT_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Account not found',
    description: 'No connected account with this id belongs to the caller.',
  },
  PUBLISHING_OAUTH_STATE_INVALID: {
    kind: 'BadRequest',
    title: 'Connect link invalid',
    description:
      'The OAuth callback carries no state we issued, one already used, expired, or for another platform: start connecting again.',
  },
  PUBLISHING_OAUTH_DENIED: {
    kind: 'BadRequest',
    title: 'Consent denied',
    description:
      'The platform reports that the consent was refused or failed (`error` in the callback).',
  },
  PUBLISHING_OAUTH_CODE_INVALID: {
    kind: 'BadRequest',
    title: 'Authorization code refused',
    description:
      'The platform refused the authorization code (already used, expired, or the PKCE verifier does not match).',
  },
  PUBLISHING_OAUTH_NO_ACCOUNT: {
    kind: 'Invalid',
    title: 'No account to connect',
    description:
      'The consent granted no account we can publish to (Instagram: a professional account linked to a Page; Facebook: a Page; YouTube: a channel).',
  },
  PUBLISHING_PLATFORM_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Platform unavailable',
    description: 'The platform did not answer the connect in time or failed; try again.',
  },
});
