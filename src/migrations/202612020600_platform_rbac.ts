import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, newId, withBaseColumns } from '../platform/db/index.ts';

// Copied, not imported: a migration must not change when the code's lists change later.
const ROLE_NAME = '^[a-z][a-z0-9_-]{1,31}$';
const PERMISSION = '^[a-z][a-z0-9-]{0,47}:([a-z][a-z0-9-]{0,47}|\\*)$';
// Permissions sorted, as the API stores them.
const SEEDS = [
  {
    name: 'admin',
    description: 'Operators: every platform permission. Needs a second factor (MFA).',
    permissions: [
      'audit:read',
      'jobs:admin',
      'roles:admin',
      'roles:read',
      'users:admin',
      'users:read',
    ],
    mfaRequired: true,
  },
  {
    name: 'moderator',
    description: 'Reads accounts and roles; apps add their moderation permissions.',
    permissions: ['roles:read', 'users:read'],
    mfaRequired: false,
  },
  {
    name: 'user',
    description: 'Every account gets it at registration; apps add their permissions.',
    permissions: [],
    mfaRequired: false,
  },
];

/** Roles holding `resource:action` permissions, and which accounts hold which roles. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withBaseColumns(db.schema.createTable('gw_role'))
    .addColumn('name', 'text', (c) =>
      c
        .notNull()
        .unique()
        .check(sql`name ~ ${sql.lit(ROLE_NAME)}`),
    )
    .addColumn('description', 'text', (c) =>
      c
        .notNull()
        .defaultTo('')
        .check(sql`length(description) <= 500`),
    )
    .addColumn('permissions', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('mfa_required', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('builtin', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  // PostgreSQL refuses subqueries in CHECK constraints: an immutable function checks each element.
  await sql`create function gw_permissions_valid(perms text[]) returns boolean
    language sql immutable as $$
      select coalesce(bool_and(p ~ ${sql.lit(PERMISSION)}), true) from unnest(perms) as p
    $$`.execute(db);
  await sql`alter table gw_role add constraint gw_role_permissions_ck
    check (cardinality(permissions) <= 200 and gw_permissions_valid(permissions))`.execute(db);
  await addUpdatedAtTrigger(db, 'gw_role');

  await db.schema
    .createTable('gw_user_role')
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('gw_user.id').onDelete('cascade'))
    // restrict: a role in use is refused deletion (the API says so first, with a 409).
    .addColumn('role_id', 'uuid', (c) => c.notNull().references('gw_role.id').onDelete('restrict'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('gw_user_role_pk', ['user_id', 'role_id'])
    .execute();
  await db.schema
    .createIndex('gw_user_role_role_idx')
    .on('gw_user_role')
    .column('role_id')
    .execute();

  // The admin listing's default order (newest accounts first), as a keyset index.
  await sql`create index gw_user_created_idx on gw_user (created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );

  for (const seed of SEEDS) {
    await sql`insert into gw_role (id, name, description, permissions, mfa_required, builtin)
      values (${newId()}, ${seed.name}, ${seed.description}, ${seed.permissions}::text[], ${seed.mfaRequired}, true)`.execute(
      db,
    );
  }
  // Accounts that existed before roles get the default role, like new registrations.
  await sql`insert into gw_user_role (user_id, role_id)
    select u.id, r.id from gw_user u cross join gw_role r where r.name = 'user'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index gw_user_created_idx`.execute(db);
  await db.schema.dropTable('gw_user_role').execute();
  await db.schema.dropTable('gw_role').execute();
  await sql`drop function if exists gw_permissions_valid(text[])`.execute(db);
}
