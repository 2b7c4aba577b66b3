import './tables.ts';
import { sql, type Transaction } from 'kysely';
import { newId } from '../../db/index.ts';
import type { AuthMethod, UserTier, UserTokenPurpose } from '../tables.ts';
import type { IdentityDb, IdentityTables } from '../db.ts';

type Executor = IdentityDb;

// Accounts ------------------------------------------------------------------------------------

export interface ProfileRow {
  id: string;
  email: string;
  username: string;
  email_verified_at: Date | null;
  tier: UserTier;
  created_at: Date;
}

/** The live account, without secrets. */
export async function findProfile(db: Executor, userId: string): Promise<ProfileRow | undefined> {
  return db
    .selectFrom('gw_user')
    .select(['id', 'email', 'username', 'email_verified_at', 'tier', 'created_at'])
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

export interface PasswordRow {
  id: string;
  email: string;
  username: string;
  /** Null for an account that signs in through a provider only (OpenID Connect). */
  password_hash: string | null;
  locked: boolean;
}

/** The live account with what a password check needs (hash, lock). */
/** `forUpdate` (in a transaction) locks the row until the commit: guesses are decided in turn. */
export async function findPasswordRow(
  db: Executor,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<PasswordRow | undefined> {
  const query = db
    .selectFrom('gw_user')
    .select([
      'id',
      'email',
      'username',
      'password_hash',
      sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'),
    ])
    .where('id', '=', userId)
    .where('deleted_at', 'is', null);
  return (options.forUpdate ? query.forUpdate() : query).executeTakeFirst();
}

/** Failure counters and lock cleared (a proven password or a spent reset token). */
export async function clearLockout(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ failed_login_count: 0, lockout_count: 0, locked_until: null })
    .where('id', '=', userId)
    .execute();
}

/**
 * Sets a new password hash: the replaced one goes to the history, which keeps the `keep` newest,
 * and the lockout is cleared. With `expected`, only when the stored hash is still that one (a
 * concurrent change wins otherwise); false when nothing was changed.
 */
export async function replacePassword(
  trx: Transaction<IdentityTables>,
  userId: string,
  newHash: string,
  options: { keep: number; expected?: string | null },
): Promise<boolean> {
  let current = trx
    .selectFrom('gw_user')
    .select('password_hash')
    .where('id', '=', userId)
    .where('deleted_at', 'is', null);
  if (options.expected !== undefined)
    current =
      options.expected === null
        ? current.where('password_hash', 'is', null)
        : current.where('password_hash', '=', options.expected);
  const row = await current.forUpdate().executeTakeFirst();
  if (!row) return false;
  // A provider-only account has no password yet: nothing to keep in the history.
  if (row.password_hash !== null)
    await trx
      .insertInto('gw_password_history')
      .values({ id: newId(), user_id: userId, password_hash: row.password_hash })
      .execute();
  await trx
    .updateTable('gw_user')
    .set({
      password_hash: newHash,
      failed_login_count: 0,
      lockout_count: 0,
      locked_until: null,
    })
    .where('id', '=', userId)
    .execute();
  await trx
    .deleteFrom('gw_password_history')
    .where('user_id', '=', userId)
    .where(
      'id',
      'not in',
      trx
        .selectFrom('gw_password_history')
        .select('id')
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(options.keep),
    )
    .execute();
  return true;
}

/** Hashes of the account's earlier passwords, newest first. */
export async function passwordHistory(
  db: Executor,
  userId: string,
  limit: number,
): Promise<string[]> {
  const rows = await db
    .selectFrom('gw_password_history')
    .select('password_hash')
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => r.password_hash);
}

/** Changes the user name; a taken one throws the unique violation of `gw_user_username_uq`. */
export async function updateUsername(
  db: Executor,
  userId: string,
  username: string,
): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ username })
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .execute();
}

/** Switches to a confirmed address; a live account with it throws the violation of `gw_user_email_uq`. */
export async function switchEmail(db: Executor, userId: string, email: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ email, email_verified_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .execute();
}

/** Marks the account deleted (its address is free from now on); false when it was not live. */
export async function softDeleteUser(db: Executor, userId: string): Promise<boolean> {
  const row = await db
    .updateTable('gw_user')
    .set({ deleted_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Deletes for good up to `limit` accounts deleted more than `retentionS` ago (their tokens,
 * sessions, sign-in history and password history go with them by cascade); returns their ids.
 */
export async function purgeDeletedUsers(
  trx: Transaction<IdentityTables>,
  retentionS: number,
  limit: number,
): Promise<string[]> {
  const rows = await trx
    .deleteFrom('gw_user')
    .where(
      'id',
      'in',
      trx
        .selectFrom('gw_user')
        .select('id')
        .where('deleted_at', '<', sql<Date>`now() - make_interval(secs => ${retentionS})`)
        .orderBy('deleted_at')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

// Sessions ------------------------------------------------------------------------------------

/** The session proved its password again now (step-up); returns the new time, or undefined. */
export async function markReauthenticated(
  db: Executor,
  sessionId: string,
  userId: string,
  methods: readonly AuthMethod[] = ['pwd'],
): Promise<Date | undefined> {
  const row = await db
    .updateTable('gw_session')
    .set({
      authenticated_at: sql<Date>`now()`,
      // The methods proven now, added to those the session already has (no duplicates).
      amr: sql<
        AuthMethod[]
      >`array(select distinct m from unnest(amr || ${sql.val([...methods])}::text[]) as m order by m)`,
    })
    .where('id', '=', sessionId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .returning('authenticated_at')
    .executeTakeFirst();
  return row?.authenticated_at;
}

// Mailed tokens -------------------------------------------------------------------------------

export interface TokenLookup {
  user_id: string;
  /** The address the token was sent to. */
  email: string;
  username: string;
  /** Unused and unexpired. */
  usable: boolean;
  /** Sent to the address the account has now (false once the address changed). */
  to_current_address: boolean;
}

/** A token of this purpose whatever its state, when its account is live. */
export async function findUserToken(
  db: Executor,
  purpose: UserTokenPurpose,
  tokenHash: string,
): Promise<TokenLookup | undefined> {
  return db
    .selectFrom('gw_user_token as t')
    .innerJoin('gw_user as u', 'u.id', 't.user_id')
    .select([
      't.user_id',
      't.email',
      'u.username',
      sql<boolean>`t.used_at is null and t.expires_at > now()`.as('usable'),
      sql<boolean>`t.email = u.email`.as('to_current_address'),
    ])
    .where('t.token_hash', '=', tokenHash)
    .where('t.purpose', '=', purpose)
    .where('u.deleted_at', 'is', null)
    .executeTakeFirst();
}

/** Spends every outstanding token of the user (of these purposes, or all). */
export async function spendUserTokens(
  db: Executor,
  userId: string,
  purposes?: readonly UserTokenPurpose[],
): Promise<void> {
  let query = db
    .updateTable('gw_user_token')
    .set({ used_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('used_at', 'is', null);
  if (purposes !== undefined) query = query.where('purpose', 'in', [...purposes]);
  await query.execute();
}
