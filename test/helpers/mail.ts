import type { FastifyInstance } from 'fastify';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { Registry } from 'prom-client';
import { SMTPServer } from 'smtp-server';
import { buildApp } from '../../src/app.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { JobQueue, JOBS_SCHEMA } from '../../src/platform/jobs/index.ts';
import {
  Mailer,
  MAIL_JOB,
  type MailRetry,
  type MailTemplate,
} from '../../src/platform/mail/index.ts';
import type { AppModule } from '../../src/platform/modules/index.ts';
import type { Redis } from '../../src/platform/redis/index.ts';
import { createLogger, createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { eventually } from './jobs-harness.ts';

export { eventually };

/** A message the in-process SMTP server accepted: the SMTP envelope, the raw source, parsed. */
export interface ReceivedMail {
  envelope: { from: string; to: string[] };
  raw: string;
  parsed: ParsedMail;
}

/**
 * A real SMTP server (the `smtp-server` package) on a loopback port, without STARTTLS. With
 * `auth` it requires those credentials. Stopped and started again on the same port.
 */
export class SmtpSink {
  readonly port: number;
  readonly received: ReceivedMail[] = [];
  readonly auth: { user: string; pass: string } | undefined;
  #server: SMTPServer | null = null;

  constructor(port: number, options: { auth?: { user: string; pass: string } } = {}) {
    this.port = port;
    this.auth = options.auth;
  }

  /** The `SMTP_URL` for this server (with the given password, the right one by default). */
  url(pass = this.auth?.pass): string {
    const creds = this.auth
      ? `${encodeURIComponent(this.auth.user)}:${encodeURIComponent(pass ?? '')}@`
      : '';
    return `smtp://${creds}127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const auth = this.auth;
    const server = new SMTPServer({
      secure: false,
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !auth,
      allowInsecureAuth: true,
      logger: false,
      onAuth(credentials, _session, callback) {
        if (auth && credentials.username === auth.user && credentials.password === auth.pass)
          callback(null, { user: credentials.username });
        else callback(new Error('Invalid username or password'));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          simpleParser(raw)
            .then((parsed) => {
              const from = session.envelope.mailFrom;
              this.received.push({
                envelope: {
                  from: from ? from.address : '',
                  to: session.envelope.rcptTo.map((r) => r.address),
                },
                raw,
                parsed,
              });
              callback();
            })
            .catch((error: Error) => callback(error));
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Waits until at least `count` messages arrived; returns them all. */
  async waitFor(count: number, timeoutMs = 15_000): Promise<ReceivedMail[]> {
    return eventually(
      `${count} message(s) at the SMTP server`,
      async () => this.received.length >= count && this.received,
      timeoutMs,
    );
  }
}

export interface MailHarness {
  tdb: TestDatabase;
  jobs: JobQueue;
  mail: Mailer;
  app: FastifyInstance;
  logs: LogCapture;
  metrics: Registry;
  config: Config;
  /** The delivery records, oldest first. */
  deliveries(): Promise<DeliveryRow[]>;
  /** The number of send jobs in pg-boss's table (every state). */
  jobCount(): Promise<number>;
  close(): Promise<void>;
}

export interface DeliveryRow {
  id: string;
  template: string;
  locale: string;
  recipient: string;
  user_id: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  message_id: string | null;
  vars: unknown;
  job_id: string | null;
  sent_at: Date | null;
}

export const PUBLIC_URL = 'https://app.example.test';
export const MAIL_FROM = 'Groundwork <no-reply@example.test>';

/**
 * A test database, a job queue with workers, a Mailer on it (short retries) and the app built on
 * all three. `smtp` points `SMTP_URL` at a sink; without it messages go to the dev mailbox.
 * Requests carrying `x-test-user` act as that user.
 */
export async function startMailHarness(
  options: {
    smtpUrl?: string;
    overrides?: Record<string, string>;
    templates?: readonly MailTemplate[];
    retry?: Partial<MailRetry>;
    apps?: AppModule[];
    /** A Redis client for the app (cache, rate limits); the caller closes it. None: in-process. */
    redis?: Redis | null;
  } = {},
): Promise<MailHarness> {
  const config = testConfig({
    JOBS_POLL_INTERVAL_MS: '500',
    JOBS_SUPERVISE_INTERVAL_S: '1',
    PUBLIC_URL,
    MAIL_FROM,
    ...(options.smtpUrl ? { SMTP_URL: options.smtpUrl } : {}),
    ...options.overrides,
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const metrics = createMetricsRegistry();
  const tdb = await createTestDatabase({ config, metrics });
  const jobs = new JobQueue({
    config,
    database: tdb.database,
    logger,
    metrics,
    definitions: [],
    work: true,
  });
  const mail = new Mailer({
    config,
    database: tdb.database,
    jobs,
    logger,
    metrics,
    templates: options.templates ?? (options.apps ?? []).flatMap((a) => a.mailTemplates ?? []),
    retry: { retries: 3, initialSeconds: 1, maxSeconds: 1, ...options.retry },
  });
  await jobs.start();
  await jobs.startWorkers();
  const app = await buildApp(config, {
    logger,
    database: tdb.database,
    metrics,
    jobs,
    mail,
    apps: options.apps ?? [],
    redis: options.redis ?? null,
  });
  app.addHook('onRequest', (request, _reply, done) => {
    const user = request.headers['x-test-user'];
    if (typeof user === 'string') request.userId = user;
    done();
  });
  await app.ready();
  return {
    tdb,
    jobs,
    mail,
    app,
    logs,
    metrics,
    config,
    async deliveries() {
      const { rows } = await tdb.database.pool.query<DeliveryRow>(
        `select id, template, locale, recipient, user_id, status, attempts, last_error, message_id,
                vars, job_id, sent_at
           from gw_mail_delivery order by created_at, id`,
      );
      return rows;
    },
    async jobCount() {
      const { rows } = await tdb.database.pool.query<{ n: number }>(
        `select count(*)::int as n from ${JOBS_SCHEMA}.job where name = $1`,
        [MAIL_JOB],
      );
      return rows[0]?.n ?? 0;
    },
    async close() {
      await app.close();
      await jobs.stop(1_000);
      await mail.close();
      await tdb.drop();
    },
  };
}
