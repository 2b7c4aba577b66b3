import { CompiledQuery, sql, type Transaction } from 'kysely';
import type { AuthMethod, LoginOutcome, UserTier, UserTokenPurpose } from './tables.ts';
import type { IdentityDb, IdentityTables } from './db.ts';
import { executePrepared } from '../db/index.ts';

type Executor = IdentityDb;

const secs = (s: number) => sql<Date>`now() + make_interval(secs => ${s})`;

// Accounts ------------------------------------------------------------------------------------

export async function usernameExists(db: Executor, username: string): Promise<boolean> {
  const row = await db
    .selectFrom('gw_user')
    .select('id')
    .where('username', '=', username)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Inserts an account; false (nothing inserted) when a live account has the address. An account
 * made through a provider has no password (`passwordHash: null`) and its address is verified.
 */
export async function insertUser(
  db: Executor,
  user: {
    id: string;
    email: string;
    username: string;
    passwordHash: string | null;
    emailVerified?: boolean;
  },
): Promise<boolean> {
  const result = await db
    .insertInto('gw_user')
    .values({
      id: user.id,
      email: user.email,
      username: user.username,
      password_hash: user.passwordHash,
      email_verified_at: user.emailVerified === true ? sql<Date>`now()` : null,
      locked_until: null,
      last_login_at: null,
      deleted_at: null,
    })
    .onConflict((oc) => oc.column('email').where('deleted_at', 'is', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  return result !== undefined;
}

export interface AccountRow {
  id: string;
  email: string;
  username: string;
  email_verified_at: Date | null;
}

export async function findUserByEmail(
  db: Executor,
  email: string,
): Promise<AccountRow | undefined> {
  return db
    .selectFrom('gw_user')
    .select(['id', 'email', 'username', 'email_verified_at'])
    .where('email', '=', email)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

export interface LoginCandidate extends AccountRow {
  /** Null for an account that signs in through a provider only (verified against the dummy). */
  password_hash: string | null;
  locked: boolean;
}

/** The address and user name of a live account (for mail to it). */
export async function findUserContact(
  db: Executor,
  userId: string,
): Promise<{ email: string; username: string } | undefined> {
  // Named prepared (platform/db/prepared.ts): read in the transaction of every order and post that
  // mails its account.
  const { rows } = await executePrepared(
    db,
    db
      .selectFrom('gw_user')
      .select(['email', 'username'])
      .where('id', '=', userId)
      .where('deleted_at', 'is', null),
  );
  return rows[0];
}

/**
 * The live account with this address or user name, with what sign-in needs. `forUpdate` (in a
 * transaction) locks its row until the end: the sign-ins of one account are then decided one at
 * a time, each seeing the failures and the lock the one before it recorded.
 */
export async function findLoginCandidate(
  db: Executor,
  by: { email: string } | { username: string },
  options: { forUpdate?: boolean } = {},
): Promise<LoginCandidate | undefined> {
  let query = db
    .selectFrom('gw_user')
    .select([
      'id',
      'email',
      'username',
      'email_verified_at',
      'password_hash',
      sql<boolean>`coalesce(locked_until > now(), false)`.as('locked'),
    ])
    .where('deleted_at', 'is', null);
  query =
    'email' in by ? query.where('email', '=', by.email) : query.where('username', '=', by.username);
  return (options.forUpdate ? query.forUpdate() : query).executeTakeFirst();
}

/** The id of the live account with this address or user name (what sign-in's limit keys on). */
export async function findLoginAccountId(
  db: Executor,
  by: { email: string } | { username: string },
): Promise<string | undefined> {
  const query = db.selectFrom('gw_user').select('id').where('deleted_at', 'is', null);
  const row = await (
    'email' in by ? query.where('email', '=', by.email) : query.where('username', '=', by.username)
  ).executeTakeFirst();
  return row?.id;
}

/**
 * Counts a failed sign-in; the threshold-th failure in a row locks the account for
 * `durationS × 2^(earlier lockouts)`, at most `maxDurationS`. Not counted while locked.
 * Returns true when this failure locked the account.
 */
export async function recordFailedLogin(
  db: Executor,
  userId: string,
  lockout: { threshold: number; durationS: number; maxDurationS: number },
): Promise<boolean> {
  const reached = sql<boolean>`failed_login_count + 1 >= ${lockout.threshold}`;
  const row = await db
    .updateTable('gw_user')
    .set({
      failed_login_count: sql<number>`case when ${reached} then 0 else failed_login_count + 1 end`,
      lockout_count: sql<number>`case when ${reached} then lockout_count + 1 else lockout_count end`,
      locked_until: sql<Date>`case when ${reached} then now() + make_interval(secs => least(${lockout.durationS}::float8 * power(2, least(lockout_count, 30)), ${lockout.maxDurationS}::float8)) else locked_until end`,
    })
    .where('id', '=', userId)
    .where((eb) =>
      eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', sql<Date>`now()`)]),
    )
    .returning(sql<boolean>`locked_until > now()`.as('locked'))
    .executeTakeFirst();
  return row?.locked === true;
}

/** A successful sign-in: counters cleared, the hash replaced when it was due for a rehash. */
export async function recordSuccessfulLogin(
  db: Executor,
  userId: string,
  newHash: string | null,
): Promise<void> {
  await db
    .updateTable('gw_user')
    .set({
      failed_login_count: 0,
      lockout_count: 0,
      locked_until: null,
      last_login_at: sql<Date>`now()`,
      ...(newHash === null ? {} : { password_hash: newHash }),
    })
    .where('id', '=', userId)
    .execute();
}

export async function markEmailVerified(
  db: Executor,
  userId: string,
  email: string,
): Promise<boolean> {
  const result = await db
    .updateTable('gw_user')
    .set({ email_verified_at: sql<Date>`now()` })
    .where('id', '=', userId)
    .where('email', '=', email)
    .where('email_verified_at', 'is', null)
    .executeTakeFirst();
  // True when this call verified it (false: already verified, or another address now).
  return result.numUpdatedRows > 0n;
}

// Mailed tokens -------------------------------------------------------------------------------

export async function insertUserToken(
  db: Executor,
  token: {
    id: string;
    userId: string;
    purpose: UserTokenPurpose;
    tokenHash: string;
    email: string;
    ttlS: number;
  },
): Promise<void> {
  await db
    .insertInto('gw_user_token')
    .values({
      id: token.id,
      user_id: token.userId,
      purpose: token.purpose,
      token_hash: token.tokenHash,
      email: token.email,
      expires_at: secs(token.ttlS),
      used_at: null,
    })
    .execute();
}

/**
 * Spends a usable token (unused, unexpired) of a live (not deleted) account: marks it used and
 * returns whom it was for; undefined when there is none, or it lost a race.
 */
export async function consumeUserToken(
  db: Executor,
  purpose: UserTokenPurpose,
  tokenHash: string,
): Promise<{ user_id: string; email: string } | undefined> {
  return db
    .updateTable('gw_user_token')
    .set({ used_at: sql<Date>`now()` })
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('gw_user as u')
          .select('u.id')
          .whereRef('u.id', '=', 'gw_user_token.user_id')
          .where('u.deleted_at', 'is', null),
      ),
    )
    .returning(['user_id', 'email'])
    .executeTakeFirst();
}

// Sessions and refresh tokens -----------------------------------------------------------------

export async function insertSession(
  db: Executor,
  s: {
    id: string;
    userId: string;
    rememberMe: boolean;
    userAgent: string | null;
    ip: string | null;
    maxAgeS: number;
    /** How the session proved who it is (default `['pwd']`). */
    amr?: AuthMethod[];
  },
): Promise<void> {
  await db
    .insertInto('gw_session')
    .values({
      id: s.id,
      user_id: s.userId,
      remember_me: s.rememberMe,
      user_agent: s.userAgent,
      ip: s.ip,
      last_used_at: sql<Date>`now()`,
      expires_at: secs(s.maxAgeS),
      revoked_at: null,
      revoked_reason: null,
      ...(s.amr === undefined ? {} : { amr: s.amr }),
    })
    .execute();
}

/** Stores a refresh token's hash; it expires after `ttlS` or with its session, whichever is first. */
export async function insertRefreshToken(
  db: Executor,
  t: { tokenHash: string; sessionId: string; ttlS: number },
): Promise<Date> {
  const row = await db
    .insertInto('gw_refresh_token')
    .values({
      token_hash: t.tokenHash,
      session_id: t.sessionId,
      expires_at: sql<Date>`least(now() + make_interval(secs => ${t.ttlS}), (select expires_at from gw_session where id = ${t.sessionId}))`,
      spent_at: null,
      successor: null,
    })
    .returning('expires_at')
    .executeTakeFirstOrThrow();
  return row.expires_at;
}

export interface RefreshRow {
  token_hash: string;
  session_id: string;
  user_id: string;
  remember_me: boolean;
  expired: boolean;
  spent_seconds_ago: number | null;
  successor: string | null;
  session_live: boolean;
}

/** The refresh token and its session, both locked until the transaction ends. */
export async function lockRefreshToken(
  trx: Transaction<IdentityTables>,
  tokenHash: string,
): Promise<RefreshRow | undefined> {
  return trx
    .selectFrom('gw_refresh_token as rt')
    .innerJoin('gw_session as s', 's.id', 'rt.session_id')
    .innerJoin('gw_user as u', 'u.id', 's.user_id')
    .select([
      'rt.token_hash',
      'rt.session_id',
      's.user_id',
      's.remember_me',
      sql<boolean>`rt.expires_at <= now()`.as('expired'),
      sql<number | null>`extract(epoch from now() - rt.spent_at)::float8`.as('spent_seconds_ago'),
      'rt.successor',
      sql<boolean>`s.revoked_at is null and s.expires_at > now() and u.deleted_at is null`.as(
        'session_live',
      ),
    ])
    .where('rt.token_hash', '=', tokenHash)
    .forUpdate(['rt', 's'])
    .executeTakeFirst();
}

/**
 * The rotation of a live, unspent refresh token as ONE statement (no BEGIN/COMMIT): spend it
 * (with the sealed successor), insert the successor (expiring after its lifetime or with the
 * session, whichever is first) and touch the session. The conditional UPDATE is the lock: a
 * concurrent rotation of the same token waits for this one's commit, re-checks `spent_at is
 * null` on the row it committed, and updates nothing. Undefined when nothing was rotated (unknown,
 * spent, expired, session ended, or a concurrent rotation won): the caller then takes the locking
 * path (`lockRefreshToken`), which tells the grace window from reuse.
 *
 * Hand-written SQL as one static string (no query building per refresh): it is the hot path of
 * `POST /auth/refresh`, where each round trip and each compile showed in the CPU profile.
 */
const ROTATE_REFRESH_TOKEN = `with spent as (
  update gw_refresh_token rt
     set spent_at = now(), successor = $2
    from gw_session s
    join gw_user u on u.id = s.user_id
   where rt.token_hash = $1
     and rt.spent_at is null
     and rt.expires_at > now()
     and s.id = rt.session_id
     and s.revoked_at is null
     and s.expires_at > now()
     and u.deleted_at is null
  returning rt.session_id, s.user_id, s.remember_me, s.expires_at as session_expires_at
), successor as (
  insert into gw_refresh_token (token_hash, session_id, expires_at, spent_at, successor)
  select $3, session_id,
         least(now() + make_interval(secs => case when remember_me then $5::float8 else $4::float8 end),
               session_expires_at),
         null, null
    from spent
  returning expires_at
), touched as (
  update gw_session set last_used_at = now(), ip = $6, user_agent = $7
   where id = (select session_id from spent)
)
select spent.session_id, spent.user_id, successor.expires_at from spent, successor`;

export async function rotateRefreshToken(
  db: Executor,
  r: {
    tokenHash: string;
    sealedSuccessor: string;
    successorHash: string;
    ttlS: number;
    rememberMeTtlS: number;
    ip: string | null;
    userAgent: string | null;
  },
): Promise<{ session_id: string; user_id: string; expires_at: Date } | undefined> {
  const { rows } = await db.executeQuery<{ session_id: string; user_id: string; expires_at: Date }>(
    CompiledQuery.raw(ROTATE_REFRESH_TOKEN, [
      r.tokenHash,
      r.sealedSuccessor,
      r.successorHash,
      r.ttlS,
      r.rememberMeTtlS,
      r.ip,
      r.userAgent,
    ]),
  );
  return rows[0];
}

/** The live, unspent refresh token with this hash in this session, with its expiry. */
export async function currentRefreshToken(
  db: Executor,
  sessionId: string,
  tokenHash: string,
): Promise<Date | undefined> {
  const row = await db
    .selectFrom('gw_refresh_token')
    .select('expires_at')
    .where('token_hash', '=', tokenHash)
    .where('session_id', '=', sessionId)
    .where('spent_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row?.expires_at;
}

export async function spendRefreshToken(
  db: Executor,
  tokenHash: string,
  sealedSuccessor: string,
): Promise<void> {
  await db
    .updateTable('gw_refresh_token')
    .set({ spent_at: sql<Date>`now()`, successor: sealedSuccessor })
    .where('token_hash', '=', tokenHash)
    .execute();
}

export async function touchSession(
  db: Executor,
  sessionId: string,
  seen: { ip: string | null; userAgent: string | null },
): Promise<void> {
  await db
    .updateTable('gw_session')
    .set({ last_used_at: sql<Date>`now()`, ip: seen.ip, user_agent: seen.userAgent })
    .where('id', '=', sessionId)
    .execute();
}

/** Revokes live sessions of a user (all, one, or all but one); returns the ids revoked. */
export async function revokeSessions(
  db: Executor,
  where: { userId: string; sessionId?: string; exceptSessionId?: string },
  reason: string,
): Promise<string[]> {
  let query = db
    .updateTable('gw_session')
    .set({ revoked_at: sql<Date>`now()`, revoked_reason: reason })
    .where('user_id', '=', where.userId)
    .where('revoked_at', 'is', null);
  if (where.sessionId !== undefined) query = query.where('id', '=', where.sessionId);
  if (where.exceptSessionId !== undefined) query = query.where('id', '<>', where.exceptSessionId);
  const rows = await query.returning('id').execute();
  return rows.map((r) => r.id);
}

/** What the access check needs of a live session. */
export interface LiveSession {
  tier: UserTier;
  authenticatedAt: Date;
  amr: AuthMethod[];
}

/** The session's tier and authentication facts when it is live and the user's; undefined otherwise. */
export async function liveSession(
  db: Executor,
  sessionId: string,
  userId: string,
): Promise<LiveSession | undefined> {
  return db
    .selectFrom('gw_session as s')
    .innerJoin('gw_user as u', 'u.id', 's.user_id')
    .select(['u.tier', 's.authenticated_at as authenticatedAt', 's.amr'])
    .where('s.id', '=', sessionId)
    .where('s.user_id', '=', userId)
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', sql<Date>`now()`)
    .where('u.deleted_at', 'is', null)
    .executeTakeFirst();
}

export interface SessionRow {
  id: string;
  user_agent: string | null;
  ip: string | null;
  remember_me: boolean;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
}

export async function listLiveSessions(db: Executor, userId: string): Promise<SessionRow[]> {
  return db
    .selectFrom('gw_session')
    .select(['id', 'user_agent', 'ip', 'remember_me', 'created_at', 'last_used_at', 'expires_at'])
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .orderBy('last_used_at', 'desc')
    .orderBy('id', 'desc')
    .limit(200)
    .execute();
}

// Sign-in history -----------------------------------------------------------------------------

export async function insertLoginEvent(
  db: Executor,
  e: {
    id: string;
    userId: string;
    outcome: LoginOutcome;
    ip: string | null;
    userAgent: string | null;
    sessionId: string | null;
  },
): Promise<void> {
  await db
    .insertInto('gw_login_event')
    .values({
      id: e.id,
      user_id: e.userId,
      outcome: e.outcome,
      ip: e.ip,
      user_agent: e.userAgent,
      session_id: e.sessionId,
    })
    .execute();
}

/**
 * The sign-in event of a login that names no account: there is no account to record it on, so
 * the same insert selects from no row. It keeps an unknown login's statements those of a known
 * one (the answer time says nothing about whether the account exists).
 */
export async function recordUnknownLogin(
  db: Executor,
  e: { id: string; ip: string | null; userAgent: string | null },
): Promise<void> {
  await sql`insert into gw_login_event (id, user_id, outcome, ip, user_agent, session_id)
    select ${e.id}::uuid, id, 'failure', ${e.ip}, ${e.userAgent}, null
      from gw_user where id = ${NO_ACCOUNT}::uuid`.execute(db);
}

/**
 * The default role a new account gets, granted to no account: with `mirrorUserToken`, a taken
 * address at registration makes the statements a new one makes, so the answer time says nothing
 * about whether the address has an account.
 */
export async function mirrorDefaultRole(db: Executor): Promise<void> {
  await sql`insert into gw_user_role (user_id, role_id)
    select u.id, r.id from gw_user u cross join gw_role r
     where u.id = ${NO_ACCOUNT}::uuid and r.name = 'user'
    on conflict do nothing`.execute(db);
}

/** `insertUserToken` for no account (see `mirrorDefaultRole`): the same insert, of no row. */
export async function mirrorUserToken(
  db: Executor,
  token: { id: string; tokenHash: string; email: string; ttlS: number },
): Promise<void> {
  await sql`insert into gw_user_token (id, user_id, purpose, token_hash, email, expires_at, used_at)
    select ${token.id}::uuid, id, 'verify-email', ${token.tokenHash}, ${token.email}, ${secs(token.ttlS)}, null
      from gw_user where id = ${NO_ACCOUNT}::uuid`.execute(db);
}

/** No account has this id: statements an unknown login makes about "its" account touch no row. */
export const NO_ACCOUNT = '00000000-0000-0000-0000-000000000000';

export interface LoginEventRow {
  id: string;
  outcome: LoginOutcome;
  ip: string | null;
  user_agent: string | null;
  session_id: string | null;
  created_at: Date;
}

export async function listLoginEvents(
  db: Executor,
  userId: string,
  limit: number,
): Promise<LoginEventRow[]> {
  return db
    .selectFrom('gw_login_event')
    .select(['id', 'outcome', 'ip', 'user_agent', 'session_id', 'created_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}
