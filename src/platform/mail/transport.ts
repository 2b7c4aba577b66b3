import nodemailer, { type Transporter } from 'nodemailer';
import type { AnyDb } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';
import { insertDevMessage, mailDb } from './repository.ts';

/** A rendered message ready to leave. */
export interface OutgoingMail {
  deliveryId: string;
  template: string;
  locale: string;
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  /** `<delivery id@sender domain>`: the same on every attempt, so a receiver can spot a repeat. */
  messageId: string;
}

/** Where messages go: an SMTP server, or the development mailbox. */
export interface MailTransport {
  /** For logs: never carries credentials. */
  readonly description: string;
  send(mail: OutgoingMail, ctx: { db: AnyDb }): Promise<{ messageId: string }>;
  close(): Promise<void>;
}

/** Replaces every occurrence of the secrets in a text (error messages from the SMTP client). */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 3) out = out.replaceAll(secret, '********');
  return out;
}

/** Sends through SMTP (`SMTP_URL`) with a small connection pool; errors carry no credentials. */
export class SmtpTransport implements MailTransport {
  readonly description: string;
  readonly #transporter: Transporter;
  readonly #secrets: string[];

  constructor(smtpUrl: string, options: { maxConnections: number }) {
    const url = new URL(smtpUrl);
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    this.description = `${url.protocol}//${url.hostname}:${url.port || (url.protocol === 'smtps:' ? '465' : '587')}`;
    this.#secrets =
      password === ''
        ? []
        : [
            smtpUrl,
            url.password,
            password,
            Buffer.from(`\u0000${user}\u0000${password}`).toString('base64'),
            Buffer.from(password).toString('base64'),
          ];
    this.#transporter = nodemailer.createTransport({
      pool: true,
      url: smtpUrl,
      maxConnections: options.maxConnections,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      // Never nodemailer's own logging: its debug output would carry the AUTH exchange.
      logger: false,
      debug: false,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  async send(mail: OutgoingMail): Promise<{ messageId: string }> {
    try {
      await this.#transporter.sendMail({
        from: mail.from,
        // An address object: nodemailer never parses it as a list or as a display name.
        to: { name: '', address: mail.to },
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: mail.messageId,
      });
      return { messageId: mail.messageId };
    } catch (error) {
      throw new MailSendError(this.#describe(error));
    }
  }

  #describe(error: unknown): string {
    const e = error as { code?: unknown; responseCode?: unknown; message?: unknown };
    const parts = [
      typeof e.code === 'string' ? e.code : null,
      typeof e.responseCode === 'number' ? String(e.responseCode) : null,
      typeof e.message === 'string' ? e.message : String(error),
    ].filter((p) => p !== null);
    return redact(parts.join(' '), this.#secrets).slice(0, 500);
  }

  async close(): Promise<void> {
    this.#transporter.close();
  }
}

/** A failed send, its message cleaned of credentials (the original error is not kept). */
export class MailSendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MailSendError';
  }
}

/**
 * Development (and tests without SMTP): messages are stored in the database for `/dev/mailbox`,
 * so a worker process "sends" and the API process shows them.
 */
export class DevMailboxTransport implements MailTransport {
  readonly description = 'development mailbox';
  readonly #log: Logger;
  readonly #publicUrl: string;

  constructor(logger: Logger, publicUrl: string) {
    this.#log = logger;
    this.#publicUrl = publicUrl;
  }

  async send(mail: OutgoingMail, ctx: { db: AnyDb }): Promise<{ messageId: string }> {
    await insertDevMessage(mailDb(ctx.db), {
      id: mail.deliveryId,
      deliveryId: mail.deliveryId,
      template: mail.template,
      locale: mail.locale,
      from: mail.from,
      to: mail.to,
      subject: mail.subject,
      html: mail.html,
      text: mail.text,
      messageId: mail.messageId,
    });
    this.#log.info(
      {
        deliveryId: mail.deliveryId,
        view: `${this.#publicUrl}/dev/mailbox/${mail.deliveryId}/html`,
      },
      'mail stored in the development mailbox',
    );
    return { messageId: mail.messageId };
  }

  async close(): Promise<void> {}
}
