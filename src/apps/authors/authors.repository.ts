import { sql, type ColumnType, type Kysely } from 'kysely';
import {
  paginate,
  parseListQuery,
  tablesOf,
  type AnyDb,
  type PaginateOptions,
} from '../../platform/db/index.ts';
import { authorListSpec } from './authors.schemas.ts';

type Timestamp = ColumnType<Date, never, never>;

/** The authors app's table, its own view of the database. */
export interface AuthorsDB {
  authors: {
    id: string;
    name: string;
    bio: string | null;
    birth_date: string | null;
    links: string[];
    avatar_file_id: string | null;
    created_by: ColumnType<string, string, never>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
}

export function authorsDb(db: AnyDb): Kysely<AuthorsDB> {
  return tablesOf<AuthorsDB>(db);
}

export interface AuthorRow {
  id: string;
  name: string;
  bio: string | null;
  birthDate: string | null;
  links: string[];
  avatarFileId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The fields a write sets (the database's names are the repository's business). */
export interface AuthorFields {
  name: string;
  bio: string | null;
  birthDate: string | null;
  links: string[];
  avatarFileId: string | null;
}

// `date` read as its text (`YYYY-MM-DD`): never shifted by a time zone.
const COLUMNS = [
  'id',
  'name',
  'bio',
  sql<string | null>`birth_date::text`.as('birthDate'),
  'links',
  'avatar_file_id as avatarFileId',
  'created_at as createdAt',
  'updated_at as updatedAt',
] as const;

export function insertAuthor(
  db: Kysely<AuthorsDB>,
  author: AuthorFields & { id: string; createdBy: string },
): Promise<AuthorRow> {
  return db
    .insertInto('authors')
    .values({
      id: author.id,
      name: author.name,
      bio: author.bio,
      birth_date: author.birthDate,
      links: author.links,
      avatar_file_id: author.avatarFileId,
      created_by: author.createdBy,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

/** One author; `forUpdate` locks its row for the rest of the transaction. */
export function findAuthor(
  db: Kysely<AuthorsDB>,
  id: string,
  forUpdate = false,
): Promise<AuthorRow | undefined> {
  const query = db.selectFrom('authors').select(COLUMNS).where('id', '=', id);
  return (forUpdate ? query.forUpdate() : query).executeTakeFirst();
}

export function updateAuthor(
  db: Kysely<AuthorsDB>,
  id: string,
  fields: AuthorFields,
): Promise<AuthorRow> {
  return db
    .updateTable('authors')
    .set({
      name: fields.name,
      bio: fields.bio,
      birth_date: fields.birthDate,
      links: fields.links,
      avatar_file_id: fields.avatarFileId,
    })
    .where('id', '=', id)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

export async function deleteAuthor(db: Kysely<AuthorsDB>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('authors').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** One page of authors; `query` is the listing's `limit`, `cursor`, `sort` and `q`. */
export function listAuthors(
  db: Kysely<AuthorsDB>,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(authorListSpec, query);
  // Keyset pages as named prepared statements, one per listing shape (the platform's paginate).
  return paginate(db, authorListSpec, list, db.selectFrom('authors').select(COLUMNS), {
    ...options,
    prepared: true,
  });
}
