import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sql, type ColumnType, type Kysely } from 'kysely';
import { Type } from 'typebox';
import {
  addUpdatedAtTrigger,
  listQuerySchema,
  pageSchema,
  paginate,
  parseListQuery,
  softDelete,
  withBaseColumns,
  withSoftDelete,
  type ListSpec,
  type PaginateOptions,
  tablesOf,
  type AnyDb,
} from '../../src/platform/db/index.ts';
import { HttpCodes, HttpError } from '../../src/platform/http/index.ts';
import { defineApp } from '../../src/platform/modules/index.ts';

/** Timestamps are written as ISO strings in tests (to keep their microseconds) and read as Dates. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface WidgetsTable {
  id: string;
  name: string;
  description: string | null;
  status: string;
  price: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** The test tables; kept out of the platform's `DB` so no other code sees them. */
export interface WidgetsDB {
  widgets: WidgetsTable;
}

/** The widgets listing: what clients may filter, sort and search on. */
export const widgetSpec: ListSpec = {
  name: 'widgets',
  filters: {
    name: { column: 'name', type: 'string', ops: ['eq', 'in', 'contains'] },
    status: { column: 'status', type: 'string', ops: ['eq', 'in'] },
    price: { column: 'price', type: 'integer', ops: ['gte', 'lte', 'eq'] },
    createdAt: { column: 'created_at', type: 'timestamp', ops: ['gte', 'lte'] },
  },
  sorts: { createdAt: 'created_at', name: 'name', price: 'price' },
  defaultSort: '-createdAt',
  search: { columns: ['name', 'description'], config: 'english' },
};

export const WidgetSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  price: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

/**
 * The expression the search helper generates for `widgetSpec.search` (see `listConditions`); the
 * GIN index is built on exactly this, or the planner cannot use it for `q`.
 */
export const WIDGET_SEARCH_VECTOR =
  "to_tsvector('english'::regconfig, coalesce(name::text, '') || ' ' || coalesce(description::text, ''))";

/** Index names, for EXPLAIN assertions. */
export const WidgetIndexes = {
  createdAt: 'widgets_created_at_id_idx',
  name: 'widgets_name_id_idx',
  price: 'widgets_price_id_idx',
  status: 'widgets_status_created_at_id_idx',
  search: 'widgets_search_idx',
} as const;

/** Creates `widgets` with the platform's conventions and the indexes its hot queries need. */
export async function createWidgetsTable(db: AnyDb): Promise<void> {
  await withSoftDelete(
    withBaseColumns(db.schema.createTable('widgets'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('price', 'integer', (c) => c.notNull()),
  ).execute();
  await addUpdatedAtTrigger(db, 'widgets');
  // Keyset order of the default sort (-createdAt, then -id as the tiebreaker).
  await sql`create index ${sql.id(WidgetIndexes.createdAt)} on widgets (created_at desc, id desc)`.execute(
    db,
  );
  await sql`create index ${sql.id(WidgetIndexes.name)} on widgets (name, id)`.execute(db);
  await sql`create index ${sql.id(WidgetIndexes.price)} on widgets (price, id)`.execute(db);
  await sql`create index ${sql.id(WidgetIndexes.status)} on widgets (status, created_at desc, id desc) where deleted_at is null`.execute(
    db,
  );
  await sql`create index ${sql.id(WidgetIndexes.search)} on widgets using gin (${sql.raw(WIDGET_SEARCH_VECTOR)})`.execute(
    db,
  );
}

/** The base query of the listing: items that are not soft-deleted. */
function widgetsBase(db: Kysely<WidgetsDB>) {
  return db
    .selectFrom('widgets')
    .select([
      'id',
      'name',
      'description',
      'status',
      'price',
      'created_at as createdAt',
      'updated_at as updatedAt',
    ])
    .where('deleted_at', 'is', null);
}

// One base factory per database handle, as a route holds one: statements compile once per shape.
const bases = new WeakMap<Kysely<WidgetsDB>, () => ReturnType<typeof widgetsBase>>();

/** The list query of `GET /widgets`: parse, then paginate the rows that are not soft-deleted. */
export async function listWidgets(
  db: Kysely<WidgetsDB>,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(widgetSpec, query);
  let base = bases.get(db);
  if (!base) bases.set(db, (base = () => widgetsBase(db)));
  return paginate(db, widgetSpec, list, base, options);
}

/** The same listing with the base query built and compiled on every call (the uncached path). */
export async function listWidgetsUncached(
  db: Kysely<WidgetsDB>,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(widgetSpec, query);
  return paginate(db, widgetSpec, list, widgetsBase(db), options);
}

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** A test app over the data layer: a paginated, filterable, searchable listing with soft delete. */
export const widgetsApp = defineApp({
  name: 'widgets',
  description: 'Widgets: a listing used by the data-layer tests.',
  routes: async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const { config, database } = fastify.platform;
    const db = tablesOf<WidgetsDB>(database.db);
    const raw = db;

    app.get(
      '/widgets',
      {
        schema: {
          tags: ['widgets'],
          querystring: listQuerySchema(widgetSpec),
          response: { 200: pageSchema(WidgetSchema) },
        },
      },
      async (request) =>
        listWidgets(db, request.query as Record<string, unknown>, {
          secret: config.secrets.appSecret,
          estimateAbove: config.database.estimateAbove,
        }),
    );

    app.delete(
      '/widgets/:id',
      { schema: { tags: ['widgets'], params: IdParams } },
      async (request, reply) => {
        if (!(await softDelete.remove(raw, 'widgets', request.params.id)))
          throw new HttpError(HttpCodes.NOT_FOUND, { detail: 'No such widget.' });
        return reply.code(204).send();
      },
    );

    app.post(
      '/widgets/:id/restore',
      { schema: { tags: ['widgets'], params: IdParams } },
      async (request, reply) => {
        if (!(await softDelete.restore(raw, 'widgets', request.params.id)))
          throw new HttpError(HttpCodes.NOT_FOUND, { detail: 'No deleted widget with this id.' });
        return reply.code(204).send();
      },
    );
  },
});
