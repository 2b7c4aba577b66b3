import { defineErrorCodes } from '../../http/index.ts';

/** The error codes of the SMS factor and passkeys (area `identity`). */
export const FactorCodes = defineErrorCodes('identity', {
  INVALID_PHONE_NUMBER: {
    kind: 'Invalid',
    title: 'Invalid phone number',
    description:
      'Not a valid phone number: letters, too short or long, no `+` and country code (unless the server has a default region), or a premium-rate or shared-cost number (refused by default); `detail` says which.',
  },
  SMS_UNAVAILABLE: {
    kind: 'Conflict',
    title: 'SMS codes are not offered',
    description: 'This server sends no SMS (`AUTH_SMS_PROVIDER` is off).',
  },
  SMS_NOT_SET_UP: {
    kind: 'Conflict',
    title: 'No phone number',
    description:
      'There is no pending phone number to confirm (start with `POST /auth/mfa/sms/enrol`), or no enabled one to remove or send a code to.',
  },
  SMS_ALREADY_ENABLED: {
    kind: 'Conflict',
    title: 'A phone number is enabled',
    description: 'Remove the enabled phone number before enrolling another.',
  },
  SMS_LIMIT_REACHED: {
    kind: 'RateLimited',
    title: 'Too many SMS codes',
    description:
      'Enough codes were sent to this number or for this account in the last hour (`AUTH_SMS_MAX_PER_NUMBER`, `AUTH_SMS_MAX_PER_ACCOUNT`); use another factor or wait.',
  },
  SMS_SEND_FAILED: {
    kind: 'Unavailable',
    title: 'The SMS could not be sent',
    description: 'The SMS provider refused the message or did not answer; retry later.',
  },
  PASSKEY_REJECTED: {
    kind: 'BadRequest',
    title: 'Passkey not accepted',
    description:
      'The passkey ceremony failed: an unknown, expired or used ceremony, a wrong challenge or origin, a bad signature, user verification missing, or a malformed answer.',
  },
  PASSKEY_SIGN_IN_FAILED: {
    kind: 'Unauthorized',
    title: 'Passkey sign-in failed',
    description:
      'The passkey did not sign in: unknown credential, wrong challenge or origin, replayed or cloned (counter), bad signature, or a locked account; all the same answer.',
  },
  PASSKEY_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Passkey not found',
    description: 'No passkey of yours has this id.',
  },
});
