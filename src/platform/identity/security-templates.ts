import { Type, type TObject, type TProperties } from 'typebox';
import { defineMailTemplate, type MailTemplate } from '../mail/index.ts';
import { BUTTON_STYLE, tokenLinkMail } from './mail-parts.ts';

/*
 * The mail of `SecurityMail`, one template per notice kind, and the recovery link. They name what
 * changed and when, never a secret (no code, no password, no full new address).
 */

const USERNAME = Type.String({ minLength: 3, maxLength: 32 });
const NOT_YOU =
  'If this was not you, reset your password now (forgot password) and sign out your other sessions.';

/**
 * A notice: a greeting, one paragraph (with `{{...}}` of its extra vars), the "not you" advice.
 * Per recipient at most 20 an hour (a burst of changes must not hide the mail that matters).
 */
function notice<P extends TProperties>(spec: {
  name: string;
  description: string;
  subject: string;
  paragraph: string;
  extra?: P;
  sample?: Record<string, unknown>;
  advice?: string;
}): MailTemplate {
  const advice = spec.advice ?? NOT_YOU;
  const vars: TObject = Type.Object(
    { username: USERNAME, ...(spec.extra ?? {}) },
    { additionalProperties: false },
  );
  return defineMailTemplate({
    name: spec.name,
    description: spec.description,
    vars,
    sample: { username: 'ada', ...(spec.sample ?? {}) },
    limits: { perRecipient: { max: 20, windowSeconds: 3_600 } },
    locales: {
      en: {
        subject: spec.subject,
        html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">${spec.paragraph}</p>
<p style="margin:0;font-size:13px;color:#52525b;">${advice}</p>`,
        text: `Hello {{username}},

${spec.paragraph}

${advice}
`,
      },
    },
  });
}

const PROVIDER = Type.String({ minLength: 1, maxLength: 64 });
const FACTOR = Type.String({ minLength: 1, maxLength: 64 });

export const passwordChangedTemplate = notice({
  name: 'identity.password-changed',
  description: 'The password of the account was changed by its owner (signed in).',
  subject: 'Your password was changed',
  paragraph: 'The password of your account was just changed. Your other sessions were signed out.',
});

export const passwordResetTemplate = notice({
  name: 'identity.password-reset',
  description: 'The password of the account was reset through the mailed link.',
  subject: 'Your password was reset',
  paragraph:
    'The password of your account was just reset with the link we mailed. Every session was signed out.',
});

export const providerLinkedTemplate = notice({
  name: 'identity.provider-linked',
  description: 'A sign-in provider identity was linked to the account.',
  subject: 'A sign-in provider was linked to your account',
  paragraph: 'Your account can now be signed in to with {{provider}}.',
  extra: { provider: PROVIDER },
  sample: { provider: 'github' },
  advice:
    'If this was not you, unlink it (your linked identities), reset your password and sign out your other sessions.',
});

export const providerUnlinkedTemplate = notice({
  name: 'identity.provider-unlinked',
  description: 'A sign-in provider identity was unlinked from the account.',
  subject: 'A sign-in provider was unlinked from your account',
  paragraph: 'Your account can no longer be signed in to with {{provider}}.',
  extra: { provider: PROVIDER },
  sample: { provider: 'github' },
});

export const mfaEnabledTemplate = notice({
  name: 'identity.mfa-enabled',
  description: 'A second factor was turned on for the account.',
  subject: 'A second factor was added to your account',
  paragraph: 'A second factor ({{factor}}) now protects the sign-in to your account.',
  extra: { factor: FACTOR },
  sample: { factor: 'authenticator app' },
});

export const mfaDisabledTemplate = notice({
  name: 'identity.mfa-disabled',
  description: 'A second factor (or all of them) was turned off for the account.',
  subject: 'A second factor was removed from your account',
  paragraph: 'A second factor ({{factor}}) no longer protects the sign-in to your account.',
  extra: { factor: FACTOR },
  sample: { factor: 'authenticator app' },
});

export const passkeyAddedTemplate = notice({
  name: 'identity.passkey-added',
  description: 'A passkey was registered for the account.',
  subject: 'A new passkey was added to your account',
  paragraph: 'A new passkey, "{{name}}", can now sign in to your account.',
  extra: { name: Type.String({ minLength: 1, maxLength: 100 }) },
  sample: { name: 'Laptop' },
  advice:
    'If this was not you, remove the passkey, reset your password and sign out your other sessions.',
});

export const passkeyRemovedTemplate = notice({
  name: 'identity.passkey-removed',
  description: 'A passkey was removed from the account.',
  subject: 'A passkey was removed from your account',
  paragraph: 'The passkey "{{name}}" can no longer sign in to your account.',
  extra: { name: Type.String({ minLength: 1, maxLength: 100 }) },
  sample: { name: 'Laptop' },
});

/** To the old address of an email change, with the single-use "this was not me" link. */
export const emailChangedTemplate = defineMailTemplate({
  name: 'identity.email-changed',
  description:
    'Tells the old address that the account now uses another one, with a link to report it (locks the account, ends its sessions, gives the address back).',
  vars: Type.Object(
    {
      username: USERNAME,
      newEmail: Type.String({ minLength: 3, maxLength: 254 }),
      token: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
      days: Type.Integer({ minimum: 1 }),
    },
    { additionalProperties: false },
  ),
  sample: {
    username: 'ada',
    newEmail: 'a***@example.com',
    token: 'c2FtcGxlLXRva2VuLTAxMjM0NTY3ODktYWJjZGVmZ2g',
    days: 7,
  },
  limits: { perRecipient: { max: 5, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'The address of your account changed',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Your account now uses the address {{newEmail}}; this address no longer receives its mail.</p>
<p style="margin:0 0 16px;">If you did not make this change, report it: the account is locked, every session is signed out and this address becomes the account's address again. Then choose a new password with "forgot password" at this address. The link works once, for {{days}} days.</p>
<p style="margin:24px 0;"><a href="{{url "/report-email-change"}}?token={{token}}" style="${BUTTON_STYLE}">This was not me</a></p>`,
      text: `Hello {{username}},

Your account now uses the address {{newEmail}}; this address no longer receives its mail.

If you did not make this change, report it: the account is locked, every session is signed out and this address becomes the account's address again. Then choose a new password with "forgot password" at this address. The link works once, for {{days}} days:

{{url "/report-email-change"}}?token={{token}}
`,
    },
  },
});

/** The link that confirms a self-service recovery (it starts the waiting period). */
export const recoveryLinkTemplate = defineMailTemplate({
  name: 'identity.recovery-link',
  description:
    'A link to start removing the second factors of an account whose device was lost (asked for without signing in).',
  ...tokenLinkMail('minutes', 60),
  locales: {
    en: {
      subject: 'Recover access to your account',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">Someone (hopefully you) said they lost the device of your second factor. Following this link starts a waiting period; when it ends, the second factors of your account are removed and you set them up again at your next sign-in. You can cancel it until then. The link works once, for {{minutes}} minutes.</p>
<p style="margin:24px 0;"><a href="{{url "/mfa-recovery/confirm"}}?token={{token}}" style="${BUTTON_STYLE}">Start the recovery</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">If you did not ask for this, ignore this message: nothing changes.</p>`,
      text: `Hello {{username}},

Someone (hopefully you) said they lost the device of your second factor. Following this link starts a waiting period; when it ends, the second factors of your account are removed and you set them up again at your next sign-in. You can cancel it until then. The link works once, for {{minutes}} minutes:

{{url "/mfa-recovery/confirm"}}?token={{token}}

If you did not ask for this, ignore this message: nothing changes.
`,
    },
  },
});

export const recoveryStartedTemplate = defineMailTemplate({
  name: 'identity.recovery-started',
  description:
    'A recovery of the account (lost device) is under way: when, and the link that cancels it.',
  vars: Type.Object(
    {
      username: USERNAME,
      completesAt: Type.String({ minLength: 1, maxLength: 64 }),
      cancelUrl: Type.String({ minLength: 1, maxLength: 2_048 }),
    },
    { additionalProperties: false },
  ),
  sample: {
    username: 'ada',
    completesAt: '2026-12-08 10:00 UTC',
    cancelUrl: 'https://app.example.com/mfa-recovery/cancel?token=c2FtcGxl',
  },
  limits: { perRecipient: { max: 10, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'Your second factors will be removed',
      html: `<p style="margin:0 0 16px;">Hello {{username}},</p>
<p style="margin:0 0 16px;">A recovery of your account is under way: on {{completesAt}} its second factors will be removed, and it will need to set them up again at the next sign-in.</p>
<p style="margin:0 0 16px;">If you did not ask for this, or found your device, cancel it now:</p>
<p style="margin:24px 0;"><a href="{{cancelUrl}}" style="${BUTTON_STYLE}">Cancel the recovery</a></p>
<p style="margin:0;font-size:13px;color:#52525b;">You can also cancel it signed in. If you did not ask for it, change your password: whoever did can read this mailbox or knows your password.</p>`,
      text: `Hello {{username}},

A recovery of your account is under way: on {{completesAt}} its second factors will be removed, and it will need to set them up again at the next sign-in.

If you did not ask for this, or found your device, cancel it now:

{{cancelUrl}}

You can also cancel it signed in. If you did not ask for it, change your password: whoever did can read this mailbox or knows your password.
`,
    },
  },
});

export const recoveryCancelledTemplate = notice({
  name: 'identity.recovery-cancelled',
  description: 'A recovery of the account (lost device) was cancelled; its second factors stay.',
  subject: 'The recovery of your account was cancelled',
  paragraph: 'The recovery of your account was cancelled: its second factors stay as they were.',
  advice: 'If you did not cancel it and still need it, start a new one.',
});

export const recoveryCompletedTemplate = notice({
  name: 'identity.recovery-completed',
  description: 'A recovery (lost device) removed the second factors of the account.',
  subject: 'The second factors of your account were removed',
  paragraph:
    'The waiting period of the recovery of your account has ended: its second factors were removed. Set up a new one after your next sign-in.',
});

export const mfaResetByAdminTemplate = notice({
  name: 'identity.mfa-reset-by-admin',
  description: 'An administrator removed the second factors of the account (lost device).',
  subject: 'An administrator reset the second factors of your account',
  paragraph:
    'An administrator removed the second factors of your account, and every session was signed out. Sign in again and set up a new second factor.',
  advice: 'If you did not ask for this, contact your administrator right away.',
});

/** `SecurityMail`'s templates and the recovery link (part of `identityMailTemplates`). */
export const securityMailTemplates: readonly MailTemplate[] = [
  passwordChangedTemplate,
  passwordResetTemplate,
  providerLinkedTemplate,
  providerUnlinkedTemplate,
  mfaEnabledTemplate,
  mfaDisabledTemplate,
  passkeyAddedTemplate,
  passkeyRemovedTemplate,
  emailChangedTemplate,
  recoveryLinkTemplate,
  recoveryStartedTemplate,
  recoveryCancelledTemplate,
  recoveryCompletedTemplate,
  mfaResetByAdminTemplate,
];
