import { sql, type Kysely } from 'kysely';

/**
 * Bounded text search (issue 17's benchmark: ranking every match of a broad query read and scored
 * 17,000 tsvectors, seconds at p99). Relevance is now a tier, then popularity: a spot is in the
 * first tier whose fields hold the whole query, name (0), name and tags (1), name, tags and
 * description (2), or anywhere, address included (3). Each tier is one column here with its own
 * GIN index, so a tier's matches are either few (the index finds them all, then a top-N sort) or
 * many (the popularity index is walked and each row checked: a page needs few rows), and a page
 * never ranks every match. Stored, so the walk checks a small vector rather than parsing text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const name = sql`to_tsvector(language, spots_unaccent(name))`;
  const tags = sql`to_tsvector(language, spots_unaccent(spots_tags_text(tags)))`;
  const description = sql`to_tsvector(language, spots_unaccent(description))`;
  await sql`
    alter table spots_spot
      add column search_name tsvector generated always as (${name}) stored,
      add column search_tags tsvector generated always as (${name} || ${tags}) stored,
      add column search_text tsvector generated always as (${name} || ${tags} || ${description}) stored`.execute(
    db,
  );
  const publicRows = sql.raw(`where deleted_at is null and status = 'visible'`);
  for (const column of ['search_name', 'search_tags', 'search_text'])
    await sql`create index ${sql.id(`spots_spot_${column}_idx`)} on spots_spot using gin (${sql.id(column)}) ${publicRows}`.execute(
      db,
    );
  // The new columns' statistics (how common each word is), which the planner's choice between a
  // tier's index and the popularity walk rests on.
  await sql`analyze spots_spot`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Dropping the columns drops their indexes.
  await sql`
    alter table spots_spot
      drop column if exists search_text,
      drop column if exists search_tags,
      drop column if exists search_name`.execute(db);
}
