import { sql, type RawBuilder } from 'kysely';
import { executePrepared, type AnyDb } from '../../platform/db/index.ts';
import { GEO_SQL, type GeoEngine, type GeoSql } from './spots.geo.ts';
import type { SpotStatus } from './spots.schemas.ts';

/**
 * All SQL of the spots app. Raw SQL (through Kysely's `sql`) rather than the query builder: the
 * geo and search expressions (`spots.geo.ts`, `<->`, `@@`, `%`) have no builder form, and
 * every public read must repeat the partial indexes' predicate exactly.
 */

/** The predicate of the partial indexes: what any caller may see. */
const PUBLIC = sql`s.deleted_at is null and s.status = 'visible'`;

export interface SpotRow {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  address: string | null;
  category: string;
  tags: string[];
  language: string;
  lat: number;
  lng: number;
  coverPictureId: string | null;
  status: SpotStatus;
  moderationReason: string | null;
  reportCount: number;
  favouriteCount: number;
  createdAt: Date;
  updatedAt: Date;
  /** `created_at` as PostgreSQL prints it (microseconds kept): the `newest` cursor key. */
  createdKey: string;
  distanceM?: number | null;
  /** The sort key of the listing (distance, score), for the cursor. */
  sortKey?: number | null;
  /** Listings only: the spot's cover (its chosen picture when ready, else its oldest ready one). */
  cover?: PictureRow | null;
}

const COLUMNS = sql`s.id, s.owner_id as "ownerId", s.name, s.description, s.address, s.category,
  s.tags, s.language::text as language, s.lat, s.lng, s.cover_picture_id as "coverPictureId",
  s.status, s.moderation_reason as "moderationReason", s.report_count as "reportCount",
  s.favourite_count as "favouriteCount", s.created_at as "createdAt", s.updated_at as "updatedAt",
  s.created_at::text as "createdKey"`;

export interface NewSpot {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  address: string | null;
  category: string;
  tags: string[];
  language: string;
  lat: number;
  lng: number;
  status: SpotStatus;
  moderationReason: string | null;
}

export async function insertSpot(db: AnyDb, spot: NewSpot): Promise<SpotRow> {
  const { rows } = await sql<SpotRow>`
    insert into spots_spot as s (id, owner_id, name, description, address, category, tags, language,
      lat, lng, status, moderation_reason)
    values (${spot.id}, ${spot.ownerId}, ${spot.name}, ${spot.description}, ${spot.address},
      ${spot.category}, ${spot.tags}::text[], ${spot.language}::regconfig, ${spot.lat}, ${spot.lng},
      ${spot.status}, ${spot.moderationReason})
    returning ${COLUMNS}`.execute(db);
  return rows[0] as SpotRow;
}

/** A spot that is not deleted, whatever its status (the service decides who sees it). */
export async function findSpot(
  db: AnyDb,
  id: string,
  options: { lock?: boolean } = {},
): Promise<SpotRow | undefined> {
  const { rows } = await sql<SpotRow>`
    select ${COLUMNS} from spots_spot s where s.id = ${id} and s.deleted_at is null
    ${options.lock ? sql`for update` : sql``}`.execute(db);
  return rows[0];
}

export interface SpotPatch {
  name?: string;
  description?: string;
  address?: string | null;
  category?: string;
  tags?: string[];
  language?: string;
  lat?: number;
  lng?: number;
  coverPictureId?: string | null;
}

export async function updateSpot(db: AnyDb, id: string, patch: SpotPatch): Promise<SpotRow> {
  const sets: RawBuilder<unknown>[] = [sql`updated_at = now()`];
  if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`);
  if (patch.description !== undefined) sets.push(sql`description = ${patch.description}`);
  if (patch.address !== undefined) sets.push(sql`address = ${patch.address}`);
  if (patch.category !== undefined) sets.push(sql`category = ${patch.category}`);
  if (patch.tags !== undefined) sets.push(sql`tags = ${patch.tags}::text[]`);
  if (patch.language !== undefined) sets.push(sql`language = ${patch.language}::regconfig`);
  if (patch.lat !== undefined) sets.push(sql`lat = ${patch.lat}`);
  if (patch.lng !== undefined) sets.push(sql`lng = ${patch.lng}`);
  if (patch.coverPictureId !== undefined)
    sets.push(sql`cover_picture_id = ${patch.coverPictureId}`);
  const { rows } = await sql<SpotRow>`
    update spots_spot s set ${sql.join(sets)} where s.id = ${id} returning ${COLUMNS}`.execute(db);
  return rows[0] as SpotRow;
}

export async function softDeleteSpot(db: AnyDb, id: string): Promise<void> {
  await sql`update spots_spot set deleted_at = now(), updated_at = now() where id = ${id}`.execute(
    db,
  );
}

export async function setSpotStatus(
  db: AnyDb,
  id: string,
  status: SpotStatus,
  reason: string | null,
): Promise<SpotRow> {
  const { rows } = await sql<SpotRow>`
    update spots_spot s set status = ${status}, moderation_reason = ${reason}, updated_at = now()
      ${status === 'visible' ? sql`, report_count = 0` : sql``}
     where s.id = ${id} returning ${COLUMNS}`.execute(db);
  return rows[0] as SpotRow;
}

/** The owner's spots a moderator approved or that went live directly (the trust of new accounts). */
export async function countLiveSpots(db: AnyDb, ownerId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from spots_spot
     where owner_id = ${ownerId} and deleted_at is null and status = 'visible'`.execute(db);
  return rows[0]?.n ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Listing

export interface Box {
  minLng: number;
  minLat: number;
  maxLng: number;
  maxLat: number;
}

export interface ListFilters {
  near?: { lat: number; lng: number; radiusM: number };
  /** How `near` is answered (`SPOTS_GEO`, resolved by the service): earthdistance by default. */
  geo?: GeoEngine;
  /** One box, or two when the viewport crosses the antimeridian. */
  boxes?: Box[];
  text?:
    | {
        mode: 'text';
        language: string;
        q: string;
        prefix: string | null;
        /** The excluded words (`-a -b`), applied to the prefix form too. */
        exclude?: string | null;
      }
    | { mode: 'fuzzy'; q: string };
  category?: string;
  tag?: string;
  owner?: string;
  /** The owner listing their own spots: every status. */
  ownView?: boolean;
}

export type ListOrder = 'distance' | 'newest' | 'popular' | 'relevance';

/** The listing's keys after the last row of the previous page (from the signed cursor). */
export type After = (string | number | null)[];

/** Whether the PostGIS structures are installed (migration `202612090100_spots_postgis`). */
export async function postgisInstalled(db: AnyDb): Promise<boolean> {
  const { rows } = await sql<{ installed: boolean }>`
    select to_regprocedure('spots_geog(double precision, double precision)') is not null as installed`.execute(
    db,
  );
  return rows[0]?.installed === true;
}

/** The geo SQL of the listing's engine. */
const geoOf = (f: ListFilters): GeoSql => GEO_SQL[f.geo ?? 'earthdistance'];

function tsquery(text: {
  language: string;
  q: string;
  prefix: string | null;
  exclude?: string | null;
}): RawBuilder<unknown> {
  const web = sql`websearch_to_tsquery(${text.language}::regconfig, spots_unaccent(${text.q}))`;
  if (text.prefix === null) return web;
  // The prefix form is made of letters and digits only (see the service): never raw user syntax.
  // Without a searchable term (only stop words) the prefix form is not added either. The whole
  // expression is over constants: the planner folds it once per statement.
  const prefix = sql`to_tsquery('simple', spots_unaccent(${text.prefix}))`;
  if (text.exclude) {
    // Excluded words are excluded from the prefix form as the language reads them (stemmed).
    const not = sql`websearch_to_tsquery(${text.language}::regconfig, spots_unaccent(${text.exclude}))`;
    return sql`(case when numnode(${web}) = 0 then ${web} else ${web} || (${prefix} && ${not}) end)`;
  }
  // When the language's query is exactly the words (`'sunset' & 'harbour'`: no stem, stop word or
  // operator), the prefix form alone finds the same and more: an AND that GIN's fast scan
  // intersects, where the OR of the two forms made it visit every spot having any of the words
  // (30 ms of a 40 ms search).
  const exact = sql`to_tsquery('simple', spots_unaccent(${text.prefix.replace(':*', '')}))`;
  return sql`(case when numnode(${web}) = 0 then ${web} when ${web} = ${exact} then ${prefix} else ${web} || ${prefix} end)`;
}

function conditions(f: ListFilters): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [f.ownView ? sql`s.deleted_at is null` : PUBLIC];
  if (f.owner !== undefined) where.push(sql`s.owner_id = ${f.owner}`);
  if (f.category !== undefined) where.push(sql`s.category = ${f.category}`);
  if (f.tag !== undefined) where.push(sql`s.tags @> array[${f.tag}]::text[]`);
  if (f.near) where.push(geoOf(f).within(f.near, f.near.radiusM));
  if (f.boxes && f.boxes.length > 0) {
    const boxes = f.boxes.map(
      (b) =>
        sql`point(s.lng, s.lat) <@ box(point(${b.minLng}::float8, ${b.minLat}::float8), point(${b.maxLng}::float8, ${b.maxLat}::float8))`,
    );
    where.push(sql`(${sql.join(boxes, sql` or `)})`);
  }
  if (f.text?.mode === 'text') where.push(sql`s.search @@ ${tsquery(f.text)}`);
  if (f.text?.mode === 'fuzzy') {
    const q = sql`lower(spots_unaccent(${f.text.q}))`;
    where.push(sql`(s.name_norm % ${q} or ${q} <% s.name_norm)`);
  }
  return where;
}

/** The listing's leading sort key (besides `id`) as an expression, and its direction. */
function sortKey(f: ListFilters, order: ListOrder): { expr: RawBuilder<unknown>; desc: boolean } {
  switch (order) {
    case 'distance':
      if (!f.near) throw new Error('distance order without near');
      // The engine's nearest-first key (a chord, or PostGIS metres): what its GiST index answers
      // in order.
      return { expr: geoOf(f).nearest(f.near), desc: false };
    case 'newest':
      return { expr: sql`s.created_at`, desc: true };
    case 'popular':
      return { expr: sql`s.favourite_count`, desc: true };
    case 'relevance': {
      if (!f.text) throw new Error('relevance order without q');
      const score =
        f.text.mode === 'text'
          ? sql`ts_rank_cd(s.search, ${tsquery(f.text)}, 32)::float8`
          : sql`greatest(similarity(s.name_norm, lower(spots_unaccent(${f.text.q}))), word_similarity(lower(spots_unaccent(${f.text.q})), s.name_norm))::float8`;
      // Near given: nearer matches rank higher (halved at 1 km, a third at 2 km...).
      const combined = f.near ? sql`(${score} / (1 + ${geoOf(f).distance(f.near)} / 1000))` : score;
      return { expr: combined, desc: true };
    }
  }
}

function afterCondition(
  key: { expr: RawBuilder<unknown>; desc: boolean },
  order: ListOrder,
  after: After,
): RawBuilder<unknown> {
  const [value, id] = after;
  const cast =
    order === 'newest'
      ? sql`${value}::timestamptz`
      : order === 'popular'
        ? sql`${value}::int`
        : sql`${value}::float8`;
  return key.desc
    ? sql`(${key.expr}, s.id) < (${cast}, ${id}::uuid)`
    : sql`(${key.expr}, s.id) > (${cast}, ${id}::uuid)`;
}

/**
 * The tiers of a text search without `near`, best first: the column that holds the whole query
 * (name; name and tags; name, tags and description; anywhere, address included). Each is nested in
 * the next for plain words, and each has its own GIN index (migration 202612080400).
 */
const TIERS = [sql`s.search_name`, sql`s.search_tags`, sql`s.search_text`, sql`s.search`];
/** `favourite_count` is an int4: a tier's keys lie below the next better tier's. */
const TIER_SPAN = 2 ** 31;

/**
 * The relevance key of a text search without `near`: the tier (better tiers higher), then the
 * favourite count. Exact in a float8; the cursor carries it.
 */
export function tierKey(tier: number, favourites: number): number {
  return (TIERS.length - 1 - tier) * TIER_SPAN + favourites;
}

function fromTierKey(key: number): { tier: number; favourites: number } {
  const band = Math.min(TIERS.length - 1, Math.max(0, Math.floor(key / TIER_SPAN)));
  return { tier: TIERS.length - 1 - band, favourites: key - band * TIER_SPAN };
}

/** Whether `websearch_to_tsquery` reads a negation (`-word`) in `q`. */
export function negated(q: string): boolean {
  return /(^|[\s(])-/u.test(q);
}

/** Whether a listing is a tiered text search (relevance without `near`). */
function tiered(f: ListFilters, order: ListOrder): boolean {
  return order === 'relevance' && f.text?.mode === 'text' && !f.near;
}

/** Rows of the popularity index a tier's walk reads before the tier is read on its GIN index. */
export const TIER_WALK_ROWS = 1_000;

/**
 * A text search without `near`, one tier after the other until the page is full. PostgreSQL
 * cannot know how many spots a tier holds (its rows are "this column matches and no better one
 * does", and a tsquery's selectivity is a guess), and left to choose it walked the whole
 * popularity index for an empty tier (a typo; a query whose words all sit in the names): 2.8 s a
 * tier on 1,000,000 spots. So each tier is read in at most two bounded steps:
 *
 * 1. a walk of the popularity index from the keyset, filtered to the tier, reading at most
 *    `TIER_WALK_ROWS` rows: a dense tier (a broad query) fills its page here, within a few
 *    hundred rows;
 * 2. when the walk did not fill the page, the tier is sparse: every match from its GIN index, then
 *    sorted (what the matches cost, not the table).
 */
async function listTiered(
  db: AnyDb,
  f: ListFilters,
  limit: number,
  after: After | null,
): Promise<SpotRow[]> {
  const start = after ? fromTierKey(Number(after[0])) : null;
  const rows: SpotRow[] = [];
  const read = (statement: RawBuilder<unknown>) =>
    withCovers(db, statement, sql`desc`, 'relevance');
  for (let tier = start?.tier ?? 0; tier < TIERS.length && rows.length <= limit; tier++) {
    const keyset = start && after && tier === start.tier ? { ...start, id: after[1] } : null;
    const wanted = limit + 1 - rows.length;
    let found = await read(walkStatement(f, tier, wanted, keyset));
    if (found.length < wanted) found = await read(exactStatement(f, tier, wanted, keyset));
    rows.push(...found);
  }
  return rows;
}

/** Where a page starts within a tier: after this favourite count and id (null: the tier's top). */
type TierKeyset = { favourites: number; id: string | number | null | undefined } | null;

/**
 * A tier's conditions (its column matches and no better tier's does; the keyset) and its rows'
 * relevance key.
 */
function tierConditions(
  f: ListFilters,
  tier: number,
  keyset: TierKeyset,
): {
  base: RawBuilder<unknown>[];
  match: RawBuilder<unknown>[];
  keyset: RawBuilder<unknown>[];
  key: RawBuilder<unknown>;
} {
  const text = f.text;
  if (text?.mode !== 'text') throw new Error('tiered search without a text query');
  const q = tsquery(text);
  // This tier's column (the last tier's is the whole text) and not a better tier's. Each column
  // is a leading part of the next (same positions), so a query without negation that matches one
  // matches every later one and the whole text. A `-word` query is not nested (the word may sit
  // in a later field): then the whole text must match too, and every better tier is excluded.
  const match = [sql`${TIERS[tier]} @@ ${q}`];
  if (tier < TIERS.length - 1 && negated(text.q)) match.push(sql`s.search @@ ${q}`);
  for (const better of TIERS.slice(0, tier)) match.push(sql`not (${better} @@ ${q})`);
  return {
    base: conditions({ ...f, text: undefined }),
    match,
    keyset: keyset
      ? [sql`(s.favourite_count, s.id) < (${keyset.favourites}::int, ${keyset.id}::uuid)`]
      : [],
    key: sql`(${tierKey(tier, 0)}::float8 + s.favourite_count)`,
  };
}

/**
 * A tier's walk: its spots among the next `TIER_WALK_ROWS` in popularity order (the popularity
 * index; the inner LIMIT keeps the tier's filter out of that scan, and the scan stops as soon as
 * the page is full).
 */
function walkStatement(
  f: ListFilters,
  tier: number,
  rows: number,
  keyset: TierKeyset,
): RawBuilder<unknown> {
  const c = tierConditions(f, tier, keyset);
  return sql`
    select ${COLUMNS}, null::float8 as "distanceM", ${c.key} as "orderKey"
      from (
        select * from spots_spot s
         where ${sql.join([...c.base, ...c.keyset], sql` and `)}
         order by s.favourite_count desc, s.id desc
         limit ${TIER_WALK_ROWS}) s
     where ${sql.join(c.match, sql` and `)}
     order by s.favourite_count desc, s.id desc
     limit ${rows}`;
}

/**
 * A tier's every match from its GIN index, most favourited first. The matches are a materialized
 * CTE, planned to be read in full (so on the index, never by walking the popularity index); the
 * page's rows are then fetched by id.
 */
function exactStatement(
  f: ListFilters,
  tier: number,
  rows: number,
  keyset: TierKeyset,
): RawBuilder<unknown> {
  const c = tierConditions(f, tier, keyset);
  return sql`
    with m as materialized (
      select s.id, s.favourite_count from spots_spot s
       where ${sql.join([...c.base, ...c.match, ...c.keyset], sql` and `)})
    select ${COLUMNS}, null::float8 as "distanceM", ${c.key} as "orderKey"
      from (select m.id from m order by m.favourite_count desc, m.id desc limit ${rows}) t
      join spots_spot s on s.id = t.id
     order by s.favourite_count desc, s.id desc
     limit ${rows}`;
}

/** One page (plus one row, to know whether more follow) of spots matching the filters. */
export async function listSpots(
  db: AnyDb,
  f: ListFilters,
  order: ListOrder,
  limit: number,
  after: After | null,
): Promise<SpotRow[]> {
  if (tiered(f, order)) return listTiered(db, f, limit, after);
  const key = sortKey(f, order);
  const where = conditions(f);
  if (after) where.push(afterCondition(key, order, after));
  const distance = f.near ? geoOf(f).distance(f.near) : sql`null::float8`;
  const direction = key.desc ? sql`desc` : sql`asc`;
  const all = sql.join(where, sql` and `);
  // Nearest first: the GiST index answers `<->` in order only when it is the whole ORDER BY, and
  // with `id` added as the tiebreaker every spot of the box was sorted (53 ms in a dense city of
  // the benchmark). So the page's reach, the distance of its last row, comes from an index-ordered
  // scan first; then every row within that reach (a small box) is sorted by distance and id:
  // exact keyset pages, ties at the edge included, in about 2 ms.
  const page =
    f.near && order === 'distance'
      ? sql`
        with reach as (
          select max(n.k) as d from (
            select ${key.expr} as k from spots_spot s where ${all}
             order by ${key.expr} limit ${limit + 1}) n)
        select ${COLUMNS}, ${distance} as "distanceM", ${key.expr} as "orderKey"
          from reach, spots_spot s
         where ${all}
           and ${geoOf(f).withinKey(f.near, sql`reach.d`)}
         order by "orderKey" asc, s.id asc
         limit ${limit + 1}`
      : sql`
        select ${COLUMNS}, ${distance} as "distanceM", ${key.expr} as "orderKey"
          from spots_spot s
         where ${all}
         order by "orderKey" ${direction}, s.id ${direction}
         limit ${limit + 1}`;
  return withCovers(db, page, direction, order);
}

/**
 * The page first (the index does the work), then each row's cover picture: one round trip, and
 * the cover lookup runs for the page's rows only.
 */
async function withCovers(
  db: AnyDb,
  page: RawBuilder<unknown>,
  direction: RawBuilder<unknown>,
  order: ListOrder,
): Promise<SpotRow[]> {
  // A named prepared statement per listing shape: parsed and analysed once per connection.
  const { rows } = await executePrepared(
    db,
    sql<SpotRow & { orderKey: unknown }>`
    select s.*, case when c.id is null then null else json_build_object(
        'id', c.id, 'spotId', c.spot_id, 'fileId', c.file_id, 'uploaderId', c.uploader_id,
        'caption', c.caption, 'status', c.status, 'createdAt', c.created_at) end as cover
      from (${page}) s
      left join lateral (
        select p.* from spots_picture p
         where p.spot_id = s.id and p.deleted_at is null and p.status = 'ready'
         order by (p.id = s."coverPictureId") desc nulls last, p.created_at, p.id
         limit 1
      ) c on true
     order by s."orderKey" ${direction}, s.id ${direction}`,
  );
  // The key is computed once per row (a text rank is not cheap); the cursor keeps it when numeric.
  return rows.map(({ orderKey, ...row }) => ({
    ...row,
    sortKey: order === 'distance' || order === 'relevance' ? (orderKey as number) : null,
  }));
}

/** Whether the language's parser finds anything to search in `q` (only stop words: nothing). */
export async function searchableTerms(db: AnyDb, language: string, q: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select numnode(websearch_to_tsquery(${language}::regconfig, spots_unaccent(${q}))) as n`.execute(
    db,
  );
  return rows[0]?.n ?? 0;
}

/**
 * The plan of a listing's statement, for the EXPLAIN tests (a tiered text search: each tier's
 * two statements, in order, each after a line `-- tier N walk` or `-- tier N exact`).
 */
export async function explainList(
  db: AnyDb,
  f: ListFilters,
  order: ListOrder,
  limit: number,
  options: { analyze?: boolean } = {},
): Promise<string> {
  const explain = options.analyze ? sql`explain (analyze, buffers)` : sql`explain`;
  const run = async (statement: RawBuilder<unknown>) => {
    const { rows } = await sql<{ 'QUERY PLAN': string }>`${explain} ${statement}`.execute(db);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  };
  if (tiered(f, order)) {
    const plans: string[] = [];
    for (let tier = 0; tier < TIERS.length; tier++)
      plans.push(
        `-- tier ${String(tier)} walk\n${await run(walkStatement(f, tier, limit + 1, null))}`,
        `-- tier ${String(tier)} exact\n${await run(exactStatement(f, tier, limit + 1, null))}`,
      );
    return plans.join('\n');
  }
  const key = sortKey(f, order);
  const direction = key.desc ? sql`desc` : sql`asc`;
  return run(sql`select s.id from spots_spot s where ${sql.join(conditions(f), sql` and `)}
     order by ${key.expr} ${direction}, s.id ${direction} limit ${limit + 1}`);
}

// ---------------------------------------------------------------------------------------------
// Pictures

export interface PictureRow {
  id: string;
  spotId: string;
  fileId: string;
  uploaderId: string;
  caption: string | null;
  status: 'processing' | 'ready' | 'failed';
  createdAt: Date;
}

const PICTURE_COLUMNS = sql`p.id, p.spot_id as "spotId", p.file_id as "fileId",
  p.uploader_id as "uploaderId", p.caption, p.status, p.created_at as "createdAt"`;

export async function insertPicture(
  db: AnyDb,
  picture: Omit<PictureRow, 'createdAt'>,
): Promise<PictureRow> {
  const { rows } = await sql<PictureRow>`
    insert into spots_picture as p (id, spot_id, file_id, uploader_id, caption, status)
    values (${picture.id}, ${picture.spotId}, ${picture.fileId}, ${picture.uploaderId},
      ${picture.caption}, ${picture.status})
    on conflict (file_id) where deleted_at is null do nothing
    returning ${PICTURE_COLUMNS}`.execute(db);
  return rows[0] as PictureRow;
}

export async function countPictures(db: AnyDb, spotId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from spots_picture
     where spot_id = ${spotId} and deleted_at is null and status <> 'failed'`.execute(db);
  return rows[0]?.n ?? 0;
}

/** The pictures of these spots, oldest first; `readyOnly` for public answers. */
export async function listPictures(
  db: AnyDb,
  spotIds: readonly string[],
  readyOnly: boolean,
): Promise<PictureRow[]> {
  if (spotIds.length === 0) return [];
  const { rows } = await sql<PictureRow>`
    select ${PICTURE_COLUMNS} from spots_picture p
     where p.spot_id = any(${[...spotIds]}::uuid[]) and p.deleted_at is null
       ${readyOnly ? sql`and p.status = 'ready'` : sql``}
     order by p.spot_id, p.created_at, p.id`.execute(db);
  return rows;
}

export async function findPicture(
  db: AnyDb,
  spotId: string,
  pictureId: string,
): Promise<PictureRow | undefined> {
  const { rows } = await sql<PictureRow>`
    select ${PICTURE_COLUMNS} from spots_picture p
     where p.id = ${pictureId} and p.spot_id = ${spotId} and p.deleted_at is null`.execute(db);
  return rows[0];
}

export async function deletePicture(db: AnyDb, pictureId: string): Promise<void> {
  await sql`update spots_picture set deleted_at = now() where id = ${pictureId}`.execute(db);
  await sql`update spots_spot set cover_picture_id = null, updated_at = now()
             where cover_picture_id = ${pictureId}`.execute(db);
}

/** Marks the (live) pictures of a file processed; returns those that changed. */
export async function setPictureStatusByFile(
  db: AnyDb,
  fileId: string,
  status: 'ready' | 'failed',
): Promise<PictureRow[]> {
  const { rows } = await sql<PictureRow>`
    update spots_picture p set status = ${status}
     where p.file_id = ${fileId} and p.deleted_at is null and p.status = 'processing'
    returning ${PICTURE_COLUMNS}`.execute(db);
  return rows;
}

/**
 * Serialises the attachment of a file with its `file.ready`/`file.failed` handling: whichever
 * comes second sees what the first committed, so no picture stays `processing` forever.
 */
export async function lockFile(db: AnyDb, fileId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`spots.picture:${fileId}`}, 0))`.execute(
    db,
  );
}

// ---------------------------------------------------------------------------------------------
// Favourites

export async function addFavourite(db: AnyDb, userId: string, spotId: string): Promise<boolean> {
  const result = await sql`
    insert into spots_favourite (user_id, spot_id) values (${userId}, ${spotId})
    on conflict do nothing`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

export async function removeFavourite(db: AnyDb, userId: string, spotId: string): Promise<boolean> {
  const result = await sql`
    delete from spots_favourite where user_id = ${userId} and spot_id = ${spotId}`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** Records that a spot's favourites changed, for the recount job (an append: no lock taken). */
export async function markFavouritesChanged(db: AnyDb, spotId: string): Promise<void> {
  await sql`insert into spots_favourite_change (spot_id) values (${spotId})`.execute(db);
}

/**
 * Takes up to `batch` recorded changes (skipping those another run holds) and recounts their
 * spots, in one statement: the changes taken and the favourites counted are read in the same
 * snapshot, and a change committed after it keeps its row for the next run. Returns how many
 * changes were taken and the spots whose counter moved.
 */
export async function recountFavourites(
  db: AnyDb,
  batch: number,
): Promise<{ taken: number; changed: { id: string; lat: number; lng: number }[] }> {
  const { rows } = await sql<{
    taken: number;
    id: string;
    lat: number | null;
    lng: number | null;
    changed: boolean;
  }>`
    with taken as (
      delete from spots_favourite_change where id in (
        select id from spots_favourite_change order by id limit ${batch} for update skip locked)
      returning spot_id
    ), counted as (
      select d.spot_id,
             (select count(*)::int from spots_favourite f where f.spot_id = d.spot_id) as n
        from (select distinct spot_id from taken) d
    ), updated as (
      update spots_spot s set favourite_count = c.n from counted c
       where s.id = c.spot_id and s.favourite_count <> c.n
      returning s.id, s.lat, s.lng
    )
    select (select count(*)::int from taken) as taken, c.spot_id as id, u.lat, u.lng,
           (u.id is not null) as changed
      from counted c left join updated u on u.id = c.spot_id`.execute(db);
  return {
    taken: rows[0]?.taken ?? 0,
    changed: rows
      .filter((r) => r.changed)
      .map((r) => ({ id: r.id, lat: r.lat ?? 0, lng: r.lng ?? 0 })),
  };
}

export interface FavouriteRow extends SpotRow {
  favouritedAt: string;
}

/** The user's favourite spots that they may still see, most recently favourited first. */
export async function listFavourites(
  db: AnyDb,
  userId: string,
  limit: number,
  after: After | null,
): Promise<FavouriteRow[]> {
  const [at, id] = after ?? [];
  const { rows } = await sql<FavouriteRow>`
    select ${COLUMNS}, f.created_at::text as "favouritedAt"
      from spots_favourite f join spots_spot s on s.id = f.spot_id
     where f.user_id = ${userId} and s.deleted_at is null
       and (s.status = 'visible' or s.owner_id = ${userId})
       ${after ? sql`and (f.created_at, f.spot_id) < (${at}::timestamptz, ${id}::uuid)` : sql``}
     order by f.created_at desc, f.spot_id desc
     limit ${limit + 1}`.execute(db);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Reports and moderation

/** Records a user's report; false when they already have one open on this spot. */
export async function insertReport(
  db: AnyDb,
  report: { id: string; spotId: string; reporterId: string; reason: string },
): Promise<boolean> {
  const result = await sql`
    insert into spots_report (id, spot_id, reporter_id, reason)
    values (${report.id}, ${report.spotId}, ${report.reporterId}, ${report.reason})
    on conflict (spot_id, reporter_id) where resolved_at is null do nothing`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

export async function incrementReports(db: AnyDb, spotId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    update spots_spot set report_count = report_count + 1 where id = ${spotId}
    returning report_count as n`.execute(db);
  return rows[0]?.n ?? 0;
}

export async function resolveReports(db: AnyDb, spotId: string): Promise<void> {
  await sql`update spots_report set resolved_at = now()
             where spot_id = ${spotId} and resolved_at is null`.execute(db);
}

export interface QueueRow extends SpotRow {
  reports: string[];
}

/** Spots waiting for a moderator (new accounts' spots, spots hidden by reports), oldest first. */
export async function listQueue(
  db: AnyDb,
  limit: number,
  after: After | null,
): Promise<QueueRow[]> {
  const [at, id] = after ?? [];
  const { rows } = await sql<QueueRow>`
    select ${COLUMNS},
      coalesce((select array_agg(r.reason order by r.created_at) from spots_report r
                 where r.spot_id = s.id and r.resolved_at is null), '{}') as reports
      from spots_spot s
     where s.deleted_at is null and s.status = 'pending'
       ${after ? sql`and (s.created_at, s.id) > (${at}::timestamptz, ${id}::uuid)` : sql``}
     order by s.created_at, s.id
     limit ${limit + 1}`.execute(db);
  return rows;
}
