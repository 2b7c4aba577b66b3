import { Type } from 'typebox';
import { defineMailTemplate } from '../../src/platform/mail/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';

/** Like the identity area's verification mail: a link with a token, at most 3 per hour per address. */
export const verifyTemplate = defineMailTemplate({
  name: 'test.verify',
  description: 'Verify an address (test).',
  vars: Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 100 }),
      token: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' }),
    },
    { additionalProperties: false },
  ),
  sample: { name: 'Ada', token: 'sample-token-123' },
  limits: { perRecipient: { max: 3, windowSeconds: 3_600 } },
  locales: {
    en: {
      subject: 'Verify your address, {{name}}',
      html: '<p>Hello {{name}},</p><p><a href="{{url "/verify"}}?token={{token}}">Verify</a></p>',
      text: 'Hello {{name}},\n\nVerify your address: {{url "/verify"}}?token={{token}}\n',
    },
  },
});

/** At most 2 per user per 10 minutes, whatever the recipients. */
export const inviteTemplate = defineMailTemplate({
  name: 'test.invite',
  description: 'Invite someone (test).',
  vars: Type.Object({ from: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
  sample: { from: 'Ada' },
  limits: { perUser: { max: 2, windowSeconds: 600 } },
  locales: {
    en: {
      subject: '{{from}} invites you',
      html: '<p>{{from}} invites you.</p>',
      text: '{{from}} invites you.\n',
    },
  },
});

/**
 * Routes that send mail the way apps do. The body schemas are loose on purpose (any string up to
 * 300 characters): the mailer itself must refuse what a route forgot to.
 */
export const mailTestApp = defineApp({
  name: 'mailtest',
  description: 'Sends test mail.',
  mailTemplates: [verifyTemplate, inviteTemplate],
  routes: async (app) => {
    app.post(
      '/test-mail/verify',
      {
        schema: {
          body: Type.Object({
            email: Type.String({ maxLength: 300 }),
            name: Type.String({ maxLength: 300 }),
          }),
        },
      },
      async (request, reply) => {
        const { email, name } = request.body;
        const mail = app.platform.mail;
        const queued = await mail.send({
          template: verifyTemplate,
          to: email,
          vars: { name, token: 'tok_abcdefgh123' },
          userId: request.userId ?? null,
          requestId: request.id,
        });
        reply.code(202);
        return queued;
      },
    );
    app.post(
      '/test-mail/invite',
      { schema: { body: Type.Object({ email: Type.String({ maxLength: 300 }) }) } },
      async (request, reply) => {
        const { email } = request.body;
        const mail = app.platform.mail;
        const queued = await mail.send({
          template: inviteTemplate,
          to: email,
          vars: { from: 'Ada' },
          userId: request.userId ?? null,
          requestId: request.id,
        });
        reply.code(202);
        return queued;
      },
    );
  },
});
