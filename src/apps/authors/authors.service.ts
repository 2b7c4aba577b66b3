import { auditChanges, recordAudit } from '../../platform/audit/index.ts';
import type { Cache } from '../../platform/cache/index.ts';
import {
  newId,
  withTransaction,
  type Database,
  type PaginateOptions,
} from '../../platform/db/index.ts';
import type { Events } from '../../platform/events/index.ts';
import { lookupFiles } from '../../platform/files/index.ts';
import { HttpCodes, HttpError } from '../../platform/http/index.ts';
import { AuthorsCodes } from './authors.errors.ts';
import { authorCreated, authorDeleted, authorUpdated } from './authors.events.ts';
import {
  authorsDb,
  deleteAuthor,
  findAuthor,
  insertAuthor,
  listAuthors,
  updateAuthor,
  type AuthorFields,
  type AuthorRow,
} from './authors.repository.ts';
import type { AuthorResponse, CreateAuthorBody, UpdateAuthorBody } from './authors.schemas.ts';

/** The avatar's file purpose (declared in index.ts). */
export const AVATAR_PURPOSE = 'authors.avatar';

/** Who acts: from an HTTP request or a WebSocket command alike. */
export interface Actor {
  userId: string;
  requestId: string;
  ip: string | null;
}

export interface AuthorsServiceOptions {
  database: Database;
  events: Events;
  paging: PaginateOptions;
  /** The platform's data cache: one author read through it (seed 003, query result caching). */
  cache: Cache;
}

/**
 * How long a cached author may be served (s). Each change drops it after its commit; this bounds
 * the staleness left by the one race invalidation cannot close (a read that started before the
 * change's commit storing its old row after the drop) and by a lost invalidation (Redis down).
 */
export const AUTHOR_CACHE_TTL_SECONDS = 30;
const authorTag = (id: string) => `author:${id}`;

export function toAuthorResponse(row: AuthorRow): AuthorResponse {
  return {
    id: row.id,
    name: row.name,
    bio: row.bio,
    birthDate: row.birthDate,
    links: row.links,
    avatarFileId: row.avatarFileId,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

const notFound = () =>
  new HttpError(HttpCodes.NOT_FOUND, { detail: 'No author has this identifier.' });

/**
 * The authors app's rules, the same for HTTP routes and WebSocket commands: no Fastify, no
 * socket, no SQL. Every change is written with its audit record and its domain event in one
 * transaction (the event reaches the `authors` channel after the commit).
 */
export class AuthorsService {
  readonly #options: AuthorsServiceOptions;

  constructor(options: AuthorsServiceOptions) {
    this.#options = options;
  }

  async list(query: Readonly<Record<string, unknown>>) {
    const page = await listAuthors(
      authorsDb(this.#options.database.db),
      query,
      this.#options.paging,
    );
    return { ...page, items: page.items.map(toAuthorResponse) };
  }

  /** One author, through the cache (an unknown id is cached as `null`, so misses cost no query). */
  async get(id: string): Promise<AuthorResponse> {
    const { cache, database } = this.#options;
    const author = await cache.getOrSet(
      cache.key('author', id),
      async () => {
        const row = await findAuthor(authorsDb(database.db), id);
        return row ? toAuthorResponse(row) : null;
      },
      { ttlSeconds: AUTHOR_CACHE_TTL_SECONDS, tags: [authorTag(id)] },
    );
    if (!author) throw notFound();
    return author;
  }

  /** Drops the cached author after a change has committed (a failure is only staleness). */
  async #forget(id: string): Promise<void> {
    await this.#options.cache.invalidateTag(authorTag(id)).catch(() => undefined);
  }

  async create(input: CreateAuthorBody, actor: Actor): Promise<AuthorResponse> {
    const fields: AuthorFields = {
      name: input.name.trim(),
      bio: input.bio ?? null,
      birthDate: input.birthDate ?? null,
      links: input.links ?? [],
      avatarFileId: input.avatarFileId ?? null,
    };
    checkBirthDate(fields.birthDate);
    const { database, events } = this.#options;
    const created = await withTransaction(database.db, async (trx) => {
      await this.#checkAvatar(trx, fields.avatarFileId, actor);
      const row = await insertAuthor(authorsDb(trx), {
        ...fields,
        id: newId(),
        createdBy: actor.userId,
      });
      const author = toAuthorResponse(row);
      await events.publish(trx, authorCreated, {
        data: { author },
        subject: { type: 'author', id: author.id },
        actorId: actor.userId,
        requestId: actor.requestId,
      });
      // Last in the transaction: the audit chain's lock is held until the commit.
      await recordAudit(trx, {
        action: 'authors.author.create',
        actorId: actor.userId,
        subjectType: 'author',
        subjectId: author.id,
        ip: actor.ip,
        requestId: actor.requestId,
        data: { changes: auditChanges({}, { ...fields }) },
      });
      return author;
    });
    await this.#forget(created.id); // an earlier read of this id cached `null`
    return created;
  }

  async update(id: string, patch: UpdateAuthorBody, actor: Actor): Promise<AuthorResponse> {
    if (patch.birthDate !== undefined) checkBirthDate(patch.birthDate);
    const { database, events } = this.#options;
    const updated = await withTransaction(database.db, async (trx) => {
      const db = authorsDb(trx);
      const before = await findAuthor(db, id, true);
      if (!before) throw notFound();
      const fields: AuthorFields = {
        name: patch.name?.trim() ?? before.name,
        bio: patch.bio === undefined ? before.bio : patch.bio,
        birthDate: patch.birthDate === undefined ? before.birthDate : patch.birthDate,
        links: patch.links ?? before.links,
        avatarFileId: patch.avatarFileId === undefined ? before.avatarFileId : patch.avatarFileId,
      };
      if (fields.avatarFileId !== before.avatarFileId)
        await this.#checkAvatar(trx, fields.avatarFileId, actor);
      const previous: AuthorFields = {
        name: before.name,
        bio: before.bio,
        birthDate: before.birthDate,
        links: before.links,
        avatarFileId: before.avatarFileId,
      };
      const changes = auditChanges({ ...previous }, { ...fields });
      if (Object.keys(changes).length === 0) return toAuthorResponse(before);
      const author = toAuthorResponse(await updateAuthor(db, id, fields));
      await events.publish(trx, authorUpdated, {
        data: { author, changed: Object.keys(changes).sort() },
        subject: { type: 'author', id },
        actorId: actor.userId,
        requestId: actor.requestId,
      });
      await recordAudit(trx, {
        action: 'authors.author.update',
        actorId: actor.userId,
        subjectType: 'author',
        subjectId: id,
        ip: actor.ip,
        requestId: actor.requestId,
        data: { changes },
      });
      return author;
    });
    await this.#forget(id);
    return updated;
  }

  async delete(id: string, actor: Actor): Promise<void> {
    const { database, events } = this.#options;
    await withTransaction(database.db, async (trx) => {
      const db = authorsDb(trx);
      const before = await findAuthor(db, id, true);
      if (!before || !(await deleteAuthor(db, id))) throw notFound();
      await events.publish(trx, authorDeleted, {
        data: { authorId: id },
        subject: { type: 'author', id },
        actorId: actor.userId,
        requestId: actor.requestId,
      });
      await recordAudit(trx, {
        action: 'authors.author.delete',
        actorId: actor.userId,
        subjectType: 'author',
        subjectId: id,
        ip: actor.ip,
        requestId: actor.requestId,
        data: { name: before.name },
      });
    });
    await this.#forget(id);
  }

  /** The avatar must be an `authors.avatar` file the actor uploaded, not failed. */
  async #checkAvatar(
    db: Parameters<typeof lookupFiles>[0],
    fileId: string | null,
    actor: Actor,
  ): Promise<void> {
    if (fileId === null) return;
    const found = (
      await lookupFiles(db, [fileId], { purpose: AVATAR_PURPOSE, ownerId: actor.userId })
    ).get(fileId);
    if (!found || found.status === 'failed')
      throw new HttpError(AuthorsCodes.AUTHOR_AVATAR_NOT_FOUND, {
        detail: 'Upload the avatar first (purpose `authors.avatar`) and use its id.',
      });
  }
}

/** A real calendar date, not in the future (the schema checks the shape). */
function checkBirthDate(date: string | null): void {
  if (date === null) return;
  const parsed = new Date(`${date}T00:00:00Z`);
  const valid = !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(date);
  if (!valid || parsed.getTime() > Date.now())
    throw new HttpError(AuthorsCodes.AUTHOR_BIRTH_DATE_INVALID, {
      detail: '`birthDate` must be a real date, not in the future.',
    });
}
