import { sql, type Kysely } from 'kysely';

/**
 * Accounts: password reset and email change tokens (new purposes of `gw_user_token`), the
 * password history (hashes of earlier passwords, for "no reuse of the last 5") and an index for
 * the purge of deleted accounts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table gw_user_token drop constraint gw_user_token_purpose_check`.execute(db);
  await sql`alter table gw_user_token add constraint gw_user_token_purpose_check check (purpose in ('verify-email', 'reset-password', 'change-email'))`.execute(
    db,
  );

  await db.schema
    .createTable('gw_password_history')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index gw_password_history_user_idx on gw_password_history (user_id, created_at desc, id desc)`.execute(
    db,
  );

  await sql`create index gw_user_deleted_idx on gw_user (deleted_at) where deleted_at is not null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index gw_user_deleted_idx`.execute(db);
  await db.schema.dropTable('gw_password_history').execute();
  await sql`delete from gw_user_token where purpose <> 'verify-email'`.execute(db);
  await sql`alter table gw_user_token drop constraint gw_user_token_purpose_check`.execute(db);
  await sql`alter table gw_user_token add constraint gw_user_token_purpose_check check (purpose in ('verify-email'))`.execute(
    db,
  );
}
