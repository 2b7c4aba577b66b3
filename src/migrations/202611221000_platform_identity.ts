import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, withBaseColumns, withSoftDelete } from '../platform/db/index.ts';

/** Identity: accounts, mailed tokens, sessions with their refresh tokens, sign-in history. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withSoftDelete(withBaseColumns(db.schema.createTable('gw_user')))
    .addColumn('email', 'text', (c) => c.notNull().check(sql`length(email) between 3 and 254`))
    .addColumn('username', 'text', (c) => c.notNull().check(sql`username ~ '^[a-z0-9_.-]{3,32}$'`))
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('email_verified_at', 'timestamptz')
    .addColumn('tier', 'text', (c) =>
      c
        .notNull()
        .defaultTo('free')
        .check(sql`tier in ('free', 'premium', 'enterprise')`),
    )
    .addColumn('failed_login_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lockout_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'timestamptz')
    .addColumn('last_login_at', 'timestamptz')
    .execute();
  await addUpdatedAtTrigger(db, 'gw_user');
  // A deleted account frees its address (until the purge), never its public user name.
  await sql`create unique index gw_user_email_uq on gw_user (email) where deleted_at is null`.execute(
    db,
  );
  await db.schema
    .createIndex('gw_user_username_uq')
    .on('gw_user')
    .column('username')
    .unique()
    .execute();

  await db.schema
    .createTable('gw_user_token')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('verify-email')`))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_user_token_user_idx')
    .on('gw_user_token')
    .column('user_id')
    .execute();

  await db.schema
    .createTable('gw_session')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('remember_me', 'boolean', (c) => c.notNull())
    .addColumn('user_agent', 'text')
    .addColumn('ip', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('revoked_reason', 'text')
    .execute();
  await db.schema
    .createIndex('gw_session_user_idx')
    .on('gw_session')
    .columns(['user_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('gw_refresh_token')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'uuid', (c) =>
      c.notNull().references('gw_session.id').onDelete('cascade'),
    )
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('spent_at', 'timestamptz')
    .addColumn('successor', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_refresh_token_session_idx')
    .on('gw_refresh_token')
    .column('session_id')
    .execute();

  await db.schema
    .createTable('gw_login_event')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('outcome', 'text', (c) =>
      c
        .notNull()
        .check(sql`outcome in ('success', 'failure', 'locked', 'unverified', 'refresh-reuse')`),
    )
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('session_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_login_event_user_idx')
    .on('gw_login_event')
    .columns(['user_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_login_event').execute();
  await db.schema.dropTable('gw_refresh_token').execute();
  await db.schema.dropTable('gw_session').execute();
  await db.schema.dropTable('gw_user_token').execute();
  await db.schema.dropTable('gw_user').execute();
}
