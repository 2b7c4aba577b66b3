import { sql, type Kysely } from 'kysely';

/** Idempotency keys: the first response to a keyed POST, replayed to retries for 24 hours. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_idempotency_key')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('running', 'done')`))
    .addColumn('locked_until', 'timestamptz', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('headers', 'jsonb')
    .addColumn('body', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('gw_idempotency_key_pk', ['scope', 'key'])
    .execute();
  // The hourly purge deletes by expiry.
  await db.schema
    .createIndex('gw_idempotency_key_expires_idx')
    .on('gw_idempotency_key')
    .column('expires_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_idempotency_key').execute();
}
