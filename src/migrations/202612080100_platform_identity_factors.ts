import { sql, type Kysely } from 'kysely';

/**
 * More second factors: a phone number per account for SMS codes (pending until a first code
 * confirms it), the codes sent (keyed hashes only, single use, short-lived; their rows also count
 * the sends per number and per account), passkeys (WebAuthn credentials: the public key, the
 * signature counter, a flag set when the counter went backwards) and the WebAuthn ceremonies'
 * challenges (single use, short-lived, bound to their ceremony and, for a second factor, to the
 * sign-in's MFA challenge).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_mfa_sms')
    .addColumn('user_id', 'uuid', (c) =>
      c.primaryKey().references('gw_user.id').onDelete('cascade'),
    )
    // E.164 (`+14155550123`), normalised by libphonenumber-js.
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('enabled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('gw_mfa_sms_code')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) =>
      c.notNull().check(sql`purpose in ('enrol', 'sign-in', 'step-up')`),
    )
    // For `sign-in`: the hash of the mfaToken the code answers (a code serves one challenge).
    .addColumn('challenge_hash', 'text')
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_mfa_sms_code_user_idx')
    .on('gw_mfa_sms_code')
    .columns(['user_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('gw_mfa_sms_code_phone_idx')
    .on('gw_mfa_sms_code')
    .columns(['phone', 'created_at'])
    .execute();

  await db.schema
    .createTable('gw_passkey')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    // base64url of the authenticator's credential id.
    .addColumn('credential_id', 'text', (c) => c.notNull().unique())
    // The COSE public key as the authenticator sent it.
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'boolean', (c) => c.notNull())
    // Set when an assertion's counter did not move forward (a possible clone): refused from then on.
    .addColumn('flagged_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('gw_passkey_user_idx').on('gw_passkey').column('user_id').execute();

  await db.schema
    .createTable('gw_webauthn_challenge')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) =>
      c.notNull().check(sql`purpose in ('registration', 'sign-in', 'second-factor')`),
    )
    .addColumn('challenge', 'text', (c) => c.notNull())
    .addColumn('user_id', 'uuid', (c) => c.references('gw_user.id').onDelete('cascade'))
    // For `second-factor`: the hash of the sign-in's mfaToken.
    .addColumn('mfa_token_hash', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gw_webauthn_challenge_expires_idx')
    .on('gw_webauthn_challenge')
    .column('expires_at')
    .execute();
  await db.schema
    .createIndex('gw_mfa_challenge_expires_idx')
    .on('gw_mfa_challenge')
    .column('expires_at')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('gw_mfa_challenge_expires_idx').execute();
  await db.schema.dropTable('gw_webauthn_challenge').execute();
  await db.schema.dropTable('gw_passkey').execute();
  await db.schema.dropTable('gw_mfa_sms_code').execute();
  await db.schema.dropTable('gw_mfa_sms').execute();
}
