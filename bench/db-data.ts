/**
 * What the database benchmark's parent (`db.ts`) and its server children (`db-server.ts`) share:
 * the table, the listing spec, the response schema and the hand-written first-page SQL.
 */
import type { ColumnType } from 'kysely';
import { Type } from 'typebox';
import type { ListSpec } from '../src/platform/db/index.ts';

export const SERVER_KINDS = ['bare', 'groundwork'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

/** Both servers answer on the same path; Groundwork mounts its apps under `/api/v1`. */
export const LIST_PATH = '/api/v1/bench/widgets';
export const PAGE_SIZE = 20;
/** The same for both servers (Groundwork's `DATABASE_POOL_MAX` default). */
export const POOL_SIZE = 10;
/** `application_name` of each server's connections, so the parent can find their backends. */
export const APPLICATION_NAME: Record<ServerKind, string> = {
  bare: 'bench:bare',
  groundwork: 'groundwork:bench',
};

export interface WidgetsTable {
  id: string;
  created_at: ColumnType<Date, string, string>;
  name: string;
  status: string;
  price: number;
}

export interface BenchDB {
  widgets: WidgetsTable;
}

/** The listing: newest first, `id` as the tiebreaker (index `(created_at desc, id desc)`). */
export const widgetSpec: ListSpec = {
  name: 'bench-widgets',
  filters: { status: { column: 'status', type: 'string', ops: ['eq'] } },
  sorts: { createdAt: 'created_at' },
  defaultSort: '-createdAt',
};

export const WidgetSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  status: Type.String(),
  price: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});

/**
 * The bare server's first page, written by hand: the same columns, order and `limit $1` (21: one
 * more than the page, to know whether there is a next one) as the query `paginate` builds, plus
 * the sort key as text for the next-page cursor.
 */
export const FIRST_PAGE_SQL =
  'select id, name, status, price, created_at as "createdAt", created_at::text as "key" ' +
  'from widgets order by created_at desc, id desc limit $1';
