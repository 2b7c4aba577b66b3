import { sql, type Kysely } from 'kysely';

/**
 * Sign-in through OpenID Connect and GitHub: linked provider identities, the server-side state
 * of authorization requests in flight, and accounts without a password (provider only).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('gw_user')
    .alterColumn('password_hash', (c) => c.dropNotNull())
    .execute();

  await db.schema
    .createTable('gw_user_identity')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull().check(sql`length(subject) between 1 and 255`))
    .addColumn('email', 'text')
    .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_login_at', 'timestamptz')
    .addUniqueConstraint('gw_user_identity_provider_subject_uq', ['provider', 'subject'])
    .execute();
  await db.schema
    .createIndex('gw_user_identity_user_idx')
    .on('gw_user_identity')
    .column('user_id')
    .execute();

  // One row per authorization request: found by the SHA-256 of its state, spent once.
  await db.schema
    .createTable('gw_oidc_state')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('link_user_id', 'uuid', (c) => c.references('gw_user.id').onDelete('cascade'))
    .addColumn('link_session_id', 'uuid', (c) => c.references('gw_session.id').onDelete('cascade'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_oidc_state_expires_idx')
    .on('gw_oidc_state')
    .column('expires_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_oidc_state').execute();
  await db.schema.dropTable('gw_user_identity').execute();
  // Provider-only accounts get a marker no password verifies against (not a PHC string).
  await sql`update gw_user set password_hash = '!' where password_hash is null`.execute(db);
  await db.schema
    .alterTable('gw_user')
    .alterColumn('password_hash', (c) => c.setNotNull())
    .execute();
}
