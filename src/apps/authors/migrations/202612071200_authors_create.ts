import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, withBaseColumns } from '../../../platform/db/index.ts';

export async function up(db: Kysely<unknown>): Promise<void> {
  await withBaseColumns(db.schema.createTable('authors'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('bio', 'text')
    .addColumn('birth_date', 'date')
    .addColumn('links', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('avatar_file_id', 'uuid')
    .addColumn('created_by', 'uuid', (c) => c.notNull())
    .execute();
  await addUpdatedAtTrigger(db, 'authors');
  // The listing's keyset orders (newest first; by name), id as the tiebreaker.
  await sql`create index authors_created_idx on authors (created_at desc, id desc)`.execute(db);
  await sql`create index authors_name_idx on authors (name, id)`.execute(db);
  // `q`: full-text search over name and bio.
  await sql`create index authors_search_idx on authors using gin (to_tsvector('simple'::regconfig, coalesce(name::text, '') || ' ' || coalesce(bio::text, '')))`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('authors').execute();
}
