import { sql, type Kysely } from 'kysely';

/** Platform base: the trigger function that keeps `updated_at` current on every table that opts in. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function gw_set_updated_at() returns trigger language plpgsql as $$
    begin
      new.updated_at := now();
      return new;
    end;
    $$
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function gw_set_updated_at()`.execute(db);
}
