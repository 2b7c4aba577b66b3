import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HttpError } from '../http/index.ts';
import { MailCodes } from './errors.ts';
import type { Mailer } from './mailer.ts';
import { LOCALE } from './template.ts';

/** Rendered mail is shown with its inline styles, and nothing else may load or run. */
const MAIL_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const DevMessageSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  deliveryId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  template: Type.String(),
  locale: Type.String(),
  from: Type.String(),
  to: Type.String(),
  subject: Type.String(),
  messageId: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

const DevMessageFullSchema = Type.Object({
  ...DevMessageSchema.properties,
  text: Type.String(),
  html: Type.String(),
});

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

/** A stored message as its response schema has it (the serializer would write the date alike). */
const messageOut = <M extends { createdAt: Date }>(message: M) => ({
  ...message,
  createdAt: message.createdAt.toISOString(),
});

/**
 * Development only (`APP_ENV=development`): the mailbox of messages the development transport
 * stored, and template previews with sample data. Never registered in other environments.
 */
export async function registerDevMailRoutes(
  app: FastifyInstance,
  options: { mailer: Mailer },
): Promise<void> {
  const { mailer } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const common = { tags: ['development'] };
  // Runs after the platform's onSend hook (child scope): HTML pages keep their inline styles.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type')).startsWith('text/html'))
      reply.header('content-security-policy', MAIL_CSP);
    return payload;
  });

  r.get(
    '/dev/mailbox',
    {
      schema: {
        ...common,
        summary: 'Messages in the development mailbox, newest first',
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          to: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(DevMessageSchema) }) },
      },
    },
    async (request) => {
      const { limit, to } = request.query;
      return { items: (await mailer.devMessages(limit, to)).map(messageOut) };
    },
  );

  r.get(
    '/dev/mailbox/:id',
    {
      schema: {
        ...common,
        errorCodes: [MailCodes.MAIL_DEV_MESSAGE_NOT_FOUND],
        summary: 'One message of the development mailbox, with both parts',
        params: IdParams,
        response: { 200: DevMessageFullSchema },
      },
    },
    async (request) => {
      const message = await mailer.devMessage(request.params.id);
      if (!message) throw new HttpError(MailCodes.MAIL_DEV_MESSAGE_NOT_FOUND);
      return messageOut(message);
    },
  );

  r.get(
    '/dev/mailbox/:id/html',
    {
      schema: {
        ...common,
        errorCodes: [MailCodes.MAIL_DEV_MESSAGE_NOT_FOUND],
        summary: 'The HTML part of a message, as a page',
        params: IdParams,
        produces: ['text/html'],
        response: {
          200: {
            description: 'The HTML part.',
            content: { 'text/html': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) => {
      const message = await mailer.devMessage(request.params.id);
      if (!message) throw new HttpError(MailCodes.MAIL_DEV_MESSAGE_NOT_FOUND);
      return reply.type('text/html; charset=utf-8').send(message.html);
    },
  );

  r.get(
    '/dev/mail/preview/:template',
    {
      schema: {
        ...common,
        errorCodes: [MailCodes.MAIL_TEMPLATE_NOT_FOUND],
        summary: 'A template rendered with its sample data',
        description:
          '`format=html` (default) or `text` answer the part itself; `json` answers the subject and both parts. An unknown locale falls back to the default one (`Content-Language` says which).',
        params: Type.Object({ template: Type.String({ maxLength: 100 }) }),
        querystring: Type.Object({
          locale: Type.Optional(Type.String({ pattern: LOCALE.source })),
          format: Type.Union([Type.Literal('html'), Type.Literal('text'), Type.Literal('json')], {
            default: 'html',
          }),
        }),
        produces: ['text/html', 'text/plain', 'application/json'],
        response: {
          200: {
            description: 'The part asked for (`format`), or all of it as JSON.',
            content: {
              'text/html': { schema: Type.String() },
              'text/plain': { schema: Type.String() },
              'application/json': {
                schema: Type.Object({
                  template: Type.String(),
                  locale: Type.String(),
                  subject: Type.String(),
                  html: Type.String(),
                  text: Type.String(),
                }),
              },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { template } = request.params;
      const { locale, format } = request.query;
      const rendered = mailer.preview(template, locale);
      if (!rendered) {
        throw new HttpError(MailCodes.MAIL_TEMPLATE_NOT_FOUND, {
          detail: 'No mail template has this name.',
        });
      }
      reply.header('content-language', rendered.locale);
      if (format === 'html') return reply.type('text/html; charset=utf-8').send(rendered.html);
      if (format === 'text') return reply.type('text/plain; charset=utf-8').send(rendered.text);
      return { template, ...rendered };
    },
  );
}
