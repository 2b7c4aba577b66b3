import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, withBaseColumns } from '../platform/db/index.ts';

/**
 * Mail: one delivery record per message (status, attempts, last error), indexed for the send-limit
 * counts, and the development mailbox (rendered messages, written only without SMTP).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withBaseColumns(db.schema.createTable('gw_mail_delivery'))
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('request_id', 'text')
    .addColumn('job_id', 'uuid')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('queued'))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('message_id', 'text')
    .addColumn('vars', 'jsonb')
    .addColumn('sent_at', 'timestamptz')
    .addCheckConstraint('gw_mail_delivery_status', sql`status in ('queued', 'sent', 'failed')`)
    .addCheckConstraint('gw_mail_delivery_attempts', sql`attempts >= 0`)
    .execute();
  // The per-recipient and per-user limit counts: newest first within one template.
  await sql`create index gw_mail_delivery_recipient_idx on gw_mail_delivery (template, lower(recipient), created_at)`.execute(
    db,
  );
  await sql`create index gw_mail_delivery_user_idx on gw_mail_delivery (template, user_id, created_at) where user_id is not null`.execute(
    db,
  );
  await addUpdatedAtTrigger(db, 'gw_mail_delivery');

  await db.schema
    .createTable('gw_mail_dev_message')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('delivery_id', 'uuid', (c) =>
      c.references('gw_mail_delivery.id').onDelete('cascade'),
    )
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('html', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_mail_dev_message_created_idx')
    .on('gw_mail_dev_message')
    .columns(['created_at desc', 'id desc'])
    .execute();
  await db.schema
    .createIndex('gw_mail_dev_message_delivery_idx')
    .on('gw_mail_dev_message')
    .column('delivery_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_mail_dev_message').execute();
  await db.schema.dropTable('gw_mail_delivery').execute();
}
