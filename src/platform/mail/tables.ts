import type { ColumnType } from 'kysely';

export type MailStatus = 'queued' | 'sent' | 'failed';

type Defaulted<T> = ColumnType<T, T | undefined, T>;
type ReadOnlyTimestamp = ColumnType<Date, never, never>;

/** One row per message: what was asked, and what became of it. */
export interface MailDeliveryTable {
  id: string;
  template: string;
  locale: string;
  recipient: string;
  user_id: string | null;
  request_id: string | null;
  job_id: string | null;
  status: Defaulted<MailStatus>;
  attempts: Defaulted<number>;
  last_error: string | null;
  message_id: string | null;
  /** The variables until the message is sent (they may hold secrets such as reset links); then null. */
  vars: ColumnType<unknown, string | null, string | null>;
  created_at: ReadOnlyTimestamp;
  updated_at: ReadOnlyTimestamp;
  sent_at: ColumnType<Date | null, never, Date | null>;
}

/** Messages the development transport "sent": written only where there is no SMTP server. */
export interface MailDevMessageTable {
  id: string;
  delivery_id: string | null;
  template: string;
  locale: string;
  sender: string;
  recipient: string;
  subject: string;
  html: string;
  text: string;
  message_id: string;
  created_at: ReadOnlyTimestamp;
}

/** The mail area's tables. */
export interface MailTables {
  gw_mail_delivery: MailDeliveryTable;
  gw_mail_dev_message: MailDevMessageTable;
}
