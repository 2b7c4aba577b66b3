import { sql, type Kysely } from 'kysely';
import { executePrepared, tablesOf, type AnyDb } from '../db/index.ts';
import type { MailStatus, MailTables } from './tables.ts';

/** The database or the caller's transaction, seen through the mail tables. */
type Executor = Kysely<MailTables>;

/** The mail tables' view of any module's database or transaction. */
export function mailDb(db: AnyDb): Executor {
  return tablesOf<MailTables>(db);
}

/** Serializes limit checks and inserts per key until the transaction ends. */
export async function lockKeys(trx: Executor, keys: readonly string[]): Promise<void> {
  // Sorted, so two transactions taking the same keys never wait on each other in opposite order.
  for (const key of [...keys].sort()) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
  }
}

/**
 * When `max` messages of the template already fall in the window for this recipient (or user),
 * the seconds until the oldest of those leaves it; null while under the limit.
 */
export async function limitRetryAfter(
  trx: Executor,
  where: { template: string; recipient?: string; userId?: string },
  max: number,
  windowSeconds: number,
): Promise<number | null> {
  let query = trx
    .selectFrom('gw_mail_delivery')
    .select(
      sql<number>`extract(epoch from created_at + make_interval(secs => ${windowSeconds}) - now())::float8`.as(
        'seconds',
      ),
    )
    .where('template', '=', where.template)
    .where('created_at', '>', sql<Date>`now() - make_interval(secs => ${windowSeconds})`);
  if (where.recipient !== undefined)
    query = query.where(sql`lower(recipient)`, '=', where.recipient.toLowerCase());
  if (where.userId !== undefined) query = query.where('user_id', '=', where.userId);
  const row = await query
    .orderBy('created_at', 'desc')
    .offset(max - 1)
    .limit(1)
    .executeTakeFirst();
  return row ? Math.max(1, Math.ceil(row.seconds)) : null;
}

export interface NewDelivery {
  id: string;
  template: string;
  locale: string;
  recipient: string;
  userId: string | null;
  requestId: string | null;
  jobId: string;
  vars: unknown;
}

/** One named prepared statement (platform/db/prepared.ts): it is in every mailing transaction. */
export async function insertDelivery(trx: Executor, d: NewDelivery): Promise<void> {
  await executePrepared(
    trx,
    trx.insertInto('gw_mail_delivery').values({
      id: d.id,
      template: d.template,
      locale: d.locale,
      recipient: d.recipient,
      user_id: d.userId,
      request_id: d.requestId,
      job_id: d.jobId,
      vars: JSON.stringify(d.vars),
    }),
  );
}

export interface ClaimedDelivery {
  template: string;
  locale: string;
  recipient: string;
  vars: unknown;
  attempts: number;
}

/** Counts an attempt and returns what to send; null when the message is gone or already sent. */
export async function claimDelivery(db: Executor, id: string): Promise<ClaimedDelivery | null> {
  const row = await db
    .updateTable('gw_mail_delivery')
    .set({ attempts: sql<number>`attempts + 1` })
    .where('id', '=', id)
    .where('status', '<>', 'sent')
    .returning(['template', 'locale', 'recipient', 'vars', 'attempts'])
    .executeTakeFirst();
  return row ?? null;
}

/** Sent: the message id kept, the variables (which may hold secrets) dropped. */
export async function markSent(db: Executor, id: string, messageId: string): Promise<void> {
  await db
    .updateTable('gw_mail_delivery')
    .set({
      status: 'sent',
      message_id: messageId,
      sent_at: sql<Date>`now()`,
      last_error: null,
      vars: null,
    })
    .where('id', '=', id)
    .execute();
}

/** A failed attempt: `failed` when no retry follows, otherwise still `queued`. */
export async function markAttemptFailed(
  db: Executor,
  id: string,
  error: string,
  final: boolean,
): Promise<void> {
  const status: MailStatus = final ? 'failed' : 'queued';
  await db
    .updateTable('gw_mail_delivery')
    .set({ status, last_error: error.slice(0, 1_000) })
    .where('id', '=', id)
    .where('status', '<>', 'sent')
    .execute();
}

/** A delivery record as the platform shows it. */
export interface Delivery {
  id: string;
  template: string;
  locale: string;
  recipient: string;
  userId: string | null;
  requestId: string | null;
  jobId: string | null;
  status: MailStatus;
  attempts: number;
  lastError: string | null;
  messageId: string | null;
  createdAt: Date;
  updatedAt: Date;
  sentAt: Date | null;
}

export async function findDelivery(db: Executor, id: string): Promise<Delivery | null> {
  const row = await db
    .selectFrom('gw_mail_delivery')
    .select([
      'id',
      'template',
      'locale',
      'recipient',
      'user_id as userId',
      'request_id as requestId',
      'job_id as jobId',
      'status',
      'attempts',
      'last_error as lastError',
      'message_id as messageId',
      'created_at as createdAt',
      'updated_at as updatedAt',
      'sent_at as sentAt',
    ])
    .where('id', '=', id)
    .executeTakeFirst();
  return row ?? null;
}

export interface DevMessage {
  id: string;
  deliveryId: string | null;
  template: string;
  locale: string;
  from: string;
  to: string;
  subject: string;
  messageId: string;
  createdAt: Date;
}

export interface DevMessageFull extends DevMessage {
  html: string;
  text: string;
}

export async function insertDevMessage(
  db: Executor,
  m: Omit<DevMessageFull, 'createdAt'>,
): Promise<void> {
  await db
    .insertInto('gw_mail_dev_message')
    .values({
      id: m.id,
      delivery_id: m.deliveryId,
      template: m.template,
      locale: m.locale,
      sender: m.from,
      recipient: m.to,
      subject: m.subject,
      html: m.html,
      text: m.text,
      message_id: m.messageId,
    })
    // A retry after the row was written but before the delivery was marked sent: keep one copy.
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

const DEV_COLUMNS = [
  'id',
  'delivery_id as deliveryId',
  'template',
  'locale',
  'sender as from',
  'recipient as to',
  'subject',
  'message_id as messageId',
  'created_at as createdAt',
] as const;

/** The newest messages of the development mailbox, optionally for one address. */
export async function listDevMessages(
  db: Executor,
  limit: number,
  to?: string,
): Promise<DevMessage[]> {
  let query = db.selectFrom('gw_mail_dev_message').select(DEV_COLUMNS);
  if (to !== undefined) query = query.where(sql`lower(recipient)`, '=', to.toLowerCase());
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export async function findDevMessage(db: Executor, id: string): Promise<DevMessageFull | null> {
  const row = await db
    .selectFrom('gw_mail_dev_message')
    .select([...DEV_COLUMNS, 'html', 'text'])
    .where('id', '=', id)
    .executeTakeFirst();
  return row ?? null;
}
