import {
  sql,
  type Expression,
  type ExpressionBuilder,
  type SelectQueryBuilder,
  type SqlBool,
} from 'kysely';
import { Type, type TObject, type TOptional, type TString } from 'typebox';
import { HttpError, type FieldError } from '../http/index.ts';
import { DbCodes } from './errors.ts';

export type FilterOp = 'eq' | 'in' | 'gte' | 'lte' | 'contains';
export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'timestamp' | 'uuid';

/** A filterable field: the column it reads and the operators clients may use on it. */
export interface FilterField {
  column: string;
  type: FieldType;
  ops: readonly FilterOp[];
}

/** What a listing allows: filters, sorts, full-text search. Columns come from code, never clients. */
export interface ListSpec {
  /** Names the listing inside its cursors, so a cursor cannot be replayed on another listing. */
  name: string;
  filters?: Readonly<Record<string, FilterField>>;
  /** API sort field → column. Sort columns must be NOT NULL. */
  sorts: Readonly<Record<string, string>>;
  /** e.g. `-createdAt` (descending) or `name`. */
  defaultSort: string;
  /** Unique tiebreaker column appended to every sort (default `id`). */
  idColumn?: string;
  /** Full-text search with `q`: a `tsvector` expression over these columns, or a stored tsvector column. */
  search?: { columns?: readonly string[]; vectorColumn?: string; config?: string };
}

export interface ParsedFilter {
  field: string;
  column: string;
  op: FilterOp;
  value: string | number | boolean | (string | number)[];
}

export interface ParsedSort {
  field: string;
  column: string;
  desc: boolean;
}

export interface ListQuery {
  filters: ParsedFilter[];
  sort: ParsedSort[];
  search: string | null;
  mode: 'keyset' | 'offset';
  limit: number;
  cursor: string | null;
  page: number;
  count: boolean;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- helpers over any table: columns are names from code */
/** Any select query, whatever its tables; the list helpers work on column names from the spec. */
export type AnySelect = SelectQueryBuilder<any, any, any>;
export type AnyEb = ExpressionBuilder<any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;
const RESERVED = new Set(['limit', 'cursor', 'page', 'size', 'count', 'sort', 'q']);
const OPS: readonly FilterOp[] = ['eq', 'in', 'gte', 'lte', 'contains'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_IN = 100;

function toValue(type: FieldType, raw: string): string | number | boolean | undefined {
  switch (type) {
    case 'string':
      return raw.length <= 500 ? raw : undefined;
    case 'integer':
      return /^-?\d{1,15}$/.test(raw) ? Number(raw) : undefined;
    case 'number':
      return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : undefined;
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : undefined;
    case 'timestamp':
      // eslint-disable-next-line security/detect-unsafe-regex -- Z and +/- are outside [\d:.], the groups are optional, not repeated: linear
      return /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw) &&
        !Number.isNaN(Date.parse(raw))
        ? raw
        : undefined;
    case 'uuid':
      return UUID.test(raw) ? raw.toLowerCase() : undefined;
  }
}

function positiveInt(
  raw: unknown,
  name: string,
  max: number,
  fallback: number,
  errors: FieldError[],
): number {
  if (raw === undefined) return fallback;
  const s = typeof raw === 'string' ? raw : '';
  const n = /^\d{1,9}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= max)) {
    errors.push({ path: `/query/${name}`, message: `must be an integer from 1 to ${max}` });
    return fallback;
  }
  return n;
}

function parseSort(spec: ListSpec, raw: string, errors: FieldError[]): ParsedSort[] {
  const sort: ParsedSort[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    const desc = part.startsWith('-');
    const field = desc ? part.slice(1) : part;
    const column = Object.hasOwn(spec.sorts, field) ? spec.sorts[field] : undefined;
    if (!column) {
      errors.push({
        path: '/query/sort',
        message: `cannot sort by "${field}"; allowed: ${Object.keys(spec.sorts).join(', ')}`,
      });
      continue;
    }
    if (sort.some((s) => s.field === field)) continue;
    sort.push({ field, column, desc });
  }
  return sort;
}

/**
 * Parses a list request's query: `limit`/`cursor` (keyset) or `page`/`size`/`count` (offset),
 * `sort=-createdAt,name`, `q` for search, and filters as `field=value` or `field[op]=value`.
 * Unknown fields and operators, and values of the wrong type, give one 422 naming each.
 */
export function parseListQuery(
  spec: ListSpec,
  query: Readonly<Record<string, unknown>>,
): ListQuery {
  const errors: FieldError[] = [];
  const filters: ParsedFilter[] = [];
  for (const [key, rawValue] of Object.entries(query)) {
    if (RESERVED.has(key)) continue;
    // eslint-disable-next-line security/detect-unsafe-regex -- the optional group starts with '[', outside the name's class: linear
    const match = /^([A-Za-z][A-Za-z0-9_]*)(?:\[([a-z]+)\])?$/.exec(key);
    const field = match?.[1] ?? key;
    const op = (match?.[2] ?? 'eq') as FilterOp;
    const def =
      match && spec.filters && Object.hasOwn(spec.filters, field) ? spec.filters[field] : undefined;
    const path = `/query/${key}`;
    if (!def) {
      errors.push({
        path,
        message: `unknown filter "${field}"${spec.filters ? `; allowed: ${Object.keys(spec.filters).join(', ')}` : ''}`,
      });
      continue;
    }
    if (!OPS.includes(op) || !def.ops.includes(op)) {
      errors.push({
        path,
        message: `operator "${op}" is not allowed on "${field}"; allowed: ${def.ops.join(', ')}`,
      });
      continue;
    }
    if (typeof rawValue !== 'string') {
      errors.push({ path, message: 'must be given once' });
      continue;
    }
    if (op === 'in') {
      const parts = rawValue.split(',');
      const values = parts.map((p) => toValue(def.type, p));
      if (parts.length > MAX_IN || values.some((v) => v === undefined || typeof v === 'boolean')) {
        errors.push({
          path,
          message: `must be up to ${MAX_IN} comma-separated ${def.type} values`,
        });
        continue;
      }
      filters.push({ field, column: def.column, op, value: values as (string | number)[] });
      continue;
    }
    const value = toValue(op === 'contains' ? 'string' : def.type, rawValue);
    if (value === undefined) {
      errors.push({ path, message: `must be a ${op === 'contains' ? 'string' : def.type}` });
      continue;
    }
    filters.push({ field, column: def.column, op, value });
  }

  const sortRaw =
    typeof query.sort === 'string' && query.sort !== '' ? query.sort : spec.defaultSort;
  const sort = parseSort(spec, sortRaw, errors);

  let search: string | null = null;
  if (query.q !== undefined) {
    if (!spec.search) errors.push({ path: '/query/q', message: 'this listing has no search' });
    else if (typeof query.q !== 'string' || query.q.length > 200)
      errors.push({ path: '/query/q', message: 'must be a string of at most 200 characters' });
    else if (query.q.trim() !== '') search = query.q;
  }

  const offset = query.page !== undefined;
  if (offset && query.cursor !== undefined)
    errors.push({ path: '/query/cursor', message: 'use either cursor or page, not both' });
  const limit = positiveInt(
    offset ? (query.size ?? query.limit) : query.limit,
    offset && query.size !== undefined ? 'size' : 'limit',
    MAX_LIMIT,
    DEFAULT_LIMIT,
    errors,
  );
  const page = positiveInt(query.page, 'page', 1_000_000, 1, errors);
  let count = true;
  if (query.count !== undefined) {
    if (query.count === 'false') count = false;
    else if (query.count !== 'true')
      errors.push({ path: '/query/count', message: 'must be true or false' });
  }
  if (query.cursor !== undefined && typeof query.cursor !== 'string')
    errors.push({ path: '/query/cursor', message: 'must be given once' });

  if (errors.length > 0)
    throw new HttpError(DbCodes.INVALID_LIST_QUERY, {
      detail: 'The list query is not valid for this listing.',
      errors,
    });
  return {
    filters,
    sort,
    search,
    mode: offset ? 'offset' : 'keyset',
    limit,
    cursor: typeof query.cursor === 'string' ? query.cursor : null,
    page,
    count,
  };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The bound values of the parsed filters and search, in the order `listConditions` binds them
 * (an `in` filter gives one value per element; `contains` its escaped ILIKE pattern).
 */
export function listParameters(spec: ListSpec, list: ListQuery): unknown[] {
  const values: unknown[] = [];
  for (const f of list.filters) {
    if (f.op === 'in') values.push(...(f.value as (string | number)[]));
    else if (f.op === 'contains') values.push(`%${escapeLike(String(f.value))}%`);
    else values.push(f.value);
  }
  if (list.search !== null && spec.search) values.push(list.search);
  return values;
}

/**
 * The WHERE conditions of the parsed filters and search; every value is a bound parameter.
 * `param(i)` gives the i-th value of `listParameters` (a compiled-once statement passes
 * placeholders instead, see pagination.ts).
 */
export function listConditions(
  spec: ListSpec,
  list: ListQuery,
  eb: AnyEb,
  param?: (index: number) => unknown,
): Expression<SqlBool>[] {
  const values = param ? undefined : listParameters(spec, list);
  const at = param ?? ((i: number) => values?.[i]);
  let next = 0;
  const conditions: Expression<SqlBool>[] = list.filters.map((f) => {
    const ref = sql.ref(f.column);
    switch (f.op) {
      case 'eq':
        return eb(ref, '=', at(next++));
      case 'in':
        return eb(
          ref,
          'in',
          (f.value as unknown[]).map(() => at(next++)),
        );
      case 'gte':
        return eb(ref, '>=', at(next++));
      case 'lte':
        return eb(ref, '<=', at(next++));
      case 'contains':
        return eb(ref, 'ilike', at(next++));
    }
  });
  if (list.search !== null && spec.search) {
    const config = spec.search.config ?? 'simple';
    const vector = spec.search.vectorColumn
      ? sql.ref(spec.search.vectorColumn)
      : sql`to_tsvector(${sql.lit(config)}::regconfig, ${sql.join(
          (spec.search.columns ?? []).map((c) => sql`coalesce(${sql.ref(c)}::text, '')`),
          sql` || ' ' || `,
        )})`;
    conditions.push(
      sql<SqlBool>`${vector} @@ websearch_to_tsquery(${sql.lit(config)}::regconfig, ${at(next++)})`,
    );
  }
  return conditions;
}

/** Applies filters and search to a select query (`param`: see `listConditions`). */
export function applyListFilters<QB extends AnySelect>(
  spec: ListSpec,
  list: ListQuery,
  qb: QB,
  param?: (index: number) => unknown,
): QB {
  if (list.filters.length === 0 && list.search === null) return qb;
  return qb.where((eb: AnyEb) => eb.and(listConditions(spec, list, eb, param))) as QB;
}

/** The list query parameters for OpenAPI (each an optional string); `parseListQuery` checks the values. */
export function listQuerySchema(spec: ListSpec): TObject<Record<string, TOptional<TString>>> {
  const props: Record<string, TOptional<TString>> = {
    limit: Type.Optional(
      Type.String({
        description: `Page size, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT}).`,
        examples: ['20'],
      }),
    ),
    cursor: Type.Optional(Type.String({ description: 'Opaque cursor from `page.nextCursor`.' })),
    page: Type.Optional(
      Type.String({ description: 'Page number (offset pagination; adds `total` and `pages`).' }),
    ),
    size: Type.Optional(Type.String({ description: 'Page size with `page`.' })),
    count: Type.Optional(Type.String({ description: '`false` skips the total with `page`.' })),
    sort: Type.Optional(
      Type.String({
        description: `Comma-separated, \`-\` for descending: ${Object.keys(spec.sorts).join(', ')}.`,
        default: spec.defaultSort,
      }),
    ),
  };
  if (spec.search)
    props.q = Type.Optional(Type.String({ description: 'Full-text search (web search syntax).' }));
  for (const [field, def] of Object.entries(spec.filters ?? {})) {
    for (const op of def.ops) {
      const key = op === 'eq' ? field : `${field}[${op}]`;
      props[key] = Type.Optional(
        Type.String({
          description: `Filter ${field} (${def.type}) by ${op}${op === 'in' ? ' (comma-separated)' : ''}.`,
        }),
      );
    }
  }
  return Type.Object(props, { additionalProperties: true });
}
