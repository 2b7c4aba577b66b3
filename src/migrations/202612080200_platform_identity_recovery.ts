import { sql, type Kysely } from 'kysely';

/**
 * Lost-device recovery and the report of an address change: `gw_mfa_recovery` holds one row per
 * recovery (self-service by mail, with its waiting period, or an administrator's reset), at most
 * one open per account; `gw_email_change_report` holds the single-use links that let the old
 * address of an account say "this was not me".
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_mfa_recovery')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('email', 'admin')`))
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('requested', 'waiting', 'cancelled', 'completed')`),
    )
    // SHA-256 of the mailed links' tokens; null once spent or for an administrator's reset.
    .addColumn('confirm_token_hash', 'text')
    .addColumn('confirm_expires_at', 'timestamptz')
    .addColumn('cancel_token_hash', 'text')
    .addColumn('completes_at', 'timestamptz')
    .addColumn('ended_at', 'timestamptz')
    // Set when the account enrols a second factor again after the recovery removed them.
    .addColumn('reenrolled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One open recovery per account: a second start joins it (no second timer).
  await sql`create unique index gw_mfa_recovery_open_uq on gw_mfa_recovery (user_id) where state in ('requested', 'waiting')`.execute(
    db,
  );
  await sql`create unique index gw_mfa_recovery_confirm_uq on gw_mfa_recovery (confirm_token_hash) where confirm_token_hash is not null`.execute(
    db,
  );
  await sql`create unique index gw_mfa_recovery_cancel_uq on gw_mfa_recovery (cancel_token_hash) where cancel_token_hash is not null`.execute(
    db,
  );
  await sql`create index gw_mfa_recovery_due_idx on gw_mfa_recovery (completes_at) where state = 'waiting'`.execute(
    db,
  );
  await db.schema
    .createIndex('gw_mfa_recovery_user_idx')
    .on('gw_mfa_recovery')
    .column('user_id')
    .execute();

  await db.schema
    .createTable('gw_email_change_report')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    // The address the account had before the change (the report's sender).
    .addColumn('old_email', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_email_change_report_user_idx')
    .on('gw_email_change_report')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_email_change_report').execute();
  await db.schema.dropTable('gw_mfa_recovery').execute();
}
