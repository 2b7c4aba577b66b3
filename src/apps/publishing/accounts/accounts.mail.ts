import { Type } from 'typebox';
import { defineMailTemplate } from '../../../platform/mail/index.ts';

export const reauthRequiredTemplate = defineMailTemplate({
  name: 'publishing.account-reauth-required',
  description: 'To the owner of a connected account that must be reconnected (once per episode).',
  vars: Type.Object({
    username: Type.String(),
    platform: Type.String(),
    accountName: Type.String(),
    reason: Type.String(),
  }),
  sample: {
    username: 'ada',
    platform: 'YouTube',
    accountName: 'Ada’s channel',
    reason: 'Token has been expired or revoked.',
  },
  locales: {
    en: {
      subject: 'Reconnect {{accountName}} ({{platform}}) to keep publishing',
      html: '<p>Hello {{username}},</p>\n<p>{{platform}} no longer accepts Groundwork’s access to <strong>{{accountName}}</strong> ({{reason}}). Your scheduled posts to it are paused until you reconnect the account.</p>',
      text: 'Hello {{username}},\n\n{{platform}} no longer accepts Groundwork’s access to {{accountName}} ({{reason}}). Your scheduled posts to it are paused until you reconnect the account.',
    },
  },
});
