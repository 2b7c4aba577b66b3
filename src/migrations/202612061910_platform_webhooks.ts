import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, withBaseColumns } from '../platform/db/index.ts';

/**
 * Webhooks: endpoints (owned by a user), their signing secrets (sealed), one message per
 * (event, endpoint) and one row per delivery attempt.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withBaseColumns(db.schema.createTable('gw_webhook_endpoint'))
    .addColumn('owner_id', 'uuid', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('event_types', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('ordered', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('rate_limit_per_second', 'integer')
    .addColumn('disabled_reason', 'text')
    .addColumn('disabled_at', 'timestamptz')
    // Set at the first failed attempt after a success; cleared by the next success.
    .addColumn('failing_since', 'timestamptz')
    .execute();
  await addUpdatedAtTrigger(db, 'gw_webhook_endpoint');
  await sql`create index gw_webhook_endpoint_owner_idx on gw_webhook_endpoint (owner_id, created_at desc, id desc)`.execute(
    db,
  );
  await sql`create index gw_webhook_endpoint_enabled_idx on gw_webhook_endpoint (owner_id) where enabled`.execute(
    db,
  );

  await db.schema
    .createTable('gw_webhook_secret')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('endpoint_id', 'uuid', (c) =>
      c.notNull().references('gw_webhook_endpoint.id').onDelete('cascade'),
    )
    // `whsec_...` sealed with AES-256-GCM under a key derived from APP_SECRET.
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Null: current. Set at rotation to the end of the overlap.
    .addColumn('expires_at', 'timestamptz')
    .execute();
  await sql`create index gw_webhook_secret_endpoint_idx on gw_webhook_secret (endpoint_id)`.execute(
    db,
  );

  await db.schema
    .createTable('gw_webhook_message')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    // The order of messages of an endpoint (ordered endpoints get them in this order).
    .addColumn('seq', 'bigserial', (c) => c.notNull())
    .addColumn('endpoint_id', 'uuid', (c) =>
      c.notNull().references('gw_webhook_endpoint.id').onDelete('cascade'),
    )
    .addColumn('event_id', 'uuid', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('event_time', 'timestamptz', (c) => c.notNull())
    // The exact body sent (and signed) at every attempt.
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending', 'succeeded', 'failed')`),
    )
    // Every claim increments it: results are written only by the claim that holds this number.
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // Attempts since the message was (re)queued: the index into the retry schedule.
    .addColumn('round_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    // While an attempt runs: its lease. A worker that dies leaves it to expire.
    .addColumn('locked_until', 'timestamptz')
    .addColumn('last_status', 'integer')
    .addColumn('last_error_class', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('first_attempt_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addUniqueConstraint('gw_webhook_message_event_endpoint_key', ['event_id', 'endpoint_id'])
    .execute();
  await sql`create index gw_webhook_message_due_idx on gw_webhook_message (next_attempt_at) where status = 'pending'`.execute(
    db,
  );
  await sql`create index gw_webhook_message_pending_idx on gw_webhook_message (endpoint_id, seq) where status = 'pending'`.execute(
    db,
  );
  await sql`create index gw_webhook_message_list_idx on gw_webhook_message (endpoint_id, created_at desc, id desc)`.execute(
    db,
  );
  // Claims change only unindexed columns: with room on each page they are HOT updates, which
  // add no index entries (the purge reads created_at by a scan once a day: no index for it).
  await sql`alter table gw_webhook_message set (fillfactor = 80)`.execute(db);

  await db.schema
    .createTable('gw_webhook_attempt')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('message_id', 'uuid', (c) =>
      c.notNull().references('gw_webhook_message.id').onDelete('cascade'),
    )
    .addColumn('endpoint_id', 'uuid', (c) => c.notNull())
    .addColumn('attempted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('response_body', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('error_class', 'text')
    .execute();
  await sql`create index gw_webhook_attempt_message_idx on gw_webhook_attempt (message_id, attempted_at)`.execute(
    db,
  );
  await sql`create index gw_webhook_attempt_time_idx on gw_webhook_attempt (attempted_at)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_webhook_attempt').execute();
  await db.schema.dropTable('gw_webhook_message').execute();
  await db.schema.dropTable('gw_webhook_secret').execute();
  await db.schema.dropTable('gw_webhook_endpoint').execute();
}
