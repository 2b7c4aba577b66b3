import './tables.ts';

export { MailCodes } from './errors.ts';
export {
  Mailer,
  MailLimitedError,
  MAIL_JOB,
  MAIL_RETENTION_DAYS,
  platformTemplates,
  purgeMailDeliveries,
} from './mailer.ts';
export type { MailerOptions, MailMessage, MailRetry, QueuedMail, SendOptions } from './mailer.ts';
export { defineMailTemplate, renderMail, singleLine } from './template.ts';
export type {
  MailLimits,
  MailTemplate,
  MailTemplateParts,
  MailTemplateSpec,
  RenderedMail,
  SendLimit,
} from './template.ts';
export { recipientErrors } from './address.ts';
export { notificationTemplate } from './templates/notification.ts';
export { DevMailboxTransport, SmtpTransport } from './transport.ts';
export type { MailTransport, OutgoingMail } from './transport.ts';
export type { Delivery, DevMessage, DevMessageFull } from './repository.ts';
export type { MailStatus, MailDeliveryTable, MailDevMessageTable } from './tables.ts';
export { registerDevMailRoutes } from './routes.ts';
