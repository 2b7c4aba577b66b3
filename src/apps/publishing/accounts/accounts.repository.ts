import { sql, type ColumnType, type Kysely, type Selectable } from 'kysely';
import { tablesOf, type AnyDb } from '../../../platform/db/index.ts';
import type { AccountStatus, PlatformId } from '../platforms/types.ts';

type Timestamp = ColumnType<Date, never, never>;

/** The accounts half's tables: its own view of the database. */
export interface AccountsDB {
  publishing_account: {
    id: string;
    user_id: string;
    platform: PlatformId;
    external_id: string;
    name: string;
    username: string | null;
    avatar_url: string | null;
    status: ColumnType<AccountStatus, AccountStatus | undefined, AccountStatus>;
    status_reason: string | null;
    access_token_sealed: string | null;
    refresh_token_sealed: string | null;
    token_expires_at: Date | null;
    refresh_expires_at: Date | null;
    scopes: ColumnType<string[], string[] | undefined, string[]>;
    last_refreshed_at: Date | null;
    reauth_notified_at: Date | null;
    created_at: Timestamp;
    updated_at: Timestamp;
    deleted_at: ColumnType<Date | null, never, Date | null>;
  };
  publishing_oauth_state: {
    state_hash: string;
    user_id: string;
    platform: PlatformId;
    code_verifier_sealed: string;
    account_id: string | null;
    created_at: ColumnType<Date, never, never>;
    expires_at: Date;
    used_at: Date | null;
  };
}

export type AccountRow = Selectable<AccountsDB['publishing_account']>;
export type StateRow = Selectable<AccountsDB['publishing_oauth_state']>;

export function accountsDb(db: AnyDb): Kysely<AccountsDB> {
  return tablesOf<AccountsDB>(db);
}

const PUBLIC_COLUMNS = [
  'id',
  'user_id',
  'platform',
  'external_id',
  'name',
  'username',
  'avatar_url',
  'status',
  'status_reason',
  'scopes',
  'token_expires_at',
  'created_at',
  'updated_at',
] as const;
export type AccountView = Pick<AccountRow, (typeof PUBLIC_COLUMNS)[number]>;

/** The user's live accounts, newest first (the index `publishing_account_user_idx`). */
export function listAccounts(db: Kysely<AccountsDB>, userId: string, limit: number) {
  return db
    .selectFrom('publishing_account')
    .select(PUBLIC_COLUMNS)
    .where('user_id', '=', userId)
    .where('deleted_at', 'is', null)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/** One live account of this user (another user's is absent, like a missing one). */
export function findOwnedAccount(db: Kysely<AccountsDB>, userId: string, id: string) {
  return db
    .selectFrom('publishing_account')
    .select(PUBLIC_COLUMNS)
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

export function findOwnedAmong(db: Kysely<AccountsDB>, userId: string, ids: readonly string[]) {
  return db
    .selectFrom('publishing_account')
    .select(PUBLIC_COLUMNS)
    .where('id', 'in', ids)
    .where('user_id', '=', userId)
    .where('deleted_at', 'is', null)
    .execute();
}

/** The full row, tokens included (locked `for update` when asked, inside a transaction). */
export function findAccountRow(db: Kysely<AccountsDB>, id: string, lock = false) {
  const q = db
    .selectFrom('publishing_account')
    .selectAll()
    .where('id', '=', id)
    .where('deleted_at', 'is', null);
  return (lock ? q.forUpdate() : q).executeTakeFirst();
}

/** The user's live row for one platform account (a reconnect finds it). */
export function findByExternal(
  db: Kysely<AccountsDB>,
  userId: string,
  platform: PlatformId,
  externalId: string,
) {
  return db
    .selectFrom('publishing_account')
    .selectAll()
    .where('user_id', '=', userId)
    .where('platform', '=', platform)
    .where('external_id', '=', externalId)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

/** Active accounts whose token expires before `before` (the refresh job's batch). */
export function dueForRefresh(db: Kysely<AccountsDB>, before: Date, limit: number) {
  return db
    .selectFrom('publishing_account')
    .select(['id'])
    .where('deleted_at', 'is', null)
    .where('status', '=', 'active')
    .where('token_expires_at', '<', before)
    .orderBy('token_expires_at')
    .limit(limit)
    .execute();
}

/** Serialises work on one account across processes until the transaction ends. */
export async function lockAccount(db: AnyDb, id: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`publishing_account:${id}`}, 0))`.execute(
    db,
  );
}

/** Rows with a token sealed under another key than `kid`, after `after` (the rotation's batch). */
export function staleSealed(
  db: Kysely<AccountsDB>,
  kid: string,
  after: string | null,
  limit: number,
) {
  const prefix = `v1.${kid}.%`;
  let q = db
    .selectFrom('publishing_account')
    .select(['id', 'access_token_sealed', 'refresh_token_sealed'])
    .where((eb) =>
      eb.or([
        eb.and([
          eb('access_token_sealed', 'is not', null),
          eb('access_token_sealed', 'not like', prefix),
        ]),
        eb.and([
          eb('refresh_token_sealed', 'is not', null),
          eb('refresh_token_sealed', 'not like', prefix),
        ]),
      ]),
    );
  if (after !== null) q = q.where('id', '>', after);
  // In id order, so that a pass moves on past rows it cannot open (a key no longer listed).
  return q.orderBy('id').limit(limit).forUpdate().skipLocked().execute();
}
