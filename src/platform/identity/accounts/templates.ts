import { Type } from 'typebox';
import { defineMailTemplate, type MailTemplate } from '../../mail/index.ts';
import { BUTTON_STYLE, tokenLinkMail } from '../mail-parts.ts';

/** The link that sets a new password (`/reset-password?token=` on `PUBLIC_URL`). */
export const resetPasswordTemplate = defineMailTemplate({
  name: 'identity.reset-password',
  description: 'A link to choose a new password, sent on request (forgot password).',
  ...tokenLinkMail('minutes', 60),
  locales: {
    en: {
      subject: 'Reset your password',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Someone (hopefully you) asked to reset the password of your account. The link works once, for {{minutes}} minutes, and signs out every device.</p>
<p style="margin:24px 0;"><a href="{{url "/reset-password"}}?token={{token}}" style="${BUTTON_STYLE}">Choose a new password</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">If you did not ask for this, ignore this message: your password is unchanged.</p>`,
      text: `Hello {{username}},

Someone (hopefully you) asked to reset the password of your account. The link works once, for {{minutes}} minutes, and signs out every device:

{{url "/reset-password"}}?token={{token}}

If you did not ask for this, ignore this message: your password is unchanged.
`,
    },
  },
});

/** Sent to the new address of an email change: the link that makes the switch. */
export const confirmEmailChangeTemplate = defineMailTemplate({
  name: 'identity.confirm-email-change',
  description: 'Confirms a new address for an existing account; the address changes only then.',
  ...tokenLinkMail('hours', 24),
  locales: {
    en: {
      subject: 'Confirm your new address',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Confirm this address to make it the address of your account. The link works once, for {{hours}} hours; until then the old address stays.</p>
<p style="margin:24px 0;"><a href="{{url "/confirm-email-change"}}?token={{token}}" style="${BUTTON_STYLE}">Use this address</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">If you did not ask for this, ignore this message: nothing changes.</p>`,
      text: `Hello {{username}},

Confirm this address to make it the address of your account (the link works once, for {{hours}} hours; until then the old address stays):

{{url "/confirm-email-change"}}?token={{token}}

If you did not ask for this, ignore this message: nothing changes.
`,
    },
  },
});

/** Sent instead of a confirmation when the requested new address already has an account. */
export const emailChangeAttemptTemplate = defineMailTemplate({
  name: 'identity.email-change-attempt',
  description:
    'Someone asked to move another account to an address that already has one (the requester is not told).',
  vars: Type.Object({}, { additionalProperties: false }),
  sample: {},
  limits: { perRecipient: { max: 3, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'Someone tried to use your address',
      html: `<p style="margin:0 0 16px;">Someone asked to move another account to this address, which already has an account. Nothing was changed.</p>
<p style="margin:0 0 16px;">If it was you, sign in to the account that has this address instead. If not, you can ignore this message.</p>`,
      text: `Someone asked to move another account to this address, which already has an account. Nothing was changed.

If it was you, sign in to the account that has this address instead. If not, you can ignore this message.
`,
    },
  },
});

/** The templates of the account flows (part of `identityMailTemplates`). */
export const accountMailTemplates: readonly MailTemplate[] = [
  resetPasswordTemplate,
  confirmEmailChangeTemplate,
  emailChangeAttemptTemplate,
];
