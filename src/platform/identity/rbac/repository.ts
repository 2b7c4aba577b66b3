import { sql, type Transaction } from 'kysely';
import type { IdentityDb, IdentityTables } from '../db.ts';

type Executor = IdentityDb;

/** What a permission check needs of one of the user's roles. */
export interface GrantRow {
  name: string;
  permissions: string[];
  mfa_required: boolean;
}

/** The roles of a live account (none for an unknown or deleted one). */
export async function grantRows(db: Executor, userId: string): Promise<GrantRow[]> {
  return db
    .selectFrom('gw_user_role as ur')
    .innerJoin('gw_role as r', 'r.id', 'ur.role_id')
    .innerJoin('gw_user as u', 'u.id', 'ur.user_id')
    .select(['r.name', 'r.permissions', 'r.mfa_required'])
    .where('ur.user_id', '=', userId)
    .where('u.deleted_at', 'is', null)
    .execute();
}

/** When a live account was created (undefined for an unknown or deleted one). */
export async function accountCreatedAt(db: Executor, userId: string): Promise<Date | undefined> {
  const row = await db
    .selectFrom('gw_user')
    .select('created_at')
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return row?.created_at;
}

/** The role every new account gets. */
export const DEFAULT_ROLE = 'user';

/** Gives a new account the default role (in its registration transaction). */
export async function assignDefaultRole(db: Executor, userId: string): Promise<void> {
  await db
    .insertInto('gw_user_role')
    .columns(['user_id', 'role_id'])
    .expression((eb) =>
      eb
        .selectFrom('gw_role')
        .select([sql<string>`${userId}::uuid`.as('user_id'), 'id'])
        .where('name', '=', DEFAULT_ROLE),
    )
    .onConflict((oc) => oc.doNothing())
    .execute();
}

// Roles ---------------------------------------------------------------------------------------

export interface RoleRow {
  id: string;
  name: string;
  description: string;
  permissions: string[];
  mfa_required: boolean;
  builtin: boolean;
  user_count: number;
  created_at: Date;
  updated_at: Date;
}

const roleColumns = [
  'r.id',
  'r.name',
  'r.description',
  'r.permissions',
  'r.mfa_required',
  'r.builtin',
  'r.created_at',
  'r.updated_at',
] as const;

function roles(db: Executor) {
  return db
    .selectFrom('gw_role as r')
    .select(roleColumns)
    .select((eb) =>
      eb
        .selectFrom('gw_user_role as ur')
        .select(sql<number>`count(*)::int`.as('n'))
        .whereRef('ur.role_id', '=', 'r.id')
        .as('user_count'),
    );
}

export async function listRoles(db: Executor): Promise<RoleRow[]> {
  const rows = await roles(db).orderBy('r.name').limit(1_000).execute();
  return rows.map((r) => ({ ...r, user_count: r.user_count ?? 0 }));
}

export async function findRole(db: Executor, id: string): Promise<RoleRow | undefined> {
  const row = await roles(db).where('r.id', '=', id).executeTakeFirst();
  return row && { ...row, user_count: row.user_count ?? 0 };
}

/** The role, locked until the transaction ends (edits and deletes are serialised). */
export async function lockRole(trx: Transaction<IdentityTables>, id: string) {
  return trx
    .selectFrom('gw_role')
    .select(['id', 'name', 'description', 'permissions', 'mfa_required', 'builtin'])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export async function insertRole(
  db: Executor,
  role: {
    id: string;
    name: string;
    description: string;
    permissions: string[];
    mfaRequired: boolean;
  },
): Promise<void> {
  await db
    .insertInto('gw_role')
    .values({
      id: role.id,
      name: role.name,
      description: role.description,
      permissions: role.permissions,
      mfa_required: role.mfaRequired,
      builtin: false,
    })
    .execute();
}

export async function updateRole(
  db: Executor,
  id: string,
  set: { name?: string; description?: string; permissions?: string[]; mfa_required?: boolean },
): Promise<void> {
  if (Object.keys(set).length === 0) return;
  await db.updateTable('gw_role').set(set).where('id', '=', id).execute();
}

export async function roleHolders(db: Executor, roleId: string): Promise<number> {
  const row = await db
    .selectFrom('gw_user_role')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('role_id', '=', roleId)
    .executeTakeFirstOrThrow();
  return row.n;
}

export async function deleteRole(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('gw_role').where('id', '=', id).execute();
}

/** Role ids by name, for the names that exist. */
export async function roleIdsByName(
  db: Executor,
  names: readonly string[],
): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const rows = await db
    .selectFrom('gw_role')
    .select(['id', 'name'])
    .where('name', 'in', [...names])
    .execute();
  return new Map(rows.map((r) => [r.name, r.id]));
}

// Accounts ------------------------------------------------------------------------------------

/** The live account, locked until the transaction ends; undefined when none. */
export async function lockUser(trx: Transaction<IdentityTables>, id: string) {
  return trx
    .selectFrom('gw_user')
    .select('id')
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

/** The role names an account holds, sorted. */
export async function userRoleNames(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('gw_user_role as ur')
    .innerJoin('gw_role as r', 'r.id', 'ur.role_id')
    .select('r.name')
    .where('ur.user_id', '=', userId)
    .orderBy('r.name')
    .execute();
  return rows.map((r) => r.name);
}

export async function addUserRoles(
  db: Executor,
  userId: string,
  roleIds: readonly string[],
): Promise<void> {
  if (roleIds.length === 0) return;
  await db
    .insertInto('gw_user_role')
    .values(roleIds.map((roleId) => ({ user_id: userId, role_id: roleId })))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function removeUserRoles(
  db: Executor,
  userId: string,
  roleIds: readonly string[],
): Promise<void> {
  if (roleIds.length === 0) return;
  await db
    .deleteFrom('gw_user_role')
    .where('user_id', '=', userId)
    .where('role_id', 'in', [...roleIds])
    .execute();
}

/** Locks an account until an administrator unlocks it (sign-in then answers like a wrong password). */
export async function lockAccount(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ locked_until: sql<Date>`'infinity'::timestamptz` })
    .where('id', '=', userId)
    .execute();
}

/** Unlocks an account and clears its lockout counters (the next lockout is the first again). */
export async function unlockAccount(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ locked_until: null, failed_login_count: 0, lockout_count: 0 })
    .where('id', '=', userId)
    .execute();
}

/** An account as the admin API shows it. */
export interface AdminUserRow {
  id: string;
  email: string;
  username: string;
  emailVerified: boolean;
  locked: boolean;
  lockedUntil: Date | null;
  failedLoginCount: number;
  roles: string[];
  createdAt: Date;
  lastLoginAt: Date | null;
}

/**
 * Live accounts with their lock state and role names: a derived table, so the listing helpers
 * can filter and sort on `locked` like on a column.
 */
export function adminUsers(db: Executor) {
  const base = db
    .selectFrom('gw_user as u')
    .select([
      'u.id',
      'u.email',
      'u.username',
      'u.email_verified_at',
      'u.locked_until',
      'u.failed_login_count',
      'u.created_at',
      'u.last_login_at',
      sql<boolean>`coalesce(u.locked_until > now(), false)`.as('locked'),
    ])
    .where('u.deleted_at', 'is', null);
  return db.selectFrom(base.as('a')).select([
    'a.id',
    'a.email',
    'a.username',
    sql<boolean>`a.email_verified_at is not null`.as('emailVerified'),
    'a.locked',
    // An administrator's lock has no end (infinity, which JavaScript dates cannot hold): null.
    sql<Date | null>`case when a.locked_until = 'infinity' then null else a.locked_until end`.as(
      'lockedUntil',
    ),
    'a.failed_login_count as failedLoginCount',
    sql<
      string[]
    >`array(select r.name from gw_user_role ur join gw_role r on r.id = ur.role_id where ur.user_id = a.id order by r.name)`.as(
      'roles',
    ),
    'a.created_at as createdAt',
    'a.last_login_at as lastLoginAt',
  ]);
}

/** Restricts `adminUsers` to holders of a role. */
export function holdingRole(roleName: string) {
  return sql<boolean>`exists (select 1 from gw_user_role ur join gw_role r on r.id = ur.role_id where ur.user_id = a.id and r.name = ${roleName})`;
}

export async function findAdminUser(db: Executor, id: string): Promise<AdminUserRow | undefined> {
  return adminUsers(db).where('a.id', '=', id).executeTakeFirst();
}

/** The live account with this (normalised) address or user name, locked for the transaction. */
export async function lockAccountByLogin(
  trx: Transaction<IdentityTables>,
  login: string,
): Promise<{ id: string } | undefined> {
  return trx
    .selectFrom('gw_user')
    .select('id')
    .where(login.includes('@') ? 'email' : 'username', '=', login)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * Applies a module's default grant of `permission` to the built-in role `role` once: the first
 * time the pair is seen it is recorded (`gw_permission_default`) and added to the role; later
 * starts find the record and change nothing, so a permission an operator took away stays away.
 * True when the role changed.
 */
export async function grantBuiltinPermission(
  db: Executor,
  role: string,
  permission: string,
): Promise<boolean> {
  const result = await sql`with first_time as (
      insert into gw_permission_default (permission, role)
      select ${permission}, name from gw_role where name = ${role} and builtin
      on conflict do nothing
      returning role
    )
    update gw_role
      set permissions = array(select distinct x from unnest(permissions || array[${permission}]::text[]) as x order by x)
    where name in (select role from first_time) and not (${permission} = any(permissions))`.execute(
    db,
  );
  return (result.numAffectedRows ?? 0n) > 0n;
}

// The last administrator -----------------------------------------------------------------------

/**
 * Locks the role named `name` (until the transaction ends) and says whether `userId` is one of
 * its active holders and how many others there are. Active: a live account not locked by an
 * administrator (a lockout after failed sign-ins ends by itself, so it counts as active). Every
 * change that can take an active holder away locks the role row first, so two such changes are
 * decided one after the other, each counting what the other committed.
 */
export async function lockRoleHolders(
  trx: Transaction<IdentityTables>,
  name: string,
  userId: string,
): Promise<{ holds: boolean; others: number } | undefined> {
  const role = await trx
    .selectFrom('gw_role')
    .select('id')
    .where('name', '=', name)
    .forUpdate()
    .executeTakeFirst();
  if (!role) return undefined;
  const row = await trx
    .selectFrom('gw_user_role as ur')
    .innerJoin('gw_user as u', 'u.id', 'ur.user_id')
    .select([
      sql<number>`count(*) filter (where ur.user_id = ${userId}::uuid)::int`.as('self'),
      sql<number>`count(*) filter (where ur.user_id <> ${userId}::uuid)::int`.as('others'),
    ])
    .where('ur.role_id', '=', role.id)
    .where('u.deleted_at', 'is', null)
    .where((eb) =>
      eb.or([
        eb('u.locked_until', 'is', null),
        eb('u.locked_until', '<>', sql<Date>`'infinity'::timestamptz`),
      ]),
    )
    .executeTakeFirstOrThrow();
  return { holds: row.self > 0, others: row.others };
}
