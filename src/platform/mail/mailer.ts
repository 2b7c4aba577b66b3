import { Counter, type Registry } from 'prom-client';
import { Type, type Static, type TSchema } from 'typebox';
import type { Config } from '../config/index.ts';
import { newId, withTransaction, type AnyDb, type Database } from '../db/index.ts';
import { HttpCodes, HttpError } from '../http/index.ts';
import { defineJob, type JobContext, type JobDefinition, type JobQueue } from '../jobs/index.ts';
import type { Logger } from '../observability/index.ts';
import { recipientErrors } from './address.ts';
import { MailCodes } from './errors.ts';
import {
  claimDelivery,
  findDelivery,
  findDevMessage,
  insertDelivery,
  limitRetryAfter,
  listDevMessages,
  lockKeys,
  markAttemptFailed,
  mailDb,
  markSent,
  type Delivery,
  type DevMessage,
  type DevMessageFull,
} from './repository.ts';
import {
  renderMail,
  resolveLocale,
  varsErrors,
  type MailTemplate,
  type RenderedMail,
  type SendLimit,
} from './template.ts';
import { notificationTemplate } from './templates/notification.ts';
import {
  DevMailboxTransport,
  MailSendError,
  SmtpTransport,
  type MailTransport,
} from './transport.ts';

/** The queue every message goes through. */
export const MAIL_JOB = 'platform.mail.send';
/** Delivery records (recipient, template, outcome) are kept this long, then purged daily. */
export const MAIL_RETENTION_DAYS = 90;

/**
 * Daily purge of delivery records older than the retention period (sent or failed; queued ones
 * stay until they settle). The development mailbox rows go with them (foreign key cascade).
 */
export const purgeMailDeliveries = defineJob({
  name: 'platform.mail-purge',
  payload: Type.Object({}),
  handler: async (_payload, ctx) => {
    const cutoff = new Date(Date.now() - MAIL_RETENTION_DAYS * 86_400_000);
    const result = await mailDb(ctx.db)
      .deleteFrom('gw_mail_delivery')
      .where('status', '<>', 'queued')
      .where('created_at', '<', cutoff)
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    if (deleted > 0) ctx.log.info({ deleted }, 'old mail delivery records purged');
    return { deleted };
  },
  options: { cron: { expression: '41 3 * * *', payload: {} }, retries: 1 },
});

/** Templates the platform ships; apps and areas add theirs. */
export const platformTemplates: readonly MailTemplate[] = [notificationTemplate];

export interface MailRetry {
  /** Retries after the first attempt (default 5). */
  retries: number;
  /** First delay and cap of the exponential backoff, in seconds (default 10 and 600). */
  initialSeconds: number;
  maxSeconds: number;
}

export interface MailerOptions {
  config: Config;
  database: Database;
  /** The queue the send job is registered on (before it starts). */
  jobs: JobQueue;
  logger: Logger;
  metrics?: Registry;
  /** Templates besides the platform's (apps' `mailTemplates`, other areas). */
  templates?: readonly MailTemplate[];
  /** Where messages go; from `SMTP_URL` (or the development mailbox without it) when absent. */
  transport?: MailTransport;
  retry?: Partial<MailRetry>;
  /** Messages sent at once per worker process, and SMTP connections in the pool (default 4). */
  concurrency?: number;
}

/** One message to send. */
export interface MailMessage<S extends TSchema = TSchema> {
  /** A template definition, or the name of a registered one. */
  template: MailTemplate<S> | string;
  /** One plain address. */
  to: string;
  /** The recipient's locale (`de-AT` falls back to `de`, then to `MAIL_DEFAULT_LOCALE`). */
  locale?: string | null;
  vars: Static<S>;
  /** Who triggered it: counted by the template's `perUser` limit. */
  userId?: string | null;
  requestId?: string | null;
}

export interface SendOptions {
  /** Store and enqueue inside this transaction: the message exists only if it commits. */
  trx?: AnyDb;
}

export interface QueuedMail {
  deliveryId: string;
  jobId: string;
}

/**
 * A send limit was reached: 429 `RATE_LIMITED` with `Retry-After`. Nothing was stored. Callers
 * that must not reveal whether an address is known (password reset) catch it and answer as usual.
 */
export class MailLimitedError extends HttpError {
  readonly retryAfterSeconds: number;
  readonly limit: 'perRecipient' | 'perUser';
  constructor(retryAfterSeconds: number, limit: 'perRecipient' | 'perUser') {
    super(HttpCodes.RATE_LIMITED, {
      detail: 'Too many messages of this kind were sent recently; try again later.',
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
    this.retryAfterSeconds = retryAfterSeconds;
    this.limit = limit;
  }
}

/** A message that can never be sent (its template or variables are gone): no retry. */
class PermanentMailError extends Error {}

const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const SendPayload = Type.Object(
  { deliveryId: Type.String({ pattern: UUID_PATTERN }) },
  { additionalProperties: false },
);

function senderDomain(from: string): string {
  return /@([^\s@<>]+)>?\s*$/.exec(from)?.[1] ?? 'localhost';
}

type Outcome = 'sent' | 'retried' | 'failed' | 'limited';

/**
 * Outgoing mail: templates, send limits, delivery records, and the `platform.mail.send` job that
 * renders and sends each message with retries. Build it before the job queue starts.
 */
export class Mailer {
  /** The send job (registered on the queue by the constructor). */
  readonly job: JobDefinition<typeof SendPayload>;
  readonly #config: Config;
  readonly #database: Database;
  readonly #jobs: JobQueue;
  readonly #log: Logger;
  readonly #transport: MailTransport;
  readonly #templates = new Map<string, MailTemplate>();
  readonly #retries: number;
  readonly #domain: string;
  readonly #counter: Counter<'template' | 'outcome'> | undefined;

  constructor(options: MailerOptions) {
    const { config } = options;
    this.#config = config;
    this.#database = options.database;
    this.#jobs = options.jobs;
    this.#log = options.logger.child({ component: 'mail' });
    this.#domain = senderDomain(config.mail.from);
    const concurrency = options.concurrency ?? 4;
    const retry = { retries: 5, initialSeconds: 10, maxSeconds: 600, ...options.retry };
    this.#retries = retry.retries;
    this.#transport = options.transport ?? this.#defaultTransport(concurrency);
    for (const t of [...platformTemplates, ...(options.templates ?? [])]) this.register(t);
    this.#counter = options.metrics
      ? new Counter({
          name: 'mail_messages_total',
          help: 'Mail by template and outcome (sent, retried, failed, limited)',
          labelNames: ['template', 'outcome'],
          registers: [options.metrics],
        })
      : undefined;
    this.job = defineJob({
      name: MAIL_JOB,
      payload: SendPayload,
      handler: (payload, ctx) => this.#deliver(payload.deliveryId, ctx),
      options: {
        retries: retry.retries,
        backoff: { initialSeconds: retry.initialSeconds, maxSeconds: retry.maxSeconds },
        timeoutSeconds: 120,
        concurrency,
      },
    });
    this.#jobs.register(this.job);
    this.#jobs.register(purgeMailDeliveries);
  }

  #defaultTransport(concurrency: number): MailTransport {
    const { smtpUrl, publicUrl } = this.#config.mail;
    if (smtpUrl !== null) return new SmtpTransport(smtpUrl, { maxConnections: concurrency });
    if (this.#config.isDeployed) throw new Error('SMTP_URL is required in staging and production');
    return new DevMailboxTransport(this.#log, publicUrl);
  }

  /** Where messages go, for logs (no credentials). */
  get transport(): string {
    return this.#transport.description;
  }

  /** Adds a template; its name must be new and it must have the default locale. */
  register(template: MailTemplate): void {
    if (this.#templates.has(template.name))
      throw new Error(`mail template ${template.name} is registered twice`);
    if (!template.compiled.has(this.#config.mail.defaultLocale)) {
      throw new Error(
        `mail template ${template.name} has no ${this.#config.mail.defaultLocale} version (MAIL_DEFAULT_LOCALE)`,
      );
    }
    this.#templates.set(template.name, template);
  }

  /** The registered templates, by name. */
  get templates(): readonly MailTemplate[] {
    return [...this.#templates.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  template(name: string): MailTemplate | undefined {
    return this.#templates.get(name);
  }

  /**
   * Checks the message (recipient, variables: 422 `MAIL_MESSAGE_INVALID`) and the template's send
   * limits (429 `MailLimitedError` with Retry-After), then stores its delivery record and enqueues
   * the send job in one transaction (the caller's when given). Nothing is stored when it throws.
   */
  async send<S extends TSchema>(
    message: MailMessage<S>,
    options: SendOptions = {},
  ): Promise<QueuedMail> {
    const name = typeof message.template === 'string' ? message.template : message.template.name;
    const template = this.#templates.get(name);
    if (!template) throw new Error(`mail template ${name} is not registered`);
    const errors = [...recipientErrors(message.to), ...varsErrors(template, message.vars)];
    if (errors.length > 0) {
      throw new HttpError(MailCodes.MAIL_MESSAGE_INVALID, {
        detail: 'The message was refused before anything was sent.',
        errors,
      });
    }
    const locale = resolveLocale(template, message.locale, this.#config.mail.defaultLocale);
    const userId = message.userId ?? null;
    const requestId = message.requestId ?? null;
    const work = async (caller: AnyDb): Promise<QueuedMail> => {
      const trx = mailDb(caller);
      await this.#checkLimits(trx, template, message.to, userId);
      const deliveryId = newId();
      const { id: jobId } = await this.#jobs.send(
        this.job,
        { deliveryId },
        { trx, userId, requestId },
      );
      await insertDelivery(trx, {
        id: deliveryId,
        template: template.name,
        locale,
        recipient: message.to,
        userId,
        requestId,
        jobId,
        vars: message.vars,
      });
      return { deliveryId, jobId };
    };
    return options.trx ? work(options.trx) : withTransaction(this.#database.db, work);
  }

  async #checkLimits(
    trx: ReturnType<typeof mailDb>,
    template: MailTemplate,
    to: string,
    userId: string | null,
  ): Promise<void> {
    const checks: {
      which: 'perRecipient' | 'perUser';
      limit: SendLimit;
      key: string;
      where: { template: string; recipient?: string; userId?: string };
    }[] = [];
    const { perRecipient, perUser } = template.limits;
    if (perRecipient) {
      checks.push({
        which: 'perRecipient',
        limit: perRecipient,
        key: `gw_mail:${template.name}:to:${to.toLowerCase()}`,
        where: { template: template.name, recipient: to },
      });
    }
    if (perUser && userId !== null) {
      checks.push({
        which: 'perUser',
        limit: perUser,
        key: `gw_mail:${template.name}:user:${userId}`,
        where: { template: template.name, userId },
      });
    }
    if (checks.length === 0) return;
    // Held until the transaction ends: concurrent sends to the same key count one after another.
    await lockKeys(
      trx,
      checks.map((c) => c.key),
    );
    let worst: { seconds: number; which: 'perRecipient' | 'perUser' } | null = null;
    for (const c of checks) {
      const seconds = await limitRetryAfter(trx, c.where, c.limit.max, c.limit.windowSeconds);
      if (seconds !== null && (worst === null || seconds > worst.seconds))
        worst = { seconds, which: c.which };
    }
    if (worst) {
      this.#count(template.name, 'limited');
      this.#log.info(
        { template: template.name, limit: worst.which, retryAfterSeconds: worst.seconds },
        'mail send limit reached',
      );
      throw new MailLimitedError(worst.seconds, worst.which);
    }
  }

  async #deliver(deliveryId: string, ctx: JobContext): Promise<object> {
    const claimed = await claimDelivery(mailDb(ctx.db), deliveryId);
    if (!claimed) {
      ctx.log.info({ deliveryId }, 'mail already sent or no longer recorded: nothing to do');
      return { deliveryId, skipped: true };
    }
    const base = { deliveryId, template: claimed.template, attempt: ctx.attempt };
    let rendered: RenderedMail;
    try {
      rendered = this.#render(claimed.template, claimed.locale, claimed.vars);
    } catch (error) {
      // Retrying cannot help: the delivery fails now and the job ends.
      const message = (error as Error).message;
      await markAttemptFailed(mailDb(ctx.db), deliveryId, message, true);
      this.#count(claimed.template, 'failed');
      ctx.log.error({ ...base, error: message }, 'mail cannot be rendered: delivery failed');
      return { deliveryId, failed: true };
    }
    try {
      const { messageId } = await this.#transport.send(
        {
          deliveryId,
          template: claimed.template,
          locale: rendered.locale,
          from: this.#config.mail.from,
          to: claimed.recipient,
          subject: rendered.subject,
          html: rendered.html,
          text: rendered.text,
          messageId: `<${deliveryId}@${this.#domain}>`,
        },
        { db: ctx.db },
      );
      await markSent(mailDb(ctx.db), deliveryId, messageId);
      this.#count(claimed.template, 'sent');
      ctx.log.info({ ...base, messageId }, 'mail sent');
      return { deliveryId, messageId };
    } catch (error) {
      const message =
        error instanceof MailSendError
          ? error.message
          : `${(error as Error).name}: ${(error as Error).message}`;
      const final = ctx.attempt > this.#retries;
      await markAttemptFailed(mailDb(ctx.db), deliveryId, message, final).catch((e: unknown) =>
        ctx.log.error({ ...base, err: e }, 'could not record the failed mail attempt'),
      );
      this.#count(claimed.template, final ? 'failed' : 'retried');
      if (final) ctx.log.error({ ...base, error: message }, 'mail not sent: no retry left');
      else ctx.log.warn({ ...base, error: message }, 'mail not sent: will retry');
      throw new MailSendError(message);
    }
  }

  #render(name: string, locale: string, vars: unknown): RenderedMail {
    const template = this.#templates.get(name);
    if (!template) throw new PermanentMailError(`no mail template ${name} is registered`);
    if (vars === null) throw new PermanentMailError('the variables are no longer stored');
    const errors = varsErrors(template, vars);
    if (errors.length > 0) {
      throw new PermanentMailError(
        `the variables no longer match the template: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      );
    }
    const resolved = resolveLocale(template, locale, this.#config.mail.defaultLocale);
    return renderMail(template, resolved, vars, this.#config.mail.publicUrl);
  }

  #count(template: string, outcome: Outcome): void {
    this.#counter?.inc({ template, outcome });
  }

  /** A template rendered with its sample variables; null for an unknown template. */
  preview(name: string, locale?: string): RenderedMail | null {
    const template = this.#templates.get(name);
    if (!template) return null;
    return renderMail(
      template,
      resolveLocale(template, locale, this.#config.mail.defaultLocale),
      template.sample,
      this.#config.mail.publicUrl,
    );
  }

  /** A delivery record (status, attempts, last error); null when unknown. */
  async delivery(id: string): Promise<Delivery | null> {
    if (!new RegExp(UUID_PATTERN).test(id)) return null;
    return findDelivery(mailDb(this.#database.db), id);
  }

  /** The newest messages of the development mailbox. */
  async devMessages(limit: number, to?: string): Promise<DevMessage[]> {
    return listDevMessages(mailDb(this.#database.db), limit, to);
  }

  async devMessage(id: string): Promise<DevMessageFull | null> {
    if (!new RegExp(UUID_PATTERN).test(id)) return null;
    return findDevMessage(mailDb(this.#database.db), id);
  }

  /** Closes the SMTP connections (after the workers stopped). */
  async close(): Promise<void> {
    await this.#transport.close();
  }
}
