import { Type } from 'typebox';
import { defineEvent } from '../../events/index.ts';
import { PlatformPermissions } from '../rbac/permissions.ts';

/* The second factors' domain events; payloads carry ids and the factor's kind, never a number or key. */

const uuid = Type.String({ format: 'uuid' });
const EXAMPLE_USER = '0190a5c4-7b7e-7000-8000-000000000001';
const EXAMPLE_PASSKEY = '0190a5c4-7b7e-7000-8000-0000000000c1';
const visibility = { permission: PlatformPermissions.USERS_READ, ownerVisible: true };
const Factor = Type.Union([
  Type.Literal('totp'),
  Type.Literal('sms'),
  Type.Literal('passkey'),
  Type.Literal('all'),
]);

export const userMfaEnabled = defineEvent({
  type: 'user.mfa_enabled',
  description: 'A second factor was enabled on an account (an authenticator app, an SMS number).',
  payload: Type.Object({ userId: uuid, factor: Factor }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, factor: 'totp' },
  visibility,
});

export const userMfaDisabled = defineEvent({
  type: 'user.mfa_disabled',
  description:
    'A second factor was removed from an account (`all`: every factor, by recovery or an administrator).',
  payload: Type.Object({ userId: uuid, factor: Factor }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, factor: 'sms' },
  visibility,
});

export const userPasskeyAdded = defineEvent({
  type: 'user.passkey_added',
  description: 'A passkey was registered on an account.',
  payload: Type.Object({ userId: uuid, passkeyId: uuid }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, passkeyId: EXAMPLE_PASSKEY },
  visibility,
});

export const userPasskeyRemoved = defineEvent({
  type: 'user.passkey_removed',
  description: 'A passkey was removed from an account.',
  payload: Type.Object({ userId: uuid, passkeyId: uuid }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, passkeyId: EXAMPLE_PASSKEY },
  visibility,
});

export const factorEvents = [userMfaEnabled, userMfaDisabled, userPasskeyAdded, userPasskeyRemoved];
