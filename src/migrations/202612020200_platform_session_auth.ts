import { sql, type Kysely } from 'kysely';

/**
 * How and when a session last proved who it is: `amr` lists the methods (RFC 8176 names:
 * `pwd`, `otp`, `fed` for OpenID Connect), `authenticated_at` feeds step-up checks (sensitive
 * changes need an authentication at most minutes old).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('gw_session')
    .addColumn('authenticated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('amr', sql`text[]`, (c) => c.notNull().defaultTo(sql`array['pwd']::text[]`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('gw_session')
    .dropColumn('amr')
    .dropColumn('authenticated_at')
    .execute();
}
