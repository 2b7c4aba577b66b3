import { defineErrorCodes } from '../../http/index.ts';

/** The error codes of lost-device recovery, the address-change report and the last-admin rule. */
export const RecoveryCodes = defineErrorCodes('identity', {
  LAST_ADMIN: {
    kind: 'Conflict',
    title: 'Last administrator',
    description:
      'The change would leave no active holder of the `admin` role (unassigned, locked or deleted). Give `admin` to another account first (`PATCH /admin/users/:id`, or the `users grant-role` command).',
  },
  CANNOT_RESET_OWN_MFA: {
    kind: 'Conflict',
    title: 'Cannot reset your own second factors',
    description:
      'An administrator cannot reset their own second factors through the admin API; use a backup code or the self-service recovery (`POST /auth/recovery/start`), or ask another administrator.',
  },
  INVALID_RECOVERY_TOKEN: {
    kind: 'BadRequest',
    title: 'Invalid or expired recovery link',
    description:
      'The recovery link is unknown, expired, already used, or its recovery was cancelled or has completed; start again.',
  },
  RECOVERY_NOT_FOUND: {
    kind: 'NotFound',
    title: 'No recovery in progress',
    description: 'Your account has no recovery to cancel.',
  },
  INVALID_REPORT_TOKEN: {
    kind: 'BadRequest',
    title: 'Invalid or expired report link',
    description: 'The report link of an address change is unknown, expired or already used.',
  },
});
