import { sql, type RawBuilder } from 'kysely';

/**
 * The two ways the spots app answers radius and nearest-first queries, with the same API and the
 * same results (`SPOTS_GEO`):
 *
 * - `earthdistance`: PostgreSQL's contrib `cube` + `earthdistance` (every PostgreSQL has them, the
 *   embedded binaries included), a GiST index on the point as an earth cube;
 * - `postgis`: PostGIS's `geography` on a sphere, a GiST index on the point as a geography, when
 *   the server had PostGIS at migration (`202612090100_spots_postgis`).
 *
 * Both measure on a sphere. `earthdistance`'s radius is 6,378,168 m; PostGIS's sphere is the
 * WGS 84 mean radius, 6,371,008.8 m. PostGIS's metres are scaled to `earthdistance`'s (a sphere's
 * distances are its radius times the central angle), so that a spot is within a radius, and at a
 * distance, whichever the server: the same pages, the same `distanceM` (tested side by side in
 * `spots-geo-engines.test.ts`).
 */
export type GeoEngine = 'earthdistance' | 'postgis';

/** `earthdistance`'s `earth()`: its sphere's radius, in metres. */
const EARTH_RADIUS_M = 6_378_168;
/** PostGIS's sphere for `geography` with `use_spheroid = false`: the WGS 84 mean radius. */
const POSTGIS_RADIUS_M = 6_371_008.8;
/** PostGIS metres → `earthdistance` metres. */
const SCALE = EARTH_RADIUS_M / POSTGIS_RADIUS_M;

export interface LatLng {
  lat: number;
  lng: number;
}

/** The SQL of one engine, over a table aliased `s` with `lat` and `lng` columns. */
export interface GeoSql {
  /** Spots within `radiusM` of `p` (index-assisted). */
  within(p: LatLng, radiusM: number): RawBuilder<unknown>;
  /** The great-circle distance of the spot from `p`, in metres. */
  distance(p: LatLng): RawBuilder<unknown>;
  /**
   * The nearest-first key: the index answers `order by` it in order. In the engine's own units
   * (a chord in the earth cube; PostGIS metres), increasing with the distance.
   */
  nearest(p: LatLng): RawBuilder<unknown>;
  /** Spots whose `nearest` key is at most `reach` (a key value of this engine), index-assisted. */
  withinKey(p: LatLng, reach: RawBuilder<unknown>): RawBuilder<unknown>;
}

const earthPoint = (p: LatLng) => sql`spots_earth(${p.lat}::float8, ${p.lng}::float8)`;
const earthSpot = sql`spots_earth(s.lat, s.lng)`;

const earthdistance: GeoSql = {
  // The box (index) first, then the exact great-circle distance (the box's corners go further).
  within: (p, radiusM) =>
    sql`earth_box(${earthPoint(p)}, ${radiusM}::float8) @> ${earthSpot} and earth_distance(${earthSpot}, ${earthPoint(p)}) <= ${radiusM}::float8`,
  distance: (p) => sql`earth_distance(${earthSpot}, ${earthPoint(p)})`,
  // Chord length in the earth cube: the same order as the great-circle distance, and what the
  // GiST index answers nearest-first.
  nearest: (p) => sql`(${earthSpot} <-> ${earthPoint(p)})`,
  withinKey: (p, reach) =>
    sql`earth_box(${earthPoint(p)}, sec_to_gc(${reach}) + 1) @> ${earthSpot} and (${earthSpot} <-> ${earthPoint(p)}) <= ${reach}`,
};

const geogPoint = (p: LatLng) => sql`spots_geog(${p.lat}::float8, ${p.lng}::float8)`;
const geogSpot = sql`spots_geog(s.lat, s.lng)`;

const postgis: GeoSql = {
  // ST_DWithin on the sphere (`false`: no spheroid), the radius in PostGIS's metres.
  within: (p, radiusM) =>
    sql`st_dwithin(${geogSpot}, ${geogPoint(p)}, ${radiusM}::float8 / ${SCALE}::float8, false)`,
  distance: (p) => sql`(st_distance(${geogSpot}, ${geogPoint(p)}, false) * ${SCALE}::float8)`,
  // geography's `<->` is the sphere distance, answered nearest-first by the GiST index.
  nearest: (p) => sql`(${geogSpot} <-> ${geogPoint(p)})`,
  withinKey: (p, reach) =>
    sql`st_dwithin(${geogSpot}, ${geogPoint(p)}, ${reach} + 1, false) and (${geogSpot} <-> ${geogPoint(p)}) <= ${reach}`,
};

export const GEO_SQL: Record<GeoEngine, GeoSql> = { earthdistance, postgis };
