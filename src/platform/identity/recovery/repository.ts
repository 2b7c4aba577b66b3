import { sql, type Transaction } from 'kysely';
import type { IdentityDb, IdentityTables } from '../db.ts';

type Executor = IdentityDb;
type Trx = Transaction<IdentityTables>;

// Address-change reports -------------------------------------------------------------------------

export async function insertEmailChangeReport(
  db: Executor,
  row: { id: string; userId: string; tokenHash: string; oldEmail: string; ttlS: number },
): Promise<void> {
  await db
    .insertInto('gw_email_change_report')
    .values({
      id: row.id,
      user_id: row.userId,
      token_hash: row.tokenHash,
      old_email: row.oldEmail,
      expires_at: sql<Date>`now() + make_interval(secs => ${row.ttlS})`,
    })
    .execute();
}

/** Spends a live report link of a live account (one statement: two clicks cannot both pass). */
export async function consumeEmailChangeReport(
  trx: Trx,
  tokenHash: string,
): Promise<{ user_id: string; old_email: string } | undefined> {
  return trx
    .updateTable('gw_email_change_report as r')
    .set({ used_at: sql<Date>`now()` })
    .from('gw_user as u')
    .whereRef('u.id', '=', 'r.user_id')
    .where('u.deleted_at', 'is', null)
    .where('r.token_hash', '=', tokenHash)
    .where('r.used_at', 'is', null)
    .where('r.expires_at', '>', sql<Date>`now()`)
    .returning(['r.user_id', 'r.old_email'])
    .executeTakeFirst();
}

/** Every unused report link of the account dies (after a report). */
export async function spendEmailChangeReports(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_email_change_report')
    .set({ used_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .execute();
}

/** Whether another live account has this address now. */
export async function emailTakenByOther(
  db: Executor,
  email: string,
  userId: string,
): Promise<boolean> {
  const row = await db
    .selectFrom('gw_user')
    .select('id')
    .where('email', '=', email)
    .where('deleted_at', 'is', null)
    .where('id', '<>', userId)
    .executeTakeFirst();
  return row !== undefined;
}

/** Locks the live account row; its address and user name (undefined when none). */
export async function lockAccountRow(
  trx: Trx,
  userId: string,
): Promise<{ id: string; email: string; username: string; verified: boolean } | undefined> {
  return trx
    .selectFrom('gw_user')
    .select(['id', 'email', 'username', sql<boolean>`email_verified_at is not null`.as('verified')])
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

/** Locks the account until an administrator unlocks it (or a password reset). */
export async function lockUntilUnlocked(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ locked_until: sql<Date>`'infinity'::timestamptz` })
    .where('id', '=', userId)
    .execute();
}

// Recoveries -------------------------------------------------------------------------------------

export interface RecoveryRow {
  id: string;
  user_id: string;
  kind: 'email' | 'admin';
  state: 'requested' | 'waiting' | 'cancelled' | 'completed';
  completes_at: Date | null;
}

const recoveryColumns = ['id', 'user_id', 'kind', 'state', 'completes_at'] as const;

/** The account's open recovery (requested or waiting), locked. */
export async function lockOpenRecovery(trx: Trx, userId: string): Promise<RecoveryRow | undefined> {
  return trx
    .selectFrom('gw_mfa_recovery')
    .select(recoveryColumns)
    .where('user_id', '=', userId)
    .where('state', 'in', ['requested', 'waiting'])
    .forUpdate()
    .executeTakeFirst();
}

/** The account's open recovery (requested or waiting). */
export async function openRecovery(db: Executor, userId: string): Promise<RecoveryRow | undefined> {
  return db
    .selectFrom('gw_mfa_recovery')
    .select(recoveryColumns)
    .where('user_id', '=', userId)
    .where('state', 'in', ['requested', 'waiting'])
    .executeTakeFirst();
}

/** A new requested recovery with its confirmation link; false when one is open (a race). */
export async function insertRequestedRecovery(
  db: Executor,
  row: { id: string; userId: string; confirmTokenHash: string; ttlS: number },
): Promise<boolean> {
  const inserted = await db
    .insertInto('gw_mfa_recovery')
    .values({
      id: row.id,
      user_id: row.userId,
      kind: 'email',
      state: 'requested',
      confirm_token_hash: row.confirmTokenHash,
      confirm_expires_at: sql<Date>`now() + make_interval(secs => ${row.ttlS})`,
    })
    .onConflict((oc) =>
      oc.column('user_id').where('state', 'in', ['requested', 'waiting']).doNothing(),
    )
    .returning('id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** A new link for a recovery still waiting for its first (the earlier link dies). */
export async function renewConfirmation(
  db: Executor,
  id: string,
  confirmTokenHash: string,
  ttlS: number,
): Promise<void> {
  await db
    .updateTable('gw_mfa_recovery')
    .set({
      confirm_token_hash: confirmTokenHash,
      confirm_expires_at: sql<Date>`now() + make_interval(secs => ${ttlS})`,
    })
    .where('id', '=', id)
    .where('state', '=', 'requested')
    .execute();
}

/**
 * Follows a confirmation link: a requested recovery whose link is live starts waiting (until
 * `now + delayS`), its link spent and a cancel link set, in one statement.
 */
export async function confirmRecovery(
  trx: Trx,
  confirmTokenHash: string,
  cancelTokenHash: string,
  delayS: number,
): Promise<{ id: string; user_id: string; completes_at: Date } | undefined> {
  const row = await trx
    .updateTable('gw_mfa_recovery as m')
    .set({
      state: 'waiting',
      confirm_token_hash: null,
      confirm_expires_at: null,
      cancel_token_hash: cancelTokenHash,
      completes_at: sql<Date>`now() + make_interval(secs => ${delayS})`,
    })
    .from('gw_user as u')
    .whereRef('u.id', '=', 'm.user_id')
    .where('u.deleted_at', 'is', null)
    .where('m.confirm_token_hash', '=', confirmTokenHash)
    .where('m.state', '=', 'requested')
    .where('m.confirm_expires_at', '>', sql<Date>`now()`)
    .returning(['m.id', 'm.user_id', 'm.completes_at'])
    .executeTakeFirst();
  return row && { id: row.id, user_id: row.user_id, completes_at: row.completes_at as Date };
}

/** Cancels the open recovery found by its cancel link's hash (waiting) or by the account. */
export async function cancelRecovery(
  db: Executor,
  by: { cancelTokenHash: string } | { userId: string },
): Promise<{ id: string; user_id: string } | undefined> {
  let query = db
    .updateTable('gw_mfa_recovery')
    .set({
      state: 'cancelled',
      ended_at: sql<Date>`now()`,
      confirm_token_hash: null,
      cancel_token_hash: null,
    })
    .where('state', 'in', ['requested', 'waiting']);
  query =
    'cancelTokenHash' in by
      ? query.where('cancel_token_hash', '=', by.cancelTokenHash)
      : query.where('user_id', '=', by.userId);
  return query.returning(['id', 'user_id']).executeTakeFirst();
}

/** Waiting recoveries whose delay has passed, locked (skipping those another worker holds). */
export async function lockDueRecoveries(trx: Trx, limit: number): Promise<RecoveryRow[]> {
  return trx
    .selectFrom('gw_mfa_recovery')
    .select(recoveryColumns)
    .where('state', '=', 'waiting')
    .where('completes_at', '<=', sql<Date>`now()`)
    .orderBy('completes_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

export async function markCompleted(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('gw_mfa_recovery')
    .set({ state: 'completed', ended_at: sql<Date>`now()`, cancel_token_hash: null })
    .where('id', '=', id)
    .execute();
}

/** An administrator's reset, recorded as a completed recovery (for the re-enrolment flag). */
export async function insertAdminReset(db: Executor, id: string, userId: string): Promise<void> {
  await db
    .insertInto('gw_mfa_recovery')
    .values({ id, user_id: userId, kind: 'admin', state: 'completed', ended_at: sql<Date>`now()` })
    .execute();
}

/** Completed recoveries of the account the user has not re-enrolled after. */
export async function pendingReenrolment(db: Executor, userId: string): Promise<boolean> {
  const row = await db
    .selectFrom('gw_mfa_recovery')
    .select('id')
    .where('user_id', '=', userId)
    .where('state', '=', 'completed')
    .where('reenrolled_at', 'is', null)
    .executeTakeFirst();
  return row !== undefined;
}

export async function markReenrolled(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_mfa_recovery')
    .set({ reenrolled_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('state', '=', 'completed')
    .where('reenrolled_at', 'is', null)
    .execute();
}

/** Ended recoveries older than `days`, and spent or expired reports: deleted. */
export async function purgeEnded(db: Executor, days: number): Promise<number> {
  const a = await db
    .deleteFrom('gw_mfa_recovery')
    .where('state', '=', 'cancelled')
    .where('ended_at', '<', sql<Date>`now() - make_interval(days => ${days})`)
    .executeTakeFirst();
  const b = await db
    .deleteFrom('gw_email_change_report')
    .where((eb) =>
      eb.or([
        eb('used_at', '<', sql<Date>`now() - make_interval(days => ${days})`),
        eb('expires_at', '<', sql<Date>`now() - make_interval(days => ${days})`),
      ]),
    )
    .executeTakeFirst();
  return Number(a.numDeletedRows) + Number(b.numDeletedRows);
}

/** The live account with this (normalised) address or user name. */
export async function findAccountByLogin(
  db: Executor,
  login: string,
): Promise<{ id: string; email: string; username: string; verified: boolean } | undefined> {
  return db
    .selectFrom('gw_user')
    .select(['id', 'email', 'username', sql<boolean>`email_verified_at is not null`.as('verified')])
    .where(login.includes('@') ? 'email' : 'username', '=', login)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}
