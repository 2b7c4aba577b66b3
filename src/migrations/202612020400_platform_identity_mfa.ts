import { sql, type Kysely } from 'kysely';

/**
 * Multi-factor authentication: one TOTP authenticator per account (its secret sealed with
 * AES-256-GCM, pending until a first code enables it, with the last time step used so a code
 * cannot be replayed), single-use backup codes (keyed hashes only), and the short-lived
 * challenges a password sign-in hands out when the account needs a second factor.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_mfa_totp')
    .addColumn('user_id', 'uuid', (c) =>
      c.primaryKey().references('gw_user.id').onDelete('cascade'),
    )
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('enabled_at', 'timestamptz')
    // The RFC 6238 counter of the last accepted code: codes of this step or earlier are refused.
    .addColumn('last_used_step', 'bigint')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('gw_mfa_backup_code')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_mfa_backup_code_uq')
    .on('gw_mfa_backup_code')
    .columns(['user_id', 'code_hash'])
    .unique()
    .execute();

  await db.schema
    .createTable('gw_mfa_challenge')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('remember_me', 'boolean', (c) => c.notNull())
    // The client the password was given from: the challenge is answered from the same one only.
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_mfa_challenge_user_idx')
    .on('gw_mfa_challenge')
    .columns(['user_id', 'expires_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_mfa_challenge').execute();
  await db.schema.dropTable('gw_mfa_backup_code').execute();
  await db.schema.dropTable('gw_mfa_totp').execute();
}
