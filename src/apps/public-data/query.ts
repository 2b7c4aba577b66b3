import { createHash } from 'node:crypto';
import { decodeCursor, encodeCursor } from '../../platform/db/index.ts';
import { HttpError } from '../../platform/http/index.ts';
import { fits, parseGeo, RESERVED_NAMES, type Column } from './columns.ts';
import { PublicDataCodes } from './errors.ts';
import { qualified } from './import.ts';
import type { VersionMeta } from './metadata.ts';
import { escapeLike } from './repository.ts';
import type { PublicDataSettings } from './settings.ts';

/**
 * The rows routes' query (filters, sort, search, distance, fields, facets, cursor) turned into
 * SQL over a version's table. Column names only ever come from the version's columns (`cN`);
 * values are bound parameters, or, for the exports' COPY (which takes none), literals quoted
 * here after each was checked against its column's type.
 */

export const FILTER_OPS = [
  'eq',
  'ne',
  'lt',
  'lte',
  'gt',
  'gte',
  'in',
  'contains',
  'startswith',
  'isnull',
] as const;
type FilterOp = (typeof FILTER_OPS)[number];

const KEY = /^([a-z_][a-z0-9_]{0,62})(?:\[([a-z]{1,16})\])?$/;
const MAX_TEXT = 1_000;
const MAX_SORT = 3;
const MAX_FACETS = 5;

function invalid(detail: string): HttpError {
  return new HttpError(PublicDataCodes.INVALID_FILTER, { detail });
}

/** A literal PostgreSQL reads back exactly, whatever `standard_conforming_strings` says. */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('NUL in a literal');
  const quoted = `'${value.replace(/'/g, "''")}'`;
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/** Values as `$n` parameters, or inline literals (COPY). */
export class Binder {
  readonly params: string[] = [];
  readonly inline: boolean;
  constructor(inline: boolean) {
    this.inline = inline;
  }
  bind(value: string, cast: string): string {
    if (this.inline) return `${literal(value)}::${cast}`;
    this.params.push(value);
    return `$${String(this.params.length)}::${cast}`;
  }
}

const CAST: Record<Column['type'], string> = {
  integer: 'bigint',
  decimal: 'numeric',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamptz',
  geo: 'point',
  text: 'text',
};

/** A filter value checked against its column's type, in the form PostgreSQL reads. */
function typedValue(column: Column, raw: string): string {
  const bad = () =>
    invalid(
      `${JSON.stringify(raw.slice(0, 100))} is not a ${column.type} value (column ${column.name}).`,
    );
  if (raw.includes('\0')) throw bad();
  switch (column.type) {
    case 'text':
      if (raw.length > MAX_TEXT)
        throw invalid(
          `A value of column ${column.name} is longer than ${String(MAX_TEXT)} characters.`,
        );
      return raw;
    case 'boolean':
      if (/^(true|yes|1)$/i.test(raw)) return 'true';
      if (/^(false|no|0)$/i.test(raw)) return 'false';
      throw bad();
    case 'timestamp':
      if (fits('date', raw)) return `${raw}T00:00:00Z`;
      if (!fits('timestamp', raw)) throw bad();
      return /(Z|[+-][0-9]{2}(:?[0-9]{2})?)$/i.test(raw.slice(10)) ? raw : `${raw}Z`;
    case 'geo':
      throw invalid(
        `Column ${column.name} is a geo point: filter it with near= and radiusM=, or [isnull].`,
      );
    case 'integer':
    case 'decimal':
    case 'date':
      if (!fits(column.type, raw)) throw bad();
      return raw;
  }
}

function condition(
  binder: Binder,
  column: Column,
  op: FilterOp,
  raw: string,
  settings: PublicDataSettings,
): string {
  const c = `t.${column.physical}`;
  const cast = CAST[column.type];
  switch (op) {
    case 'isnull':
      if (/^(true|1|yes)$/i.test(raw)) return `${c} is null`;
      if (/^(false|0|no)$/i.test(raw)) return `${c} is not null`;
      throw invalid(`${column.name}[isnull] takes true or false.`);
    case 'in': {
      const values = raw.split(',');
      if (values.length > settings.maxInValues)
        throw invalid(
          `${column.name}[in] lists ${String(values.length)} values; at most ${String(settings.maxInValues)} (PUBLIC_DATA_MAX_IN_VALUES).`,
        );
      return `${c} in (${values.map((v) => binder.bind(typedValue(column, v), cast)).join(', ')})`;
    }
    case 'contains':
    case 'startswith': {
      if (column.type !== 'text')
        throw invalid(
          `${column.name}[${op}] is for text columns; ${column.name} is ${column.type}.`,
        );
      const v = escapeLike(typedValue(column, raw));
      return op === 'contains'
        ? `${c} ilike ${binder.bind(`%${v}%`, 'text')}`
        : `${c} like ${binder.bind(`${v}%`, 'text')}`;
    }
    case 'eq':
    case 'ne':
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const sqlOp = { eq: '=', ne: 'is distinct from', lt: '<', lte: '<=', gt: '>', gte: '>=' }[op];
      return `${c} ${sqlOp} ${binder.bind(typedValue(column, raw), cast)}`;
    }
  }
}

export interface SortKey {
  readonly column: Column;
  readonly desc: boolean;
}

export interface RowsPlan {
  readonly version: VersionMeta;
  readonly where: string[];
  readonly sort: SortKey[];
  readonly fields: Column[];
  readonly facets: Column[];
  readonly binder: Binder;
}

export type RawQuery = Readonly<Record<string, string | string[] | number | undefined>>;

function list(value: string | string[] | number | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : String(value))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function columnOf(version: VersionMeta, name: string, use: string): Column {
  const column = version.byName.get(name);
  // Hidden columns are not in byName: they answer as unknown ones.
  if (!column)
    throw invalid(`The dataset has no column ${JSON.stringify(name.slice(0, 64))} (${use}).`);
  return column;
}

/** The plan of a rows query (everything but the page), or 422 naming the column at fault. */
export function planRows(
  version: VersionMeta,
  query: RawQuery,
  settings: PublicDataSettings,
  options: { inline: boolean },
): RowsPlan {
  const binder = new Binder(options.inline);
  const where: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (RESERVED_NAMES.has(key.toLowerCase()) || value === undefined) continue;
    const m = KEY.exec(key);
    if (m === null)
      throw invalid(
        `${JSON.stringify(key.slice(0, 64))} is not a column filter (column or column[op]).`,
      );
    const column = columnOf(version, m[1] as string, 'filter');
    const op = (m[2] ?? 'eq') as FilterOp;
    if (!FILTER_OPS.includes(op))
      throw invalid(`${column.name}[${op}]: unknown operator; use ${FILTER_OPS.join(', ')}.`);
    if (!column.filterable && op !== 'isnull')
      throw invalid(`Column ${column.name} is not filterable.`);
    for (const raw of Array.isArray(value)
      ? value
      : [typeof value === 'number' ? String(value) : value])
      where.push(condition(binder, column, op, raw, settings));
  }
  if (typeof query.q === 'string' && query.q.trim() !== '') {
    if (!version.columns.some((c) => c.searchable))
      throw invalid('The dataset has no searchable column (q).');
    // websearch_to_tsquery never fails on syntax: "a & !b:*" is searched as words.
    where.push(
      `t._search @@ websearch_to_tsquery(${literal(version.searchConfig)}::regconfig, ${binder.bind(query.q, 'text')})`,
    );
  }
  if (query.near !== undefined) {
    const geo = version.columns.find((c) => c.type === 'geo' && c.filterable && !c.hidden);
    if (!geo) throw invalid('The dataset has no filterable geo column (near).');
    const point = parseGeo(String(query.near));
    if (point === null) throw invalid(`near must be lat,lng within range (column ${geo.name}).`);
    const radius = Number(query.radiusM ?? 1000);
    const center = `ll_to_earth(${binder.bind(String(point[0]), 'float8')}, ${binder.bind(String(point[1]), 'float8')})`;
    const r = binder.bind(String(radius), 'float8');
    const at = `ll_to_earth(t.${geo.physical}[1], t.${geo.physical}[0])`;
    where.push(`earth_box(${center}, ${r}) @> ${at} and earth_distance(${center}, ${at}) <= ${r}`);
  } else if (query.radiusM !== undefined) throw invalid('radiusM goes with near=lat,lng.');
  const sort: SortKey[] = [];
  for (const item of list(query.sort)) {
    const desc = item.startsWith('-');
    const column = columnOf(version, desc ? item.slice(1) : item, 'sort');
    if (!column.sortable) throw invalid(`Column ${column.name} is not sortable.`);
    if (sort.some((s) => s.column === column))
      throw invalid(`Column ${column.name} is sorted on twice.`);
    sort.push({ column, desc });
  }
  if (sort.length > MAX_SORT) throw invalid(`Sort on at most ${String(MAX_SORT)} columns.`);
  const named = list(query.fields);
  const fields =
    named.length === 0
      ? [...version.byName.values()]
      : named.map((n) => columnOf(version, n, 'fields'));
  const facets = list(query.facets).map((n) => {
    const column = columnOf(version, n, 'facets');
    if (!column.filterable || column.type === 'geo')
      throw invalid(`Column ${column.name} cannot be faceted.`);
    return column;
  });
  if (facets.length > MAX_FACETS) throw invalid(`At most ${String(MAX_FACETS)} facets.`);
  return { version, where, sort, fields, facets, binder };
}

/** A column's value in JSON (a point as {lat, lng}). */
function jsonExpr(c: Column): string {
  return c.type === 'geo'
    ? `case when t.${c.physical} is null then null else json_build_object('lat', t.${c.physical}[1], 'lng', t.${c.physical}[0]) end`
    : `t.${c.physical}`;
}

/** The row as one JSON object, keyed by public names (safe: `[a-z0-9_]`). */
export function rowJson(fields: readonly Column[]): string {
  if (fields.length === 0) return `'{}'::json`;
  return `(select row_to_json(x) from (select ${fields.map((c) => `${jsonExpr(c)} as "${c.name}"`).join(', ')}) x)`;
}

/** Formula prefixes a spreadsheet would run (=, +, -, @, tab, CR): such a text cell gets a leading '. */
function csvExpr(c: Column): string {
  const v = `t.${c.physical}`;
  switch (c.type) {
    case 'text':
      return `case when left(${v}, 1) in ('=', '+', '-', '@', E'\\t', E'\\r') then '''' || ${v} else ${v} end`;
    case 'boolean':
      return `case when ${v} then 'true' when not ${v} then 'false' end`;
    case 'geo':
      return `${v}[1]::text || ',' || ${v}[0]::text`;
    case 'timestamp':
      return `to_json(${v}) #>> '{}'`;
    case 'integer':
    case 'decimal':
    case 'date':
      return v;
  }
}

function orderBy(sort: readonly SortKey[]): string {
  const last = sort.at(-1)?.desc ?? false;
  return [
    ...sort.map((s) => `t.${s.column.physical} ${s.desc ? 'desc' : 'asc'}`),
    `t._row ${last ? 'desc' : 'asc'}`,
  ].join(', ');
}

function whereSql(where: readonly string[]): string {
  return where.length === 0 ? '' : `where ${where.join(' and ')}`;
}

/** The statement of a whole export: COPY of the filtered, sorted rows (no page). */
export function exportSql(plan: RowsPlan, format: 'csv' | 'ndjson'): string {
  const from = `from ${qualified(plan.version.table)} t ${whereSql(plan.where)} order by ${orderBy(plan.sort)}`;
  if (format === 'csv')
    return `copy (select ${plan.fields.map(csvExpr).join(', ') || "''"} ${from}) to stdout with (format csv)`;
  // One JSON text per line: in CSV mode with quote and delimiter characters JSON always escapes,
  // nothing is ever quoted or escaped, so each line is the JSON as PostgreSQL wrote it.
  return `copy (select ${rowJson(plan.fields)}::text ${from}) to stdout with (format csv, quote E'\\x01', delimiter E'\\x02')`;
}

/** The cursor's binding: this dataset's version and this sort (a cursor from elsewhere is 400). */
function cursorSignature(plan: RowsPlan): string {
  return `pd:${plan.version.id}:${plan.sort.map((s) => `${s.desc ? '-' : ''}${s.column.name}`).join(',')}`;
}

/** Rows after the cursor's position, in the sort order (nulls last ascending, first descending). */
function after(plan: RowsPlan, keys: (string | number | null)[]): string {
  const b = plan.binder;
  const row = b.bind(String(keys.at(-1)), 'bigint');
  const last = plan.sort.at(-1)?.desc ?? false;
  const uniform = plan.sort.every((s) => s.desc === last && !s.column.nullable);
  if (uniform) {
    // One row comparison: an index range scan on (c, _row).
    const left = [...plan.sort.map((s) => `t.${s.column.physical}`), 't._row'];
    const right = [...plan.sort.map((s, i) => b.bind(String(keys[i]), CAST[s.column.type])), row];
    return `(${left.join(', ')}) ${last ? '<' : '>'} (${right.join(', ')})`;
  }
  const ors: string[] = [];
  const equal: string[] = [];
  plan.sort.forEach((s, i) => {
    const c = `t.${s.column.physical}`;
    const k = keys[i];
    const v = k === null ? null : b.bind(String(k), CAST[s.column.type]);
    let next: string;
    if (s.desc) next = v === null ? `${c} is not null` : `${c} < ${v}`;
    else next = v === null ? 'false' : `(${c} > ${v} or ${c} is null)`;
    ors.push([...equal, next].join(' and '));
    equal.push(v === null ? `${c} is null` : `${c} = ${v}`);
  });
  ors.push([...equal, `t._row ${last ? '<' : '>'} ${row}`].join(' and '));
  return `(${ors.map((o) => `(${o})`).join(' or ')})`;
}

/** One page: the statement, and how to read its rows into the answer and the next cursor. */
export function pageSql(
  plan: RowsPlan,
  options: { limit: number; cursor?: string; secret: string },
): string {
  const signature = cursorSignature(plan);
  const where = [...plan.where];
  if (options.cursor !== undefined) {
    const keys = decodeCursor(options.secret, signature, options.cursor, plan.sort.length + 1);
    where.push(after(plan, keys));
  }
  const keyCols = plan.sort.map((s, i) => `t.${s.column.physical}::text as k${String(i)}`);
  return `select ${rowJson(plan.fields)}::text as j, ${[...keyCols, 't._row as kr'].join(', ')}
    from ${qualified(plan.version.table)} t ${whereSql(where)}
    order by ${orderBy(plan.sort)} limit ${plan.binder.bind(String(options.limit + 1), 'bigint')}`;
}

/** The next page's cursor from the last row read. */
export function nextCursor(plan: RowsPlan, secret: string, row: Record<string, unknown>): string {
  const keys: (string | number | null)[] = plan.sort.map(
    (_, i) => (row[`k${String(i)}`] ?? null) as string | null,
  );
  keys.push(String(row.kr));
  return encodeCursor(secret, cursorSignature(plan), keys);
}

/** Each facet's most frequent values under the same filters. */
export function facetSql(plan: RowsPlan, column: Column, size: number): string {
  return `select ${jsonExpr(column)} as value, count(*)::int as count
    from ${qualified(plan.version.table)} t ${whereSql(plan.where)}
    group by 1 order by 2 desc, 1 asc nulls last limit ${String(size)}`;
}

/** A strong validator of an answer: the version read and the request (path and query). */
export function versionEtag(versionId: string, appVersion: string, url: string): string {
  return `"${createHash('sha256').update(`${versionId}\n${appVersion}\n${url}`).digest('base64url').slice(0, 32)}"`;
}
