import { sql } from 'kysely';
import type { LiveSession } from '../repository.ts';
import type { IdentityDb } from '../db.ts';

type Executor = IdentityDb;

/** `repo.liveSession` with the session's absolute end, for the session-check cache. */
export async function liveSessionUntil(
  db: Executor,
  sessionId: string,
  userId: string,
): Promise<(LiveSession & { expiresAt: Date }) | undefined> {
  return db
    .selectFrom('gw_session as s')
    .innerJoin('gw_user as u', 'u.id', 's.user_id')
    .select([
      'u.tier',
      's.authenticated_at as authenticatedAt',
      's.amr',
      's.expires_at as expiresAt',
    ])
    .where('s.id', '=', sessionId)
    .where('s.user_id', '=', userId)
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', sql<Date>`now()`)
    .where('u.deleted_at', 'is', null)
    .executeTakeFirst();
}

/** How many of the user's latest successful sign-ins are compared for a new device. */
export const KNOWN_DEVICE_WINDOW = 200;

/** The user agents of the user's latest successful sign-ins (distinct; null when none was sent). */
export async function recentSignInAgents(
  db: Executor,
  userId: string,
): Promise<{ any: boolean; agents: (string | null)[] }> {
  const rows = await db
    .selectFrom('gw_login_event')
    .select('user_agent')
    .where('user_id', '=', userId)
    .where('outcome', '=', 'success')
    .orderBy('created_at', 'desc')
    .limit(KNOWN_DEVICE_WINDOW)
    .execute();
  return { any: rows.length > 0, agents: [...new Set(rows.map((r) => r.user_agent))] };
}

/** The session of a live, unspent refresh token (to sign out by it); undefined otherwise. */
export async function refreshTokenSession(
  db: Executor,
  tokenHash: string,
): Promise<{ sessionId: string; userId: string } | undefined> {
  return db
    .selectFrom('gw_refresh_token as rt')
    .innerJoin('gw_session as s', 's.id', 'rt.session_id')
    .select(['s.id as sessionId', 's.user_id as userId'])
    .where('rt.token_hash', '=', tokenHash)
    .where('rt.spent_at', 'is', null)
    .where('rt.expires_at', '>', sql<Date>`now()`)
    .where('s.revoked_at', 'is', null)
    .executeTakeFirst();
}
