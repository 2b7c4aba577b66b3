import './tables.ts';
import { sql, type Transaction } from 'kysely';
import type { IdentityDb, IdentityTables } from '../db.ts';

type Executor = IdentityDb;

// Accounts ------------------------------------------------------------------------------------

/** What the MFA flows need of a live account; the hash only for the password re-checks. */
export async function mfaAccount(
  db: Executor,
  userId: string,
): Promise<{ email: string; password_hash: string | null; locked: boolean } | undefined> {
  return db
    .selectFrom('gw_user')
    .select([
      'email',
      'password_hash',
      sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'),
    ])
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

/**
 * Whether the account is locked now (a deleted account counts as locked). `forUpdate` (in a
 * transaction) locks the account row until the end, as a password sign-in does: the factor
 * checks of one account then run one at a time, each seeing the lock the one before it set.
 */
export async function isLocked(
  db: Executor,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<boolean> {
  const query = db
    .selectFrom('gw_user')
    .select(sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'))
    .where('id', '=', userId)
    .where('deleted_at', 'is', null);
  const row = await (options.forUpdate ? query.forUpdate() : query).executeTakeFirst();
  return row?.locked ?? true;
}

/** A rehash at a password sign-in that still needs its second factor (counters untouched). */
export async function replacePasswordHash(
  db: Executor,
  userId: string,
  hash: string,
): Promise<void> {
  await db.updateTable('gw_user').set({ password_hash: hash }).where('id', '=', userId).execute();
}

// TOTP ----------------------------------------------------------------------------------------

export interface TotpRow {
  secret_sealed: string;
  enabled: boolean;
  last_used_step: number | null;
}

/** The user's authenticator; `forUpdate` (in a transaction) locks it until the end. */
export async function findTotp(
  db: Executor,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<TotpRow | undefined> {
  let query = db
    .selectFrom('gw_mfa_totp')
    .select(['secret_sealed', 'enabled_at', 'last_used_step'])
    .where('user_id', '=', userId);
  if (options.forUpdate === true) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  return {
    secret_sealed: row.secret_sealed,
    enabled: row.enabled_at !== null,
    last_used_step: row.last_used_step === null ? null : Number(row.last_used_step),
  };
}

/** Stores a new pending secret (replacing a pending one); false when TOTP is already enabled. */
export async function savePendingTotp(
  db: Executor,
  userId: string,
  sealed: string,
): Promise<boolean> {
  const row = await db
    .insertInto('gw_mfa_totp')
    .values({ user_id: userId, secret_sealed: sealed, enabled_at: null, last_used_step: null })
    .onConflict((oc) =>
      oc
        .column('user_id')
        .doUpdateSet({ secret_sealed: sealed, last_used_step: null })
        .where('gw_mfa_totp.enabled_at', 'is', null),
    )
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Accepts a code's time step: one conditional UPDATE, so of two requests with the same code
 * (or an older one) only the first wins. `enable` also turns a pending secret on.
 */
export async function useTotpStep(
  db: Executor,
  userId: string,
  step: number,
  options: { enable: boolean },
): Promise<boolean> {
  const row = await db
    .updateTable('gw_mfa_totp')
    .set({
      last_used_step: step,
      ...(options.enable ? { enabled_at: sql<Date>`now()` } : {}),
    })
    .where('user_id', '=', userId)
    .where('enabled_at', options.enable ? 'is' : 'is not', null)
    .where((eb) =>
      eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', String(step))]),
    )
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteTotp(db: Executor, userId: string): Promise<boolean> {
  const rows = await db
    .deleteFrom('gw_mfa_totp')
    .where('user_id', '=', userId)
    .returning('user_id')
    .execute();
  return rows.length > 0;
}

export async function totpEnabled(db: Executor, userId: string): Promise<boolean> {
  const row = await db
    .selectFrom('gw_mfa_totp')
    .select('user_id')
    .where('user_id', '=', userId)
    .where('enabled_at', 'is not', null)
    .executeTakeFirst();
  return row !== undefined;
}

// Backup codes --------------------------------------------------------------------------------

/** Replaces every backup code of the user (used or not) with these hashes. */
export async function replaceBackupCodes(
  db: Executor,
  userId: string,
  rows: { id: string; hash: string }[],
): Promise<void> {
  await db.deleteFrom('gw_mfa_backup_code').where('user_id', '=', userId).execute();
  if (rows.length === 0) return;
  await db
    .insertInto('gw_mfa_backup_code')
    .values(rows.map((r) => ({ id: r.id, user_id: userId, code_hash: r.hash, used_at: null })))
    .execute();
}

/** Spends an unused backup code (a conditional UPDATE: a code works once, even concurrently). */
export async function useBackupCode(db: Executor, userId: string, hash: string): Promise<boolean> {
  const row = await db
    .updateTable('gw_mfa_backup_code')
    .set({ used_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('code_hash', '=', hash)
    .where('used_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function backupCodesLeft(db: Executor, userId: string): Promise<number> {
  const row = await db
    .selectFrom('gw_mfa_backup_code')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

// Sign-in challenges --------------------------------------------------------------------------

export async function insertChallenge(
  db: Executor,
  c: {
    tokenHash: string;
    userId: string;
    rememberMe: boolean;
    ip: string | null;
    userAgent: string | null;
    ttlS: number;
  },
): Promise<void> {
  // The user's dead challenges go as new ones come: the table stays small without a job.
  await db
    .deleteFrom('gw_mfa_challenge')
    .where('user_id', '=', c.userId)
    .where('expires_at', '<=', sql<Date>`now()`)
    .execute();
  await db
    .insertInto('gw_mfa_challenge')
    .values({
      token_hash: c.tokenHash,
      user_id: c.userId,
      remember_me: c.rememberMe,
      ip: c.ip,
      user_agent: c.userAgent,
      expires_at: sql<Date>`now() + make_interval(secs => ${c.ttlS})`,
      used_at: null,
    })
    .execute();
}

export interface ChallengeRow {
  user_id: string;
  remember_me: boolean;
  ip: string | null;
  user_agent: string | null;
}

/** The live (unspent, unexpired) challenge with this hash, locked until the transaction ends. */
export async function lockLiveChallenge(
  trx: Transaction<IdentityTables>,
  tokenHash: string,
): Promise<ChallengeRow | undefined> {
  return trx
    .selectFrom('gw_mfa_challenge')
    .select(['user_id', 'remember_me', 'ip', 'user_agent'])
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .forUpdate()
    .executeTakeFirst();
}

export async function spendChallenge(db: Executor, tokenHash: string): Promise<void> {
  await db
    .updateTable('gw_mfa_challenge')
    .set({ used_at: sql<Date>`now()` })
    .where('token_hash', '=', tokenHash)
    .execute();
}

export async function deleteChallenges(db: Executor, userId: string): Promise<void> {
  await db.deleteFrom('gw_mfa_challenge').where('user_id', '=', userId).execute();
}

/** Deletes the challenges that were spent or expired over `graceS` seconds ago (the purge job). */
export async function purgeChallenges(db: Executor, graceS: number): Promise<number> {
  const cutoff = sql<Date>`now() - make_interval(secs => ${graceS})`;
  const mfa = await db
    .deleteFrom('gw_mfa_challenge')
    .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('used_at', '<', cutoff)]))
    .executeTakeFirst();
  const webauthn = await db
    .deleteFrom('gw_webauthn_challenge')
    .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('used_at', '<', cutoff)]))
    .executeTakeFirst();
  // SMS codes are kept an hour past their expiry at least: their rows count the sends per hour.
  const smsCutoff = sql<Date>`now() - make_interval(secs => ${Math.max(graceS, 3_600)})`;
  const sms = await db
    .deleteFrom('gw_mfa_sms_code')
    .where('created_at', '<', smsCutoff)
    .where('expires_at', '<', smsCutoff)
    .executeTakeFirst();
  return Number(mfa.numDeletedRows) + Number(webauthn.numDeletedRows) + Number(sms.numDeletedRows);
}

// Every factor ---------------------------------------------------------------------------------

/** Which factors the account has; the enabled ones only. */
export async function factorsOf(
  db: Executor,
  userId: string,
): Promise<{ totp: boolean; sms: string | null; passkeys: number }> {
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .exists(
          eb
            .selectFrom('gw_mfa_totp')
            .select('user_id')
            .where('user_id', '=', userId)
            .where('enabled_at', 'is not', null),
        )
        .as('totp'),
      eb
        .selectFrom('gw_mfa_sms')
        .select('phone')
        .where('user_id', '=', userId)
        .where('enabled_at', 'is not', null)
        .as('sms'),
      eb
        .selectFrom('gw_passkey')
        .select((e) => e.fn.countAll<string>().as('n'))
        .where('user_id', '=', userId)
        .as('passkeys'),
    ])
    .executeTakeFirstOrThrow();
  return { totp: row.totp === true, sms: row.sms ?? null, passkeys: Number(row.passkeys ?? 0) };
}

/**
 * Deletes every second factor of the account (TOTP, backup codes, SMS number and codes,
 * passkeys) and its pending challenges, in the caller's transaction.
 */
export async function deleteAllFactors(db: Executor, userId: string): Promise<void> {
  await db.deleteFrom('gw_mfa_totp').where('user_id', '=', userId).execute();
  await db.deleteFrom('gw_mfa_backup_code').where('user_id', '=', userId).execute();
  await db.deleteFrom('gw_mfa_sms').where('user_id', '=', userId).execute();
  await db.deleteFrom('gw_mfa_sms_code').where('user_id', '=', userId).execute();
  await db.deleteFrom('gw_passkey').where('user_id', '=', userId).execute();
  await db.deleteFrom('gw_webauthn_challenge').where('user_id', '=', userId).execute();
  await deleteChallenges(db, userId);
}

// SMS -----------------------------------------------------------------------------------------

export interface SmsRow {
  phone: string;
  enabled: boolean;
}

export async function findSms(
  db: Executor,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<SmsRow | undefined> {
  let query = db
    .selectFrom('gw_mfa_sms')
    .select(['phone', 'enabled_at'])
    .where('user_id', '=', userId);
  if (options.forUpdate === true) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row && { phone: row.phone, enabled: row.enabled_at !== null };
}

/** Stores a pending number (replacing a pending one); false when a number is already enabled. */
export async function savePendingSms(
  db: Executor,
  userId: string,
  phone: string,
): Promise<boolean> {
  const row = await db
    .insertInto('gw_mfa_sms')
    .values({ user_id: userId, phone, enabled_at: null })
    .onConflict((oc) =>
      oc.column('user_id').doUpdateSet({ phone }).where('gw_mfa_sms.enabled_at', 'is', null),
    )
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function enableSms(db: Executor, userId: string, phone: string): Promise<boolean> {
  const row = await db
    .updateTable('gw_mfa_sms')
    .set({ enabled_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('phone', '=', phone)
    .where('enabled_at', 'is', null)
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteSms(db: Executor, userId: string): Promise<boolean> {
  const rows = await db
    .deleteFrom('gw_mfa_sms')
    .where('user_id', '=', userId)
    .returning('user_id')
    .execute();
  await db.deleteFrom('gw_mfa_sms_code').where('user_id', '=', userId).execute();
  return rows.length > 0;
}

/** Codes sent in the last hour to this number and to this account. */
export async function smsSentLastHour(
  db: Executor,
  userId: string,
  phone: string,
): Promise<{ byNumber: number; byAccount: number }> {
  const since = sql<Date>`now() - interval '1 hour'`;
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .selectFrom('gw_mfa_sms_code')
        .select((e) => e.fn.countAll<string>().as('n'))
        .where('phone', '=', phone)
        .where('created_at', '>', since)
        .as('byNumber'),
      eb
        .selectFrom('gw_mfa_sms_code')
        .select((e) => e.fn.countAll<string>().as('n'))
        .where('user_id', '=', userId)
        .where('created_at', '>', since)
        .as('byAccount'),
    ])
    .executeTakeFirstOrThrow();
  return { byNumber: Number(row.byNumber ?? 0), byAccount: Number(row.byAccount ?? 0) };
}

/** A new code; the earlier unspent codes of the same purpose (and challenge) stop working. */
export async function insertSmsCode(
  db: Executor,
  c: {
    id: string;
    userId: string;
    phone: string;
    purpose: 'enrol' | 'sign-in' | 'step-up';
    challengeHash: string | null;
    codeHash: string;
    ttlS: number;
  },
): Promise<void> {
  await db
    .updateTable('gw_mfa_sms_code')
    .set({ used_at: sql<Date>`now()` })
    .where('user_id', '=', c.userId)
    .where('purpose', '=', c.purpose)
    .where('used_at', 'is', null)
    .execute();
  await db
    .insertInto('gw_mfa_sms_code')
    .values({
      id: c.id,
      user_id: c.userId,
      phone: c.phone,
      purpose: c.purpose,
      challenge_hash: c.challengeHash,
      code_hash: c.codeHash,
      expires_at: sql<Date>`now() + make_interval(secs => ${c.ttlS})`,
      used_at: null,
    })
    .execute();
}

/** The live code of this purpose (and challenge), locked until the transaction ends. */
export async function lockLiveSmsCode(
  trx: Transaction<IdentityTables>,
  userId: string,
  purpose: 'enrol' | 'sign-in' | 'step-up',
  challengeHash: string | null,
): Promise<{ id: string; phone: string; code_hash: string } | undefined> {
  let query = trx
    .selectFrom('gw_mfa_sms_code')
    .select(['id', 'phone', 'code_hash'])
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`);
  if (challengeHash !== null) query = query.where('challenge_hash', '=', challengeHash);
  return query.orderBy('created_at', 'desc').limit(1).forUpdate().executeTakeFirst();
}

export async function spendSmsCode(db: Executor, id: string): Promise<boolean> {
  const row = await db
    .updateTable('gw_mfa_sms_code')
    .set({ used_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** The user of a live challenge (not locked), for sending it an SMS code. */
export async function liveChallengeUser(
  db: Executor,
  tokenHash: string,
): Promise<ChallengeRow | undefined> {
  return db
    .selectFrom('gw_mfa_challenge')
    .select(['user_id', 'remember_me', 'ip', 'user_agent'])
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
}
