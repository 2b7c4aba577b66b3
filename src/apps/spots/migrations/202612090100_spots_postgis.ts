import { sql, type Kysely } from 'kysely';

/**
 * PostGIS for radius and nearest-first queries, when the server has it (`spots.geo.ts`): the
 * extension, `spots_geog(lat, lng)` (the point as a `geography`, every name schema-qualified so
 * that the index rebuilds under `pg_restore`, as `spots_earth`), and a GiST index on it over the
 * public spots. Without PostGIS on the server, or without the right to create the extension (a
 * managed service may reserve it), nothing changes: the app answers with `earthdistance`, whose
 * structures stay in every case.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ available: boolean }>`
    select exists (select 1 from pg_available_extensions where name = 'postgis') as available`.execute(
    db,
  );
  if (rows[0]?.available !== true) return;
  // The migrations run in one transaction: a refused CREATE EXTENSION must not abort it.
  await sql`savepoint spots_postgis`.execute(db);
  try {
    await sql`create extension if not exists postgis`.execute(db);
  } catch {
    await sql`rollback to savepoint spots_postgis`.execute(db);
    return;
  }
  await sql`release savepoint spots_postgis`.execute(db);
  const found = await sql<{ schema: string }>`
    select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
     where e.extname = 'postgis'`.execute(db);
  const postgis = sql.id(found.rows[0]?.schema ?? 'public');
  await sql`
    create function spots_geog(lat double precision, lng double precision)
    returns ${postgis}.geography language sql immutable strict parallel safe as $$
      select ${postgis}.st_setsrid(${postgis}.st_makepoint(lng, lat), 4326)::${postgis}.geography
    $$`.execute(db);
  await sql`
    create index spots_spot_geog_idx on spots_spot using gist (spots_geog(lat, lng))
     where deleted_at is null and status = 'visible'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The extension stays: other tables of the database may use it.
  await sql`drop index if exists spots_spot_geog_idx`.execute(db);
  await sql`drop function if exists spots_geog(double precision, double precision)`.execute(db);
}
