import { sql, type Kysely } from 'kysely';
import {
  addUpdatedAtTrigger,
  withBaseColumns,
  withSoftDelete,
} from '../../../platform/db/index.ts';

/** Connected social accounts: one row per platform account a user connected. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withSoftDelete(
    withBaseColumns(db.schema.createTable('publishing_account'))
      .addColumn('user_id', 'uuid', (c) => c.notNull())
      .addColumn('platform', 'text', (c) =>
        c.notNull().check(sql`platform in ('instagram', 'facebook', 'youtube')`),
      )
      .addColumn('external_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('username', 'text')
      .addColumn('avatar_url', 'text')
      .addColumn('status', 'text', (c) =>
        c
          .notNull()
          .defaultTo('active')
          .check(sql`status in ('active', 'reauth_required', 'disconnected')`),
      )
      .addColumn('status_reason', 'text')
      // Tokens sealed with AES-256-GCM; the key id is stored in the sealed text itself.
      .addColumn('access_token_sealed', 'text')
      .addColumn('refresh_token_sealed', 'text')
      .addColumn('token_expires_at', 'timestamptz')
      .addColumn('refresh_expires_at', 'timestamptz')
      .addColumn('scopes', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
      .addColumn('last_refreshed_at', 'timestamptz')
      .addColumn('reauth_notified_at', 'timestamptz'),
  ).execute();
  await addUpdatedAtTrigger(db, 'publishing_account');
  // One live row per platform account and user (a reconnect updates it, never duplicates it).
  await sql`create unique index publishing_account_unique_idx on publishing_account (user_id, platform, external_id) where deleted_at is null`.execute(
    db,
  );
  // GET /accounts: the user's accounts, newest first.
  await sql`create index publishing_account_user_idx on publishing_account (user_id, created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );
  // The refresh job: active accounts whose token expires soonest.
  await sql`create index publishing_account_expiry_idx on publishing_account (token_expires_at) where deleted_at is null and status = 'active'`.execute(
    db,
  );
  // Connect links in flight: the OAuth state (stored hashed) bound to the user who asked, with
  // the PKCE verifier (sealed). Single use (used_at), short-lived (expires_at).
  await db.schema
    .createTable('publishing_oauth_state')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('code_verifier_sealed', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  // The purge of old states (by the refresh job).
  await sql`create index publishing_oauth_state_expiry_idx on publishing_oauth_state (expires_at)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('publishing_oauth_state').execute();
  await db.schema.dropTable('publishing_account').execute();
}
