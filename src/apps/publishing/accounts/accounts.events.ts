import { Type } from 'typebox';
import { defineEvent } from '../../../platform/events/index.ts';

export const accountReauthRequired = defineEvent({
  type: 'publishing.account.reauth_required',
  description:
    'A connected account must be reconnected (its grant was revoked or expired); its scheduled posts wait.',
  payload: Type.Object({
    accountId: Type.String(),
    platform: Type.String(),
    reason: Type.String(),
  }),
  example: {
    accountId: '0190…',
    platform: 'youtube',
    reason: 'Token has been expired or revoked.',
  },
  visibility: { permission: 'publishing:admin', ownerVisible: true },
});
