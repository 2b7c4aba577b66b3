import { Type } from 'typebox';
import { defineEvent } from '../../events/index.ts';
import { PlatformPermissions } from '../rbac/permissions.ts';

/*
 * Security events of accounts: passwords, providers, the address, lost-device recovery and the
 * administrator's MFA reset. Published in the transaction of the change; ids and non-secret facts
 * only (no address, no token). Listed in `identityEvents`.
 */

const uuid = Type.String({ format: 'uuid' });
const EXAMPLE_USER = '0190a5c4-7b7e-7000-8000-000000000001';
const EXAMPLE_ADMIN = '0190a5c4-7b7e-7000-8000-000000000002';
const visibility = { permission: PlatformPermissions.USERS_READ, ownerVisible: true };
const closed = { additionalProperties: false };

export const userPasswordChanged = defineEvent({
  type: 'user.password_changed',
  description:
    "An account's password was set: changed by its owner with the current one (`via: change`) or reset through the mailed link (`via: reset`).",
  payload: Type.Object(
    { userId: uuid, via: Type.Union([Type.Literal('change'), Type.Literal('reset')]) },
    closed,
  ),
  example: { userId: EXAMPLE_USER, via: 'change' },
  visibility,
});

export const userEmailChanged = defineEvent({
  type: 'user.email_changed',
  description:
    "An account's address changed (the new address's link was followed); the old address was told, with a way to report it.",
  payload: Type.Object({ userId: uuid }, closed),
  example: { userId: EXAMPLE_USER },
  visibility,
});

export const userProviderLinked = defineEvent({
  type: 'user.provider_linked',
  description:
    'A sign-in provider identity was linked to an account (while signed in, or by a provider-verified address).',
  payload: Type.Object(
    {
      userId: uuid,
      provider: Type.String({ maxLength: 64 }),
      identityId: uuid,
      via: Type.Union([Type.Literal('signed-in'), Type.Literal('verified-email')]),
    },
    closed,
  ),
  example: {
    userId: EXAMPLE_USER,
    provider: 'github',
    identityId: '0190a5c4-7b7e-7000-8000-0000000000c1',
    via: 'signed-in',
  },
  visibility,
});

export const userProviderUnlinked = defineEvent({
  type: 'user.provider_unlinked',
  description: 'A sign-in provider identity was unlinked from an account by its owner.',
  payload: Type.Object(
    { userId: uuid, provider: Type.String({ maxLength: 64 }), identityId: uuid },
    closed,
  ),
  example: {
    userId: EXAMPLE_USER,
    provider: 'github',
    identityId: '0190a5c4-7b7e-7000-8000-0000000000c1',
  },
  visibility,
});

export const userRecoveryStarted = defineEvent({
  type: 'user.recovery_started',
  description:
    "A lost-device recovery's mailed link was followed: the account's second factors are removed at `completesAt` unless it is cancelled first.",
  payload: Type.Object({ userId: uuid, completesAt: Type.String({ format: 'date-time' }) }, closed),
  example: { userId: EXAMPLE_USER, completesAt: '2026-12-08T10:00:00.000Z' },
  visibility,
});

export const userRecoveryCancelled = defineEvent({
  type: 'user.recovery_cancelled',
  description:
    'A lost-device recovery was cancelled (by its mailed cancel link, by the signed-in owner, or superseded by an administrator reset).',
  payload: Type.Object(
    {
      userId: uuid,
      via: Type.Union([
        Type.Literal('link'),
        Type.Literal('signed-in'),
        Type.Literal('admin-reset'),
      ]),
    },
    closed,
  ),
  example: { userId: EXAMPLE_USER, via: 'link' },
  visibility,
});

export const userRecoveryCompleted = defineEvent({
  type: 'user.recovery_completed',
  description:
    "A lost-device recovery's waiting period ended: the account's second factors were removed and it enrols again.",
  payload: Type.Object({ userId: uuid }, closed),
  example: { userId: EXAMPLE_USER },
  visibility,
});

export const userMfaReset = defineEvent({
  type: 'user.mfa_reset',
  description:
    "An administrator removed an account's second factors (lost device): every session of the account ended and it enrols again.",
  payload: Type.Object({ userId: uuid, adminId: uuid }, closed),
  example: { userId: EXAMPLE_USER, adminId: EXAMPLE_ADMIN },
  visibility,
});

/** The events of this file, in `identityEvents`. */
export const securityEvents = [
  userPasswordChanged,
  userEmailChanged,
  userProviderLinked,
  userProviderUnlinked,
  userRecoveryStarted,
  userRecoveryCancelled,
  userRecoveryCompleted,
  userMfaReset,
] as const;
