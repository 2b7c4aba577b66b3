import { sql, type Kysely } from 'kysely';
import {
  addUpdatedAtTrigger,
  withBaseColumns,
  withSoftDelete,
} from '../../../platform/db/index.ts';

/**
 * Posts and their targets (one per account a post goes to). A target is the unit the pipeline
 * publishes: its own status, job, attempts and error; `version` changes on every transition so a
 * job enqueued for an older state finds it stale and exits.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withSoftDelete(
    withBaseColumns(db.schema.createTable('publishing_post'))
      .addColumn('user_id', 'uuid', (c) => c.notNull())
      .addColumn('text', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('media_file_ids', sql`uuid[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
      .addColumn('status', 'text', (c) =>
        c
          .notNull()
          .check(
            sql`status in ('draft', 'scheduled', 'publishing', 'published', 'failed', 'cancelled')`,
          ),
      )
      .addColumn('scheduled_at', 'timestamptz')
      .addColumn('time_zone', 'text', (c) => c.notNull()),
  ).execute();
  await addUpdatedAtTrigger(db, 'publishing_post');
  // GET /posts, newest first (the default), and by scheduled time (drafts have none: sorted as epoch).
  await sql`create index publishing_post_user_created_idx on publishing_post (user_id, created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );
  await sql`create index publishing_post_user_scheduled_idx on publishing_post (user_id, scheduled_at, id) where deleted_at is null`.execute(
    db,
  );
  // The status filter (and the calendar by status).
  await sql`create index publishing_post_user_status_idx on publishing_post (user_id, status, created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );

  await withBaseColumns(db.schema.createTable('publishing_target'))
    .addColumn('post_id', 'uuid', (c) =>
      c.notNull().references('publishing_post.id').onDelete('cascade'),
    )
    .addColumn('account_id', 'uuid', (c) =>
      c.notNull().references('publishing_account.id').onDelete('cascade'),
    )
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('platform', 'text', (c) =>
      c.notNull().check(sql`platform in ('instagram', 'facebook', 'youtube')`),
    )
    .addColumn('options', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`status in ('draft', 'scheduled', 'publishing', 'published', 'failed', 'cancelled')`,
        ),
    )
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('job_id', 'uuid')
    // When the current job is due (the post's time, or a retry / quota / breaker wait).
    .addColumn('due_at', 'timestamptz')
    // Calls made to the platform / failures counted toward the retry limit.
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    // Claimed by a worker until then; past it the sweep settles the target by its marker.
    .addColumn('lease_until', 'timestamptz')
    // The last call may have reached the platform: look it up before any new call.
    .addColumn('needs_lookup', 'boolean', (c) => c.notNull().defaultTo(false))
    // Paused by the account needing reconnection: scheduled again when it is reconnected.
    .addColumn('paused', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('published_at', 'timestamptz')
    .addColumn('external_id', 'text')
    .addColumn('external_url', 'text')
    .addColumn('error', 'jsonb')
    .execute();
  await addUpdatedAtTrigger(db, 'publishing_target');
  // One target per account per post.
  await sql`create unique index publishing_target_post_account_idx on publishing_target (post_id, account_id)`.execute(
    db,
  );
  // The platform and account filters of GET /posts (exists on the post's targets) and the hooks.
  await sql`create index publishing_target_account_idx on publishing_target (account_id, status, post_id)`.execute(
    db,
  );
  await sql`create index publishing_target_platform_idx on publishing_target (user_id, platform, post_id)`.execute(
    db,
  );
  // The sweep: targets left `publishing` past their lease.
  await sql`create index publishing_target_lease_idx on publishing_target (lease_until) where status = 'publishing'`.execute(
    db,
  );
  // The posts-due gauge.
  await sql`create index publishing_target_due_idx on publishing_target (due_at) where status = 'scheduled'`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('publishing_target').execute();
  await db.schema.dropTable('publishing_post').execute();
}
