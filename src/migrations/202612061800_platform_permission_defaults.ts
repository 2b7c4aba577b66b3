import { sql, type Kysely } from 'kysely';

/**
 * Which default grants (a module's permission to a built-in role) were applied once: a grant is
 * applied only when it is not recorded here, so an operator who takes a permission away from a
 * built-in role keeps it away across restarts. Grants already held are recorded as applied.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_permission_default')
    .addColumn('permission', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('gw_permission_default_pk', ['permission', 'role'])
    .execute();
  await sql`insert into gw_permission_default (permission, role)
    select p, r.name from gw_role r cross join unnest(r.permissions) as p where r.builtin
    on conflict do nothing`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_permission_default').execute();
}
