import { sql, type Kysely } from 'kysely';

/** Serves the daily purge of old delivery records (they hold recipient addresses). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index gw_mail_delivery_created_idx on gw_mail_delivery (created_at) where status <> 'queued'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index gw_mail_delivery_created_idx`.execute(db);
}
