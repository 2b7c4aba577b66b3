import { sql, type Kysely } from 'kysely';

/**
 * Domain events: the outbox (`gw_event`, written in the publishing transaction) and one row per
 * (event, subscriber) recording its hand-over (`gw_event_delivery`), so a completed pair is never
 * handed over again, across crashes and processes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_event')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) =>
      c.notNull().check(sql`type ~ '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,3}$'`),
    )
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    // No foreign keys: events outlive the accounts and objects they name.
    .addColumn('subject_type', 'text')
    .addColumn('subject_id', 'text')
    .addColumn('actor_id', 'text')
    .addColumn('owner_id', 'text')
    .addColumn('request_id', 'text')
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('dispatched_at', 'timestamptz')
    .execute();
  // The dispatcher's queue of events not yet handed to their subscribers: small and hot.
  await sql`create index gw_event_undispatched_idx on gw_event (id) where dispatched_at is null`.execute(
    db,
  );
  // The retention purge.
  await sql`create index gw_event_occurred_idx on gw_event (occurred_at)`.execute(db);
  await db.schema
    .createTable('gw_event_delivery')
    .addColumn('event_id', 'uuid', (c) => c.notNull().references('gw_event.id').onDelete('cascade'))
    .addColumn('subscriber', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) =>
      c
        .notNull()
        .defaultTo('pending')
        .check(sql`state in ('pending', 'done', 'failed')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('due_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('completed_at', 'timestamptz')
    .addPrimaryKeyConstraint('gw_event_delivery_pk', ['event_id', 'subscriber'])
    .execute();
  await sql`create index gw_event_delivery_due_idx on gw_event_delivery (due_at) where state = 'pending'`.execute(
    db,
  );
  await sql`create index gw_event_delivery_failed_idx on gw_event_delivery (subscriber, event_id) where state = 'failed'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_event_delivery').execute();
  await db.schema.dropTable('gw_event').execute();
}
