import { sql, type Kysely } from 'kysely';

/**
 * The audit trail: append-only. A trigger refuses UPDATE, DELETE and TRUNCATE for every role
 * that does not own the table's trigger (a superuser could drop it; the application role cannot
 * edit history without a migration, which is itself reviewed).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_audit_event')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('action', 'text', (c) =>
      c.notNull().check(sql`action ~ '^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)+$'`),
    )
    // No foreign keys: the trail outlives the accounts and objects it names.
    .addColumn('actor_id', 'uuid')
    .addColumn('subject_type', 'text')
    .addColumn('subject_id', 'text')
    .addColumn('ip', 'text')
    .addColumn('request_id', 'text')
    .addColumn('data', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await sql`create index gw_audit_event_time_idx on gw_audit_event (occurred_at desc, id desc)`.execute(
    db,
  );
  await sql`create index gw_audit_event_actor_idx on gw_audit_event (actor_id, occurred_at desc, id desc) where actor_id is not null`.execute(
    db,
  );
  await sql`create index gw_audit_event_subject_idx on gw_audit_event (subject_type, subject_id, occurred_at desc, id desc) where subject_id is not null`.execute(
    db,
  );
  await sql`
    create function gw_audit_event_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'gw_audit_event is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  await sql`create trigger gw_audit_event_no_update before update or delete on gw_audit_event for each row execute function gw_audit_event_append_only()`.execute(
    db,
  );
  await sql`create trigger gw_audit_event_no_truncate before truncate on gw_audit_event for each statement execute function gw_audit_event_append_only()`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_audit_event').execute();
  await sql`drop function gw_audit_event_append_only()`.execute(db);
}
