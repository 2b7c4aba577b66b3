import { sql, type Kysely } from 'kysely';

/**
 * The catalogue (datasets, versions, API keys) in the application schema, and the schema
 * `public_data` that holds one table per imported version (named by the app, never by a user).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create schema if not exists public_data`.execute(db);
  // `near=` on geo columns: great-circle distances with an index (both extensions are trusted).
  await sql`create extension if not exists cube`.execute(db);
  await sql`create extension if not exists earthdistance`.execute(db);
  await sql`
    create table pd_dataset (
      id uuid primary key,
      slug text not null,
      title text not null,
      description text not null default '',
      license text not null default '',
      source text not null default '',
      tags text[] not null default '{}',
      current_version integer,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz
    )`.execute(db);
  await sql`create unique index pd_dataset_slug_idx on pd_dataset (slug) where deleted_at is null`.execute(
    db,
  );
  await sql`create index pd_dataset_tags_idx on pd_dataset using gin (tags) where deleted_at is null`.execute(
    db,
  );
  await sql`
    create table pd_version (
      id uuid primary key,
      dataset_id uuid not null references pd_dataset (id) on delete cascade,
      number integer not null,
      status text not null check (status in ('queued', 'importing', 'ready', 'failed', 'retired')),
      file_id uuid not null,
      format text not null check (format in ('csv', 'ndjson')),
      job_id text,
      table_name text,
      overrides jsonb not null default '{}',
      columns jsonb not null default '[]',
      search_config text not null default 'simple',
      row_count bigint not null default 0,
      bad_row_count bigint not null default 0,
      bad_rows jsonb not null default '[]',
      warnings jsonb not null default '[]',
      failure_code text,
      failure text,
      created_by uuid,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      finished_at timestamptz,
      unique (dataset_id, number)
    )`.execute(db);
  await sql`
    create table pd_api_key (
      id uuid primary key,
      name text not null,
      prefix text not null unique,
      key_hash bytea not null,
      rate_limit_per_min integer not null,
      request_count bigint not null default 0,
      last_used_at timestamptz,
      created_by uuid,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table pd_api_key`.execute(db);
  await sql`drop table pd_version`.execute(db);
  await sql`drop table pd_dataset`.execute(db);
  // Every version's table goes with the schema; the extensions may serve others: kept.
  await sql`drop schema public_data cascade`.execute(db);
}
