import { sql, type Kysely } from 'kysely';

/**
 * The spots, their pictures, favourites and reports.
 *
 * Geo: PostgreSQL's contrib `cube` + `earthdistance` (shipped with every PostgreSQL, including
 * the embedded binaries and the managed services), a GiST index on the point as an earth cube
 * (radius and nearest-first), and a GiST index on `point(lng, lat)` for map viewports (boxes).
 *
 * `earthdistance`'s own `ll_to_earth` calls `cube()` and `earth()` unqualified, so an index on it
 * fails to rebuild under `pg_restore` (empty `search_path`). `spots_earth` is the same formula
 * with every name qualified by the schema the extensions live in: same values, restorable, still
 * inlined by the planner (no `SET` clause).
 */

/** The schema an extension is installed in (its objects are qualified with it). */
async function schemaOf(db: Kysely<unknown>, extension: string): Promise<string> {
  const { rows } = await sql<{ schema: string }>`
    select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
     where e.extname = ${extension}`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) throw new Error(`extension ${extension} is not installed`);
  return schema;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const extension of ['cube', 'earthdistance', 'pg_trgm', 'unaccent'])
    await sql`create extension if not exists ${sql.id(extension)}`.execute(db);
  const cube = sql.id(await schemaOf(db, 'cube'));
  const earth = sql.id(await schemaOf(db, 'earthdistance'));
  const unaccent = await schemaOf(db, 'unaccent');

  // The point as an earth cube (what ll_to_earth computes), every name schema-qualified.
  await sql`
    create function spots_earth(lat double precision, lng double precision) returns ${earth}.earth
    language sql immutable strict parallel safe as $$
      select ${cube}.cube(${cube}.cube(${cube}.cube(
        ${earth}.earth() * cos(radians(lat)) * cos(radians(lng))),
        ${earth}.earth() * cos(radians(lat)) * sin(radians(lng))),
        ${earth}.earth() * sin(radians(lat)))::${earth}.earth
    $$`.execute(db);
  // unaccent() is only STABLE (its dictionary could be swapped); generated columns and index
  // expressions need IMMUTABLE, so the dictionary is named explicitly in an immutable wrapper.
  await sql
    .raw(
      `create function spots_unaccent(text) returns text language sql immutable strict parallel safe as
       $$ select "${unaccent}".unaccent('"${unaccent}".unaccent'::regdictionary, $1) $$`,
    )
    .execute(db);
  // array_to_string is STABLE in general (element output functions); for text[] it is not.
  await sql`
    create function spots_tags_text(text[]) returns text language sql immutable strict parallel safe
    as $$ select array_to_string($1, ' ') $$`.execute(db);

  await sql`
    create table spots_spot (
      id uuid primary key,
      owner_id uuid not null,
      name text not null,
      description text not null default '',
      address text,
      category text not null,
      tags text[] not null default '{}',
      language regconfig not null default 'english',
      lat double precision not null check (lat between -90 and 90),
      lng double precision not null check (lng between -180 and 180),
      cover_picture_id uuid,
      status text not null default 'visible' check (status in ('visible', 'pending', 'hidden')),
      moderation_reason text,
      report_count integer not null default 0,
      favourite_count integer not null default 0,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      name_norm text generated always as (lower(spots_unaccent(name))) stored,
      search tsvector generated always as (
        setweight(to_tsvector(language, spots_unaccent(name)), 'A') ||
        setweight(to_tsvector(language, spots_unaccent(spots_tags_text(tags))), 'B') ||
        setweight(to_tsvector(language, spots_unaccent(description)), 'C') ||
        setweight(to_tsvector(language, spots_unaccent(coalesce(address, ''))), 'D')
      ) stored
    )`.execute(db);
  // Every public read filters on exactly this predicate, so the partial indexes serve them all
  // and hidden, pending or deleted spots never enter a public scan.
  const publicRows = sql.raw(`where deleted_at is null and status = 'visible'`);
  await sql`create index spots_spot_earth_idx on spots_spot using gist (spots_earth(lat, lng)) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_point_idx on spots_spot using gist (point(lng, lat)) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_search_idx on spots_spot using gin (search) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_name_trgm_idx on spots_spot using gin (name_norm gin_trgm_ops) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_tags_idx on spots_spot using gin (tags) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_newest_idx on spots_spot (created_at desc, id desc) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_popular_idx on spots_spot (favourite_count desc, id desc) ${publicRows}`.execute(
    db,
  );
  await sql`create index spots_spot_category_idx on spots_spot (category, created_at desc, id desc) ${publicRows}`.execute(
    db,
  );
  // The owner's own list (every status) and the moderation queue.
  await sql`create index spots_spot_owner_idx on spots_spot (owner_id, created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );
  await sql`create index spots_spot_queue_idx on spots_spot (created_at, id) where deleted_at is null and status = 'pending'`.execute(
    db,
  );

  await sql`
    create table spots_picture (
      id uuid primary key,
      spot_id uuid not null references spots_spot (id) on delete cascade,
      file_id uuid not null,
      uploader_id uuid not null,
      caption text,
      status text not null default 'processing' check (status in ('processing', 'ready', 'failed')),
      created_at timestamptz not null default now(),
      deleted_at timestamptz
    )`.execute(db);
  // A file is one spot's picture at most.
  await sql`create unique index spots_picture_file_idx on spots_picture (file_id) where deleted_at is null`.execute(
    db,
  );
  await sql`create index spots_picture_spot_idx on spots_picture (spot_id, created_at, id) where deleted_at is null`.execute(
    db,
  );

  await sql`
    create table spots_favourite (
      user_id uuid not null,
      spot_id uuid not null references spots_spot (id) on delete cascade,
      created_at timestamptz not null default now(),
      primary key (user_id, spot_id)
    )`.execute(db);
  // The recount job counts one spot's rows; the caller's list reads by user.
  await sql`create index spots_favourite_spot_idx on spots_favourite (spot_id)`.execute(db);
  await sql`create index spots_favourite_user_idx on spots_favourite (user_id, created_at desc, spot_id desc)`.execute(
    db,
  );

  // One row per favourite or unfavourite, appended in its transaction: the recount job takes the
  // committed rows (skipping any another run holds) and recounts their spots in the statement
  // that deletes them, so a change committed meanwhile keeps its row for the next run. Appends
  // never conflict: no row is shared between favourites, so none is hot.
  await sql`create table spots_favourite_change (
    id bigint generated always as identity primary key,
    spot_id uuid not null
  )`.execute(db);

  await sql`
    create table spots_report (
      id uuid primary key,
      spot_id uuid not null references spots_spot (id) on delete cascade,
      reporter_id uuid not null,
      reason text not null,
      created_at timestamptz not null default now(),
      resolved_at timestamptz
    )`.execute(db);
  // One open report per user and spot: a repeat does not count twice towards the threshold.
  await sql`create unique index spots_report_open_idx on spots_report (spot_id, reporter_id) where resolved_at is null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists spots_report, spots_favourite_change, spots_favourite, spots_picture, spots_spot`.execute(
    db,
  );
  await sql`drop function if exists spots_tags_text(text[])`.execute(db);
  await sql`drop function if exists spots_unaccent(text)`.execute(db);
  await sql`drop function if exists spots_earth(double precision, double precision)`.execute(db);
  // The extensions stay: other modules (or the operator) may use them.
}
