/**
 * What the spots benchmark's parent (`spots.ts`) and its server children (`spots-server.ts`)
 * share: the queries measured, the hand-written SQL of the raw baseline, the pool size.
 */

export const SERVER_KINDS = ['raw', 'groundwork'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

/** The same for both servers (Groundwork's `DATABASE_POOL_MAX` default). */
export const POOL_SIZE = 10;
export const APPLICATION_NAME: Record<ServerKind, string> = {
  raw: 'bench:spots-raw',
  groundwork: 'groundwork:bench-spots',
};

/** Paris, the densest cluster of the seed. */
export const CENTRE = { lat: 48.8566, lng: 2.3522 };
/**
 * The spots app's geo engine in both servers (`BENCH_GEO`: `earthdistance`, the default, or
 * `postgis`, which needs PostGIS on the server; the app gets it as `SPOTS_GEO`).
 */
export const GEO = process.env.BENCH_GEO === 'postgis' ? 'postgis' : 'earthdistance';
/** PostGIS metres → earthdistance metres (spots.geo.ts). */
const GEO_SCALE = 6_378_168 / 6_371_008.8;
export const RADIUS_M = 2000;
export const PAGE_SIZE = 20;
/** Two words of the names' vocabulary: a few hundred matches per million spots. */
export const TEXT_QUERY = 'sunset harbour';

export const QUERIES = {
  nearby: {
    groundwork: `/api/v1/spots?near=${String(CENTRE.lat)},${String(CENTRE.lng)}&radiusM=${String(RADIUS_M)}&limit=${String(PAGE_SIZE)}`,
    raw: '/nearby',
  },
  text: {
    groundwork: `/api/v1/spots?q=${encodeURIComponent(TEXT_QUERY)}&limit=${String(PAGE_SIZE)}`,
    raw: '/text',
  },
} as const;
export type QueryName = keyof typeof QUERIES;

/**
 * The raw baseline: the same rows, in the same order and with the same fields, as the app's
 * statements, written by hand (no cover lookup: the seed has no pictures; no cursor signing, no
 * validation, no authentication, logging or limits), through `pg` and `node:http`.
 */
/** Every column a spot's answer carries (the app's listing selects the same). */
const COLUMNS = `id, owner_id as "ownerId", name, description, address, category, tags,
  language::text as language, lat, lng, cover_picture_id as "coverPictureId", status,
  favourite_count as "favouriteCount", created_at as "createdAt", updated_at as "updatedAt"`;

/** The tiers of the app's text search, best first (migration 202612080400). */
const TIER_COLUMNS = ['search_name', 'search_tags', 'search_text', 'search'];
const WEB = `websearch_to_tsquery('english'::regconfig, spots_unaccent($1))`;
const PREFIX = `to_tsquery('simple', spots_unaccent($2))`;
const EXACT = `to_tsquery('simple', spots_unaccent($3))`;
const TSQUERY = `(case when numnode(${WEB}) = 0 then ${WEB} when ${WEB} = ${EXACT} then ${PREFIX} else ${WEB} || ${PREFIX} end)`;

/**
 * Each query's statements, run in order until the page (plus one row) is full; the last value of
 * each is the number of rows still wanted (appended by the server).
 */
export const RAW_SQL: Record<QueryName, { text: string; values: unknown[] }[]> = {
  nearby: [
    GEO === 'postgis'
      ? {
          // The same plan through PostGIS (spots.geo.ts): its sphere's metres scaled to
          // earthdistance's, as the app does.
          text: `with reach as (
             select max(n.k) as d from (
               select spots_geog(lat, lng) <-> spots_geog($1::float8, $2::float8) as k
                 from spots_spot
                where deleted_at is null and status = 'visible'
                  and st_dwithin(spots_geog(lat, lng), spots_geog($1::float8, $2::float8), $3::float8 / ${String(GEO_SCALE)}::float8, false)
                order by spots_geog(lat, lng) <-> spots_geog($1::float8, $2::float8)
                limit $4) n)
           select ${COLUMNS},
                  (st_distance(spots_geog(lat, lng), spots_geog($1::float8, $2::float8), false) * ${String(GEO_SCALE)}::float8) as "distanceM"
             from reach, spots_spot
            where deleted_at is null and status = 'visible'
              and st_dwithin(spots_geog(lat, lng), spots_geog($1::float8, $2::float8), $3::float8 / ${String(GEO_SCALE)}::float8, false)
              and st_dwithin(spots_geog(lat, lng), spots_geog($1::float8, $2::float8), reach.d + 1, false)
              and (spots_geog(lat, lng) <-> spots_geog($1::float8, $2::float8)) <= reach.d
            order by spots_geog(lat, lng) <-> spots_geog($1::float8, $2::float8), id
            limit $4`,
          values: [CENTRE.lat, CENTRE.lng, RADIUS_M],
        }
      : {
          // The app's plan (the page's reach by the index's own order, then the rows within it sorted
          // with id as the tiebreaker), so the baseline is the best hand-written SQL of the same page.
          text: `with reach as (
             select max(n.k) as d from (
               select spots_earth(lat, lng) <-> spots_earth($1::float8, $2::float8) as k
                 from spots_spot
                where deleted_at is null and status = 'visible'
                  and earth_box(spots_earth($1::float8, $2::float8), $3::float8) @> spots_earth(lat, lng)
                  and earth_distance(spots_earth(lat, lng), spots_earth($1::float8, $2::float8)) <= $3::float8
                order by spots_earth(lat, lng) <-> spots_earth($1::float8, $2::float8)
                limit $4) n)
           select ${COLUMNS},
                  earth_distance(spots_earth(lat, lng), spots_earth($1::float8, $2::float8)) as "distanceM"
             from reach, spots_spot
            where deleted_at is null and status = 'visible'
              and earth_box(spots_earth($1::float8, $2::float8), $3::float8) @> spots_earth(lat, lng)
              and earth_distance(spots_earth(lat, lng), spots_earth($1::float8, $2::float8)) <= $3::float8
              and earth_box(spots_earth($1::float8, $2::float8), sec_to_gc(reach.d) + 1) @> spots_earth(lat, lng)
              and (spots_earth(lat, lng) <-> spots_earth($1::float8, $2::float8)) <= reach.d
            order by spots_earth(lat, lng) <-> spots_earth($1::float8, $2::float8), id
            limit $4`,
          values: [CENTRE.lat, CENTRE.lng, RADIUS_M],
        },
  ],
  // The app's text search without `near` (spots.repository.ts, `listTiered`): tier after tier
  // (the whole query in the name; name and tags; name, tags and description; anywhere), each most
  // favourited first, until the page is full (the query has no negation: no whole-text check).
  // One statement per tier, the planner choosing its plan (the app bounds a walk first, then reads
  // the tier's index: the same rows). The query is the app's: websearch_to_tsquery OR-ed with the
  // words' prefix form.
  text: TIER_COLUMNS.map((column, tier) => ({
    text: `select ${COLUMNS}
             from spots_spot
            where deleted_at is null and status = 'visible'
              and ${column} @@ ${TSQUERY}
              ${TIER_COLUMNS.slice(0, tier)
                .map((better) => `and not (${better} @@ ${TSQUERY})`)
                .join(' ')}
            order by favourite_count desc, id desc
            limit $4`,
    values: [
      TEXT_QUERY,
      `${TEXT_QUERY.split(' ').join(' & ')}:*`,
      TEXT_QUERY.split(' ').join(' & '),
    ],
  })),
};
