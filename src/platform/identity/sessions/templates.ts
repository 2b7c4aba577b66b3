import { Type } from 'typebox';
import { defineMailTemplate } from '../../mail/index.ts';
import { BUTTON_STYLE, tokenLinkMail } from '../mail-parts.ts';

/** The link that confirms an address (`/verify-email?token=` on `PUBLIC_URL`). */
export const verifyEmailTemplate = defineMailTemplate({
  name: 'identity.verify-email',
  description: 'Confirms the address of a new account.',
  ...tokenLinkMail('hours', 24),
  locales: {
    en: {
      subject: 'Confirm your address',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Confirm this address to finish setting up your account. The link works once, for {{hours}} hours.</p>
<p style="margin:24px 0;"><a href="{{url "/verify-email"}}?token={{token}}" style="${BUTTON_STYLE}">Confirm my address</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">If you did not create an account, ignore this message.</p>`,
      text: `Hello {{username}},

Confirm this address to finish setting up your account (the link works once, for {{hours}} hours):

{{url "/verify-email"}}?token={{token}}

If you did not create an account, ignore this message.
`,
    },
  },
});

/** Sent instead of a second account: someone used this (already registered) address. */
export const registerAttemptTemplate = defineMailTemplate({
  name: 'identity.register-attempt',
  description: 'Someone tried to register an account with an address that already has one.',
  vars: Type.Object({}, { additionalProperties: false }),
  sample: {},
  limits: { perRecipient: { max: 3, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'Someone tried to register with your address',
      html: `<p style="margin:0 0 16px;">Someone tried to create an account with this address, which already has one. No new account was made.</p>
<p style="margin:0 0 16px;">If it was you, sign in instead, or reset your password if you forgot it. If not, you can ignore this message: your account is unchanged.</p>`,
      text: `Someone tried to create an account with this address, which already has one. No new account was made.

If it was you, sign in instead, or reset your password if you forgot it. If not, you can ignore this message: your account is unchanged.
`,
    },
  },
});

/** A successful sign-in from a device (browser, OS, platform) the account had not signed in from. */
export const newSignInTemplate = defineMailTemplate({
  name: 'identity.new-sign-in',
  description: "A sign-in from a device not seen in the account's earlier sign-ins.",
  vars: Type.Object(
    {
      username: Type.String({ minLength: 3, maxLength: 32 }),
      device: Type.String({ minLength: 1, maxLength: 200 }),
      ip: Type.String({ maxLength: 64 }),
      at: Type.String({ maxLength: 64 }),
    },
    { additionalProperties: false },
  ),
  sample: {
    username: 'ada',
    device: 'Firefox on Linux (desktop)',
    ip: '203.0.113.7',
    at: '2026-12-02 07:00 UTC',
  },
  limits: { perRecipient: { max: 10, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'New sign-in to your account',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Your account was just signed in to from a device it had not been used on before:</p>
<p style="margin:0 0 16px;"><strong>{{device}}</strong><br>IP address {{ip}}, {{at}}</p>
<p style="margin:0;font-size:13px;color:#52525b;">If it was you, there is nothing to do. If not, change your password and sign out your other sessions.</p>`,
      text: `Hello {{username}},

Your account was just signed in to from a device it had not been used on before:

{{device}}
IP address {{ip}}, {{at}}

If it was you, there is nothing to do. If not, change your password and sign out your other sessions.
`,
    },
  },
});
