import { sql, type CompiledQuery, type Expression, type SqlBool } from 'kysely';
import { Type, type TSchema } from 'typebox';
import { decodeCursor, encodeCursor } from './cursor.ts';
import {
  applyListFilters,
  listParameters,
  type AnyEb,
  type AnySelect,
  type ListQuery,
  type ListSpec,
} from './list-query.ts';
import type { AnyDb } from './database.ts';
import { preparedQuery } from './prepared.ts';

/** The `page` member of a list response. */
export interface PageInfo {
  limit: number;
  nextCursor: string | null;
  hasMore: boolean;
  page?: number;
  size?: number;
  total?: number;
  pages?: number;
  totalIsEstimate?: boolean;
}

export interface Page<T> {
  items: T[];
  page: PageInfo;
}

export interface PaginateOptions {
  /** Signs cursors (`APP_SECRET`). */
  secret: string;
  /** Above this planner estimate, offset totals are estimated (`PAGINATION_ESTIMATE_ABOVE`). */
  estimateAbove: number;
  /**
   * Runs keyset pages as named prepared statements, one per listing shape (prepared.ts): for an
   * app's main listing. Off by default.
   */
  prepared?: boolean;
}

/** The response schema of a paginated list of `item`. */
export function pageSchema(item: TSchema): TSchema {
  return Type.Object({
    items: Type.Array(item),
    page: Type.Object({
      limit: Type.Integer(),
      nextCursor: Type.Union([Type.String(), Type.Null()], {
        description: 'Pass as `cursor` for the next page; null on the last.',
      }),
      hasMore: Type.Boolean(),
      page: Type.Optional(Type.Integer()),
      size: Type.Optional(Type.Integer()),
      total: Type.Optional(Type.Integer()),
      pages: Type.Optional(Type.Integer()),
      totalIsEstimate: Type.Optional(
        Type.Boolean({
          description: 'True when `total` is the planner estimate of a large table.',
        }),
      ),
    }),
  });
}

type Key = string | number | null;

function orderColumns(spec: ListSpec, list: ListQuery): { column: string; desc: boolean }[] {
  const id = spec.idColumn ?? 'id';
  const cols = list.sort.map((s) => ({ column: s.column, desc: s.desc }));
  if (!cols.some((c) => c.column === id))
    cols.push({ column: id, desc: cols.at(-1)?.desc ?? false });
  return cols;
}

/**
 * Rows strictly after `keys` in the given order: a >= x and ((a > x) or (a = x and b > y) or ...).
 * The redundant bound on the leading column is what the index can seek to: the OR alone is only a
 * filter, so each later page would scan (and discard) every row before the cursor.
 */
function after(
  eb: AnyEb,
  cols: { column: string; desc: boolean }[],
  keys: Key[],
): Expression<SqlBool> {
  // One direction for every column: a row comparison, which PostgreSQL turns into one index bound.
  if (cols.every((c) => c.desc === cols[0]?.desc)) {
    const row = sql.join(cols.map((c) => sql.ref(c.column)));
    const values = sql.join(keys.map((k) => sql`${k}`));
    return sql<SqlBool>`(${row}) ${sql.raw(cols[0]?.desc ? '<' : '>')} (${values})`;
  }
  // Mixed directions: (a > x) or (a = x and b < y) ..., bounded on the first column so that the
  // cursor position still starts the index scan.
  const branches = cols.map((col, i) => {
    const equal = cols.slice(0, i).map((c, j) => eb(sql.ref(c.column), '=', keys[j]));
    return eb.and([...equal, eb(sql.ref(col.column), col.desc ? '<' : '>', keys[i])]);
  });
  const [lead] = cols;
  if (!lead) return eb.or(branches);
  return eb.and([eb(sql.ref(lead.column), lead.desc ? '<=' : '>=', keys[0]), eb.or(branches)]);
}

function signature(
  spec: ListSpec,
  list: ListQuery,
  cols: { column: string; desc: boolean }[],
): string {
  const filters = list.filters
    .map((f) => `${f.field}:${f.op}:${JSON.stringify(f.value)}`)
    .join('&');
  return `${spec.name}|${cols.map((c) => `${c.desc ? '-' : ''}${c.column}`).join(',')}|${filters}|${list.search ?? ''}`;
}

/**
 * Where a bound value goes in a statement compiled once for a listing's shape: the statement is
 * built with these in place of the values, and each request binds its own values by index.
 */
class Slot {
  readonly index: number;
  constructor(index: number) {
    this.index = index;
  }
}

/** A keyset page statement compiled once: SQL, and each parameter's slot or constant value. */
interface CompiledPage {
  compiled: CompiledQuery;
  /** The same, marked to run as a named prepared statement. */
  prepared: CompiledQuery;
  params: readonly (Slot | { constant: unknown })[];
}

/** Most compiled shapes kept per base query (filters and sorts combine; each is a few hundred bytes). */
const MAX_SHAPES = 256;
const compiledPages = new WeakMap<() => AnySelect, Map<string, CompiledPage>>();

/** The base query of a listing: the query itself, or a factory called once per listing shape. */
export type ListBase<QB extends AnySelect> = QB | (() => QB);

type RowOf<QB extends AnySelect> = Awaited<ReturnType<QB['execute']>>[number];

/**
 * Runs a list query with keyset (cursor) or offset pagination, as the parsed query asks.
 * `base` selects the item columns from the base table; filters, order and limits are added here.
 * Keyset keys are read back as text from PostgreSQL, so timestamps keep their microseconds.
 *
 * Pass `base` as a factory defined once per route (`const base = () => db.selectFrom(...)`):
 * keyset statements are then built and compiled once per listing shape (sort, filter fields and
 * operators, search, first or later page) and each request only binds its values. Building and
 * compiling the Kysely query was the largest cost of a list request after the driver's own
 * (docs/benchmarks.md). A query passed directly is built and compiled on every call.
 */
export async function paginate<QB extends AnySelect>(
  db: AnyDb,
  spec: ListSpec,
  list: ListQuery,
  base: ListBase<QB>,
  options: PaginateOptions,
): Promise<Page<RowOf<QB>>> {
  type Row = RowOf<QB>;
  const cols = orderColumns(spec, list);
  const qb = typeof base === 'function' ? undefined : base;

  if (list.mode === 'offset') {
    let query: AnySelect = applyListFilters(spec, list, qb ?? (base as () => QB)());
    const filtered = query;
    for (const c of cols) query = query.orderBy(sql.ref(c.column), c.desc ? 'desc' : 'asc');
    const rows = (await query
      .limit(list.limit)
      .offset((list.page - 1) * list.limit)
      .execute()) as Row[];
    const info: PageInfo = {
      limit: list.limit,
      nextCursor: null,
      hasMore: false,
      page: list.page,
      size: list.limit,
    };
    if (list.count) {
      const { total, estimated } = await countRows(db, filtered, options.estimateAbove);
      info.total = total;
      info.pages = Math.ceil(total / list.limit);
      info.hasMore = list.page < info.pages;
      if (estimated) info.totalIsEstimate = true;
    } else {
      info.hasMore = rows.length === list.limit;
    }
    return { items: rows, page: info };
  }

  const sig = signature(spec, list, cols);
  const keys =
    list.cursor === null ? null : decodeCursor(options.secret, sig, list.cursor, cols.length);
  // The values in binding order: filters and search, the cursor's keys, the limit.
  const values: unknown[] = [...listParameters(spec, list), ...(keys ?? []), list.limit + 1];
  const build = (from: AnySelect, param: (index: number) => unknown): AnySelect => {
    let query = applyListFilters(spec, list, from, param);
    const filterCount = listParameters(spec, list).length;
    if (keys !== null) {
      const bound = keys.map((_, i) => param(filterCount + i)) as Key[];
      query = query.where((eb: AnyEb) => after(eb, cols, bound));
    }
    cols.forEach((c, i) => {
      query = query
        .select(sql<string>`${sql.ref(c.column)}::text`.as(`__k${i}`))
        .orderBy(sql.ref(c.column), c.desc ? 'desc' : 'asc');
    });
    return query.limit(param(values.length - 1) as number);
  };

  let rows: Record<string, unknown>[];
  if (qb !== undefined && options.prepared !== true) {
    rows = (await build(qb, (i) => values[i]).execute()) as Record<string, unknown>[];
  } else if (qb !== undefined) {
    const compiled = build(qb, (i) => values[i]).compile() as CompiledQuery<
      Record<string, unknown>
    >;
    rows = (await db.executeQuery(preparedQuery(compiled))).rows;
  } else {
    const page = compiledPage(base as () => AnySelect, shapeOf(spec, list, cols, keys), build);
    const parameters = page.params.map((p) => (p instanceof Slot ? values[p.index] : p.constant));
    const result = await db.executeQuery<Record<string, unknown>>({
      ...(options.prepared === true ? page.prepared : page.compiled),
      parameters,
    });
    rows = result.rows;
  }
  const hasMore = rows.length > list.limit;
  const pageRows = hasMore ? rows.slice(0, list.limit) : rows;
  const last = pageRows.at(-1);
  // The keys are read into the cursor, then dropped from the items (one pass, no `delete`).
  const keyNames = new Set(cols.map((_, i) => `__k${i}`));
  const items = pageRows.map((row) => {
    const item: Record<string, unknown> = {};
    for (const name in row) if (!keyNames.has(name)) item[name] = row[name];
    return item;
  });
  const nextCursor =
    hasMore && last
      ? encodeCursor(
          options.secret,
          sig,
          cols.map((_, i) => (last[`__k${i}`] as string | null) ?? null),
        )
      : null;
  return { items, page: { limit: list.limit, nextCursor, hasMore } };
}

/** What decides a keyset statement's SQL: everything but the bound values. */
function shapeOf(
  spec: ListSpec,
  list: ListQuery,
  cols: { column: string; desc: boolean }[],
  keys: readonly Key[] | null,
): string {
  const filters = list.filters
    .map(
      (f) =>
        `${f.column}:${f.op}${f.op === 'in' ? `:${String((f.value as unknown[]).length)}` : ''}`,
    )
    .join('&');
  const order = cols.map((c) => `${c.desc ? '-' : ''}${c.column}`).join(',');
  const search = list.search !== null && spec.search ? 'q' : '';
  return `${spec.name}|${order}|${filters}|${search}|${keys === null ? 'first' : 'after'}`;
}

function compiledPage(
  base: () => AnySelect,
  shape: string,
  build: (from: AnySelect, param: (index: number) => unknown) => AnySelect,
): CompiledPage {
  let shapes = compiledPages.get(base);
  if (!shapes) compiledPages.set(base, (shapes = new Map<string, CompiledPage>()));
  let page = shapes.get(shape);
  if (!page) {
    const compiled = build(base(), (i) => new Slot(i)).compile();
    const params = compiled.parameters.map((p) => (p instanceof Slot ? p : { constant: p }));
    page = { compiled, prepared: preparedQuery(compiled), params };
    // A bounded map: a listing with many filter combinations evicts its oldest shapes.
    if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value as string);
    shapes.set(shape, page);
  }
  return page;
}

/** Exact count, or the planner's estimate when that is above `estimateAbove` rows. */
async function countRows(
  db: AnyDb,
  base: AnySelect,
  estimateAbove: number,
): Promise<{ total: number; estimated: boolean }> {
  const compiled = base.compile();
  type Plan = { 'QUERY PLAN': { Plan: { 'Plan Rows': number } }[] };
  const plan = sql<Plan>`explain (format json) ${sql.raw(compiled.sql)}`;
  // The plan is for the filtered query itself; parameters are bound as in the real query.
  const explained = await db.executeQuery<Plan>({
    ...plan.compile(db),
    parameters: compiled.parameters,
  });
  const estimate = Math.round(explained.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0);
  if (estimate > estimateAbove) return { total: estimate, estimated: true };
  const counted = await db
    .selectFrom(
      base
        .clearSelect()
        .select(sql`1`.as('one'))
        .as('filtered'),
    )
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return { total: Number(counted.n), estimated: false };
}
