import { sql, type ColumnType, type Kysely } from 'kysely';
import {
  paginate,
  parseListQuery,
  tablesOf,
  type AnyDb,
  type Page,
  type PaginateOptions,
} from '../../../platform/db/index.ts';
import type { PlatformId, PublishErrorAction, PublishErrorCode } from '../platforms/types.ts';
import { postListSpec } from './posts.schemas.ts';

type Timestamp = ColumnType<Date, never, never>;
type Nullable<T> = ColumnType<T | null, T | null | undefined, T | null>;

export type PostStatus =
  'draft' | 'scheduled' | 'publishing' | 'published' | 'failed' | 'cancelled';
export type TargetStatus = PostStatus;

export interface TargetError {
  code: PublishErrorCode;
  message: string;
  retryable: boolean;
  action: PublishErrorAction;
  platformCode?: string;
}

/** The posts half's tables (its own view: the accounts half's table is not in it). */
export interface PostsDB {
  publishing_post: {
    id: string;
    user_id: string;
    text: string;
    media_file_ids: string[];
    status: PostStatus;
    scheduled_at: Nullable<Date>;
    time_zone: string;
    created_at: Timestamp;
    updated_at: Timestamp;
    deleted_at: Nullable<Date>;
  };
  publishing_target: {
    id: string;
    post_id: string;
    account_id: string;
    user_id: string;
    platform: PlatformId;
    options: ColumnType<Record<string, unknown>, string, string>;
    status: TargetStatus;
    version: ColumnType<number, number | undefined, number>;
    job_id: Nullable<string>;
    due_at: Nullable<Date>;
    attempts: ColumnType<number, number | undefined, number>;
    failures: ColumnType<number, number | undefined, number>;
    lease_until: Nullable<Date>;
    needs_lookup: ColumnType<boolean, boolean | undefined, boolean>;
    paused: ColumnType<boolean, boolean | undefined, boolean>;
    published_at: Nullable<Date>;
    external_id: Nullable<string>;
    external_url: Nullable<string>;
    error: ColumnType<TargetError | null, string | null | undefined, string | null>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
}

export function postsDb(db: AnyDb): Kysely<PostsDB> {
  return tablesOf<PostsDB>(db);
}

export interface TargetRow {
  id: string;
  postId: string;
  accountId: string;
  userId: string;
  platform: PlatformId;
  options: Record<string, unknown>;
  status: TargetStatus;
  version: number;
  jobId: string | null;
  dueAt: Date | null;
  attempts: number;
  failures: number;
  leaseUntil: Date | null;
  needsLookup: boolean;
  paused: boolean;
  publishedAt: Date | null;
  externalId: string | null;
  externalUrl: string | null;
  error: TargetError | null;
  createdAt: Date;
}

export interface PostRow {
  id: string;
  userId: string;
  text: string;
  mediaFileIds: string[];
  status: PostStatus;
  scheduledAt: Date | null;
  timeZone: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface PostWithTargets extends PostRow {
  targets: TargetRow[];
}

const POST_COLUMNS = [
  'p.id',
  'p.user_id as userId',
  'p.text',
  'p.media_file_ids as mediaFileIds',
  'p.status',
  'p.scheduled_at as scheduledAt',
  'p.time_zone as timeZone',
  'p.created_at as createdAt',
  'p.updated_at as updatedAt',
] as const;

const TARGET_COLUMNS = [
  'id',
  'post_id as postId',
  'account_id as accountId',
  'user_id as userId',
  'platform',
  'options',
  'status',
  'version',
  'job_id as jobId',
  'due_at as dueAt',
  'attempts',
  'failures',
  'lease_until as leaseUntil',
  'needs_lookup as needsLookup',
  'paused',
  'published_at as publishedAt',
  'external_id as externalId',
  'external_url as externalUrl',
  'error',
  'created_at as createdAt',
] as const;

/** The targets of each post as one JSON array, in the post's own row: one query per page. */
const targetsJson = sql<RawTarget[]>`coalesce((select json_agg(json_build_object(
  'id', t.id, 'postId', t.post_id, 'accountId', t.account_id, 'userId', t.user_id,
  'platform', t.platform, 'options', t.options, 'status', t.status, 'version', t.version,
  'jobId', t.job_id, 'dueAt', t.due_at, 'attempts', t.attempts, 'failures', t.failures,
  'leaseUntil', t.lease_until, 'needsLookup', t.needs_lookup, 'paused', t.paused,
  'publishedAt', t.published_at, 'externalId', t.external_id, 'externalUrl', t.external_url,
  'error', t.error, 'createdAt', t.created_at) order by t.created_at, t.id)
  from publishing_target t where t.post_id = p.id), '[]'::json)`;

type RawTarget = Omit<TargetRow, 'dueAt' | 'leaseUntil' | 'publishedAt' | 'createdAt'> & {
  dueAt: string | null;
  leaseUntil: string | null;
  publishedAt: string | null;
  createdAt: string;
};

const date = (s: string | null): Date | null => (s === null ? null : new Date(s));

function fromJson(raw: RawTarget): TargetRow {
  return {
    ...raw,
    dueAt: date(raw.dueAt),
    leaseUntil: date(raw.leaseUntil),
    publishedAt: date(raw.publishedAt),
    createdAt: new Date(raw.createdAt),
  };
}

function withTargets<R extends PostRow & { targets: RawTarget[] }>(row: R): PostWithTargets {
  return { ...row, targets: row.targets.map(fromJson) };
}

export async function insertPost(
  db: Kysely<PostsDB>,
  post: {
    id: string;
    userId: string;
    text: string;
    mediaFileIds: readonly string[];
    status: PostStatus;
    scheduledAt: Date | null;
    timeZone: string;
  },
): Promise<void> {
  await db
    .insertInto('publishing_post')
    .values({
      id: post.id,
      user_id: post.userId,
      text: post.text,
      media_file_ids: [...post.mediaFileIds],
      status: post.status,
      scheduled_at: post.scheduledAt,
      time_zone: post.timeZone,
    })
    .execute();
}

export async function insertTargets(
  db: Kysely<PostsDB>,
  targets: readonly {
    id: string;
    postId: string;
    accountId: string;
    userId: string;
    platform: PlatformId;
    options: Record<string, unknown>;
    status: TargetStatus;
  }[],
): Promise<void> {
  if (targets.length === 0) return;
  await db
    .insertInto('publishing_target')
    .values(
      targets.map((t) => ({
        id: t.id,
        post_id: t.postId,
        account_id: t.accountId,
        user_id: t.userId,
        platform: t.platform,
        options: JSON.stringify(t.options),
        status: t.status,
      })),
    )
    .execute();
}

export async function deleteTargets(db: Kysely<PostsDB>, postId: string): Promise<void> {
  await db.deleteFrom('publishing_target').where('post_id', '=', postId).execute();
}

/** The caller's post with its targets (null: missing, deleted or another user's). */
export async function findPost(
  db: Kysely<PostsDB>,
  userId: string,
  id: string,
  lock = false,
): Promise<PostWithTargets | null> {
  let query = db
    .selectFrom('publishing_post as p')
    .select([...POST_COLUMNS, targetsJson.as('targets')])
    .where('p.id', '=', id)
    .where('p.user_id', '=', userId)
    .where('p.deleted_at', 'is', null);
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? withTargets(row) : null;
}

export async function updatePost(
  db: Kysely<PostsDB>,
  id: string,
  changes: Partial<{
    text: string;
    mediaFileIds: readonly string[];
    scheduledAt: Date | null;
    timeZone: string;
    status: PostStatus;
    deletedAt: Date;
  }>,
): Promise<void> {
  await db
    .updateTable('publishing_post')
    .set({
      ...(changes.text !== undefined && { text: changes.text }),
      ...(changes.mediaFileIds !== undefined && { media_file_ids: [...changes.mediaFileIds] }),
      ...(changes.scheduledAt !== undefined && { scheduled_at: changes.scheduledAt }),
      ...(changes.timeZone !== undefined && { time_zone: changes.timeZone }),
      ...(changes.status !== undefined && { status: changes.status }),
      ...(changes.deletedAt !== undefined && { deleted_at: changes.deletedAt }),
    })
    .where('id', '=', id)
    .execute();
}

/**
 * The post's status from its targets' (one statement, in the caller's transaction): publishing
 * while any target is, then scheduled, then failed (an owner has something to act on), then
 * published; cancelled when every target is; a draft stays a draft.
 */
export async function refreshPostStatus(
  db: Kysely<PostsDB>,
  postIds: readonly string[],
): Promise<void> {
  if (postIds.length === 0) return;
  await sql`update publishing_post p set status = s.status
    from (select post_id, case
        when bool_or(status = 'publishing') then 'publishing'
        when bool_or(status = 'scheduled') then 'scheduled'
        when bool_or(status = 'failed') then 'failed'
        when bool_or(status = 'published') then 'published'
        when bool_and(status = 'cancelled') then 'cancelled'
        else 'draft' end as status
      from publishing_target where post_id = any(${[...new Set(postIds)]}::uuid[]) group by post_id) s
    where p.id = s.post_id and p.status is distinct from s.status`.execute(db);
}

export async function findTarget(db: Kysely<PostsDB>, id: string): Promise<TargetRow | undefined> {
  return db
    .selectFrom('publishing_target')
    .select(TARGET_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * Moves a target to `changes` if it is still at `version` (and, when given, in `from`): the
 * version is bumped, so any job enqueued for the previous state exits. Returns the row, or null
 * when someone else moved it first.
 */
export async function transitionTarget(
  db: Kysely<PostsDB>,
  id: string,
  version: number,
  changes: Partial<{
    status: TargetStatus;
    jobId: string | null;
    dueAt: Date | null;
    attempts: number;
    failures: number;
    leaseUntil: Date | null;
    needsLookup: boolean;
    paused: boolean;
    publishedAt: Date | null;
    externalId: string | null;
    externalUrl: string | null;
    error: TargetError | null;
  }>,
): Promise<TargetRow | null> {
  const row = await db
    .updateTable('publishing_target')
    .set({
      version: version + 1,
      ...(changes.status !== undefined && { status: changes.status }),
      ...(changes.jobId !== undefined && { job_id: changes.jobId }),
      ...(changes.dueAt !== undefined && { due_at: changes.dueAt }),
      ...(changes.attempts !== undefined && { attempts: changes.attempts }),
      ...(changes.failures !== undefined && { failures: changes.failures }),
      ...(changes.leaseUntil !== undefined && { lease_until: changes.leaseUntil }),
      ...(changes.needsLookup !== undefined && { needs_lookup: changes.needsLookup }),
      ...(changes.paused !== undefined && { paused: changes.paused }),
      ...(changes.publishedAt !== undefined && { published_at: changes.publishedAt }),
      ...(changes.externalId !== undefined && { external_id: changes.externalId }),
      ...(changes.externalUrl !== undefined && { external_url: changes.externalUrl }),
      ...(changes.error !== undefined && {
        error: changes.error === null ? null : JSON.stringify(changes.error),
      }),
    })
    .where('id', '=', id)
    .where('version', '=', version)
    .returning(TARGET_COLUMNS)
    .executeTakeFirst();
  return row ?? null;
}

export async function setTargetJob(
  db: Kysely<PostsDB>,
  id: string,
  version: number,
  jobId: string,
): Promise<void> {
  await db
    .updateTable('publishing_target')
    .set({ job_id: jobId })
    .where('id', '=', id)
    .where('version', '=', version)
    .execute();
}

/** The account's targets in these statuses, locked (the hooks change them in the accounts' transaction). */
export async function targetsOfAccount(
  db: Kysely<PostsDB>,
  accountId: string,
  statuses: readonly TargetStatus[],
): Promise<TargetRow[]> {
  return db
    .selectFrom('publishing_target')
    .select(TARGET_COLUMNS)
    .where('account_id', '=', accountId)
    .where('status', 'in', [...statuses])
    .forUpdate()
    .execute();
}

/** Targets claimed past their lease (their worker died or hung): the sweep's work. */
export async function expiredClaims(
  db: Kysely<PostsDB>,
  now: Date,
  limit: number,
): Promise<TargetRow[]> {
  return db
    .selectFrom('publishing_target')
    .select(TARGET_COLUMNS)
    .where('status', '=', 'publishing')
    .where('lease_until', '<', now)
    .orderBy('lease_until')
    .limit(limit)
    .execute();
}

export async function findPostForPublish(
  db: Kysely<PostsDB>,
  postId: string,
): Promise<
  | {
      id: string;
      userId: string;
      text: string;
      mediaFileIds: string[];
      scheduledAt: Date | null;
      deleted: boolean;
    }
  | undefined
> {
  const row = await db
    .selectFrom('publishing_post')
    .select([
      'id',
      'user_id as userId',
      'text',
      'media_file_ids as mediaFileIds',
      'scheduled_at as scheduledAt',
      'deleted_at as deletedAt',
    ])
    .where('id', '=', postId)
    .executeTakeFirst();
  return row && { ...row, deleted: row.deletedAt !== null };
}

export interface ListFilters {
  platform?: PlatformId;
  accountId?: string;
}

/** One page of the caller's posts with their targets: one statement. */
export async function listPosts(
  db: Kysely<PostsDB>,
  userId: string,
  query: Readonly<Record<string, unknown>>,
  filters: ListFilters,
  options: PaginateOptions,
): Promise<Page<PostWithTargets>> {
  const list = parseListQuery(postListSpec, query);
  let base = db
    .selectFrom('publishing_post as p')
    .select([...POST_COLUMNS, targetsJson.as('targets')])
    .where('p.user_id', '=', userId)
    .where('p.deleted_at', 'is', null);
  if (filters.accountId !== undefined) {
    const accountId = filters.accountId;
    base = base.where((eb) =>
      eb.exists(
        eb
          .selectFrom('publishing_target as ta')
          .select(sql.lit(1).as('one'))
          .whereRef('ta.post_id', '=', 'p.id')
          .where('ta.account_id', '=', accountId),
      ),
    );
  }
  if (filters.platform !== undefined) {
    const platform = filters.platform;
    base = base.where((eb) =>
      eb.exists(
        eb
          .selectFrom('publishing_target as tp')
          .select(sql.lit(1).as('one'))
          .whereRef('tp.post_id', '=', 'p.id')
          .where('tp.user_id', '=', userId)
          .where('tp.platform', '=', platform),
      ),
    );
  }
  // Keyset pages as named prepared statements, one per listing shape (the platform's paginate).
  const page = await paginate(db, postListSpec, list, base, { ...options, prepared: true });
  return { page: page.page, items: page.items.map((r) => withTargets(r as never)) };
}

/** The caller's posts scheduled in `[start, end)`, with their targets (the calendar). */
export async function postsBetween(
  db: Kysely<PostsDB>,
  userId: string,
  start: Date,
  end: Date,
  limit: number,
): Promise<PostWithTargets[]> {
  const rows = await db
    .selectFrom('publishing_post as p')
    .select([...POST_COLUMNS, targetsJson.as('targets')])
    .where('p.user_id', '=', userId)
    .where('p.deleted_at', 'is', null)
    .where('p.scheduled_at', '>=', start)
    .where('p.scheduled_at', '<', end)
    .orderBy('p.scheduled_at')
    .orderBy('p.id')
    .limit(limit)
    .execute();
  return rows.map(withTargets);
}

/** The zone of the caller's latest post: the author's zone when the calendar is asked without one. */
export async function latestZone(db: Kysely<PostsDB>, userId: string): Promise<string | null> {
  const row = await db
    .selectFrom('publishing_post as p')
    .select('p.time_zone as timeZone')
    .where('p.user_id', '=', userId)
    .where('p.deleted_at', 'is', null)
    .orderBy('p.created_at', 'desc')
    .orderBy('p.id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.timeZone ?? null;
}

/** Targets due (scheduled, time passed) per platform, for the gauge. */
export async function dueCounts(db: Kysely<PostsDB>): Promise<{ platform: string; n: number }[]> {
  const rows = await sql<{ platform: string; n: number }>`select platform, count(*)::int as n
    from publishing_target where status = 'scheduled' and due_at <= now() group by platform`.execute(
    db,
  );
  return rows.rows;
}
