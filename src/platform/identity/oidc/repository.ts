import { sql, type Transaction } from 'kysely';
import './tables.ts';
import type { IdentityDb, IdentityTables } from '../db.ts';

type Executor = IdentityDb;

// Authorization requests in flight ---------------------------------------------------------------

export async function insertOidcState(
  db: Executor,
  s: {
    stateHash: string;
    provider: string;
    nonce: string;
    sealedVerifier: string;
    link: { userId: string; sessionId: string } | null;
    ttlS: number;
  },
): Promise<void> {
  await db
    .insertInto('gw_oidc_state')
    .values({
      state_hash: s.stateHash,
      provider: s.provider,
      nonce: s.nonce,
      code_verifier: s.sealedVerifier,
      link_user_id: s.link?.userId ?? null,
      link_session_id: s.link?.sessionId ?? null,
      expires_at: sql<Date>`now() + make_interval(secs => ${s.ttlS})`,
      used_at: null,
    })
    .execute();
}

export interface OidcStateRow {
  nonce: string;
  code_verifier: string;
  link_user_id: string | null;
  link_session_id: string | null;
}

/**
 * Spends the live state of this provider: one conditional update, so a state is used once even
 * when two callbacks race. Undefined for an unknown, expired, spent or other provider's state.
 */
export async function consumeOidcState(
  db: Executor,
  provider: string,
  stateHash: string,
): Promise<OidcStateRow | undefined> {
  return db
    .updateTable('gw_oidc_state')
    .set({ used_at: sql<Date>`now()` })
    .where('state_hash', '=', stateHash)
    .where('provider', '=', provider)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning(['nonce', 'code_verifier', 'link_user_id', 'link_session_id'])
    .executeTakeFirst();
}

/** Deletes states that ended more than a day ago (spent ones are kept that long for forensics). */
export async function purgeOidcStates(db: Executor): Promise<number> {
  const result = await db
    .deleteFrom('gw_oidc_state')
    .where('expires_at', '<', sql<Date>`now() - interval '1 day'`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

// Linked identities ------------------------------------------------------------------------------

export interface IdentityRow {
  id: string;
  user_id: string;
  provider: string;
  subject: string;
  email: string | null;
  created_at: Date;
}

const identityColumns = [
  'i.id',
  'i.user_id',
  'i.provider',
  'i.subject',
  'i.email',
  'i.created_at',
] as const;

/** The identity of this provider subject, when its account is live. */
export async function findIdentity(
  db: Executor,
  provider: string,
  subject: string,
): Promise<IdentityRow | undefined> {
  return db
    .selectFrom('gw_user_identity as i')
    .innerJoin('gw_user as u', 'u.id', 'i.user_id')
    .select(identityColumns)
    .where('i.provider', '=', provider)
    .where('i.subject', '=', subject)
    .where('u.deleted_at', 'is', null)
    .executeTakeFirst();
}

/** Links a provider subject to an account; false when the subject is linked already. */
export async function insertIdentity(
  db: Executor,
  i: {
    id: string;
    userId: string;
    provider: string;
    subject: string;
    email: string | null;
    emailVerified: boolean;
  },
): Promise<boolean> {
  const row = await db
    .insertInto('gw_user_identity')
    .values({
      id: i.id,
      user_id: i.userId,
      provider: i.provider,
      subject: i.subject,
      email: i.email,
      email_verified: i.emailVerified,
      last_login_at: null,
    })
    .onConflict((oc) => oc.constraint('gw_user_identity_provider_subject_uq').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** A sign-in through this identity: the address the provider asserts now, and the time. */
export async function touchIdentity(
  db: Executor,
  id: string,
  seen: { email: string | null; emailVerified: boolean },
): Promise<void> {
  await db
    .updateTable('gw_user_identity')
    .set({ email: seen.email, email_verified: seen.emailVerified, last_login_at: sql`now()` })
    .where('id', '=', id)
    .execute();
}

export async function listIdentities(db: Executor, userId: string): Promise<IdentityRow[]> {
  return db
    .selectFrom('gw_user_identity as i')
    .select(identityColumns)
    .where('i.user_id', '=', userId)
    .orderBy('i.created_at')
    .orderBy('i.id')
    .execute();
}

/**
 * Locks the account row and says how it can sign in: whether it has a password and how many
 * identities it has. Locking serialises concurrent unlinks, so two of them cannot each leave
 * the other as the last way in and both succeed.
 */
export async function lockSignInMethods(
  trx: Transaction<IdentityTables>,
  userId: string,
): Promise<{ hasPassword: boolean; identities: number } | undefined> {
  const user = await trx
    .selectFrom('gw_user')
    .select(sql<boolean>`password_hash is not null`.as('has_password'))
    .where('id', '=', userId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  if (!user) return undefined;
  const count = await trx
    .selectFrom('gw_user_identity')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return { hasPassword: user.has_password, identities: Number(count.n) };
}

export async function deleteIdentity(
  db: Executor,
  userId: string,
  id: string,
): Promise<{ provider: string } | undefined> {
  return db
    .deleteFrom('gw_user_identity')
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .returning('provider')
    .executeTakeFirst();
}

// Accounts ---------------------------------------------------------------------------------------

export interface OidcAccountRow {
  id: string;
  email: string;
  email_verified_at: Date | null;
}

/** The live account with this (normalised) address, locked until the transaction ends. */
export async function lockAccountByEmail(
  trx: Transaction<IdentityTables>,
  email: string,
): Promise<OidcAccountRow | undefined> {
  return trx
    .selectFrom('gw_user')
    .select(['id', 'email', 'email_verified_at'])
    .where('email', '=', email)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * The provider proved the address of an account whose address was never verified: it is
 * verified now, and the password goes, since whoever set it never proved the address (a
 * pre-registered account must not become a way into the real owner's account).
 */
export async function claimUnverifiedAccount(db: Executor, userId: string): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({ email_verified_at: sql<Date>`now()`, password_hash: null })
    .where('id', '=', userId)
    .where('email_verified_at', 'is', null)
    .execute();
}

/** Which of these user names are taken (by any account, live or deleted). */
export async function takenUsernames(db: Executor, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const rows = await db
    .selectFrom('gw_user')
    .select('username')
    .where('username', 'in', names)
    .execute();
  return new Set(rows.map((r) => r.username));
}
