import { defineErrorCodes } from '../http/index.ts';

export const MailCodes = defineErrorCodes('mail', {
  MAIL_TEMPLATE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Mail template not found',
    description: 'No mail template has this name.',
  },
  MAIL_MESSAGE_INVALID: {
    kind: 'Invalid',
    title: 'Mail message invalid',
    description:
      'The recipient (one plain address, no line breaks, at most 254 characters) or the template variables were refused before anything was stored; `errors` names each field.',
  },
  MAIL_DEV_MESSAGE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Message not found',
    description: 'The development mailbox holds no message with this id.',
  },
});
