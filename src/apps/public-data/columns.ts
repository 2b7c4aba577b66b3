/**
 * Column types: inference from the values of a file, conversion of a value into COPY's text
 * format, and the names a column gets (its public name from the header; its table column `cN`
 * from its position: no text a user wrote ever becomes an SQL identifier).
 */

export const COLUMN_TYPES = [
  'integer',
  'decimal',
  'boolean',
  'date',
  'timestamp',
  'geo',
  'text',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/** What a version knows of one column (stored in `pd_version.columns`). */
export interface Column {
  /** The public name: filters, sort, fields, JSON keys (`[a-z_][a-z0-9_]*`). */
  readonly name: string;
  /** The header as written in the file (or the override's). */
  readonly label: string;
  readonly description: string;
  readonly type: ColumnType;
  readonly filterable: boolean;
  readonly sortable: boolean;
  readonly searchable: boolean;
  readonly hidden: boolean;
  /** Whether any row has no value (keyset pagination compares non-null columns faster). */
  readonly nullable: boolean;
  /** The table's column: `c1`..`cN`. */
  readonly physical: string;
}

/** A column's override at import (keyed by header or public name). */
export interface ColumnOverride {
  readonly type?: ColumnType;
  readonly label?: string;
  readonly description?: string;
  readonly filterable?: boolean;
  readonly sortable?: boolean;
  readonly searchable?: boolean;
  readonly hidden?: boolean;
}

/** Query parameters of the rows routes: a column with one of these names is renamed `<name>_col`. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'limit',
  'cursor',
  'sort',
  'q',
  'near',
  'radiusm',
  'facets',
  'fields',
  'version',
]);

/**
 * Public names for the headers, in order: lowercase ASCII letters, digits and `_` (accents
 * dropped, anything else one `_`), at most 63 characters, never starting with a digit. An empty
 * header becomes `column_<position>`; a name already taken gets `_2`, `_3`... Every change is
 * reported as a warning.
 */
export function publicNames(headers: readonly string[]): { names: string[]; warnings: string[] } {
  const names: string[] = [];
  const warnings: string[] = [];
  const taken = new Set<string>();
  headers.forEach((header, i) => {
    let base = header
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 56);
    if (base === '') {
      base = `column_${String(i + 1)}`;
      warnings.push(`Column ${String(i + 1)} has an empty header: named ${base}.`);
    } else if (/^[0-9]/.test(base)) base = `c_${base}`;
    if (RESERVED_NAMES.has(base)) base = `${base}_col`;
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}_${String(n)}`;
    if (name !== base)
      warnings.push(
        `Column ${String(i + 1)} (${JSON.stringify(header)}) repeats a name: named ${name}.`,
      );
    taken.add(name);
    names.push(name);
  });
  return { names, warnings };
}

const INTEGER = /^[-+]?[0-9]{1,18}$/;
const DECIMAL = /^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?$/;
const BOOLEAN = /^(true|false|yes|no)$/i;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const TIMESTAMP =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(:([0-9]{2})(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$/i;
const GEO = /^\s*([-+]?[0-9]{1,3}(?:\.[0-9]+)?)\s*[,; ]\s*([-+]?[0-9]{1,3}(?:\.[0-9]+)?)\s*$/;

function validDate(y: string, m: string, d: string): boolean {
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= days;
}

function isDate(value: string): boolean {
  const m = DATE.exec(value);
  return m !== null && validDate(m[1] as string, m[2] as string, m[3] as string);
}

function isTimestamp(value: string): boolean {
  const m = TIMESTAMP.exec(value);
  if (m === null || !validDate(m[1] as string, m[2] as string, m[3] as string)) return false;
  return Number(m[4]) < 24 && Number(m[5]) < 60 && (m[7] === undefined || Number(m[7]) < 60);
}

/** `lat,lng` (or `lat lng`, `lat;lng`) within range, as [lat, lng]; null otherwise. */
export function parseGeo(value: string): [number, number] | null {
  const m = GEO.exec(value);
  if (m === null) return null;
  const lat = Number(m[1]);
  const lng = Number(m[2]);
  if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180)) return null;
  return [lat, lng];
}

/** Whether a (non-empty) value fits a type. */
export function fits(type: ColumnType, value: string): boolean {
  switch (type) {
    case 'integer':
      return INTEGER.test(value);
    case 'decimal':
      return DECIMAL.test(value);
    case 'boolean':
      return BOOLEAN.test(value);
    case 'date':
      return isDate(value);
    case 'timestamp':
      return isTimestamp(value);
    case 'geo':
      return parseGeo(value) !== null;
    case 'text':
      return true;
  }
}

const INFERRED: readonly ColumnType[] = [
  'integer',
  'decimal',
  'boolean',
  'date',
  'timestamp',
  'geo',
];

/**
 * Narrows a column's candidate types value by value: the type of a column is the first of
 * integer, decimal, boolean, date, timestamp, geo that every non-empty value fits, else text.
 */
export class TypeInference {
  readonly #candidates: Set<ColumnType>[] = [];
  readonly #nulls: boolean[] = [];
  readonly #seen: boolean[] = [];

  observe(index: number, value: string | null): void {
    let candidates = this.#candidates[index];
    if (candidates === undefined) {
      candidates = new Set(INFERRED);
      this.#candidates[index] = candidates;
    }
    if (value === null || value === '') {
      this.#nulls[index] = true;
      return;
    }
    this.#seen[index] = true;
    if (candidates.size === 0) return;
    for (const type of candidates) if (!fits(type, value)) candidates.delete(type);
  }

  /** A column's type (text when every value was empty). */
  typeOf(index: number): ColumnType {
    if (this.#seen[index] !== true) return 'text';
    const candidates = this.#candidates[index];
    return INFERRED.find((t) => candidates?.has(t)) ?? 'text';
  }

  hasNulls(index: number): boolean {
    return this.#nulls[index] === true;
  }
}

/** PostgreSQL's type of a column (text columns sort and compare bytewise: `LIKE 'x%'` uses the index). */
export function sqlType(type: ColumnType): string {
  switch (type) {
    case 'integer':
      return 'bigint';
    case 'decimal':
      return 'numeric';
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'timestamp':
      return 'timestamptz';
    case 'geo':
      return 'point';
    case 'text':
      return 'text collate "C"';
  }
}

/** Escapes a value for COPY's text format. */
function copyText(value: string): string {
  return value.replace(/[\\\n\r\t]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t',
  );
}

/**
 * A value in COPY's text format for a column of `type` (`\N` for an empty value), or undefined
 * when it does not fit (a bad row). Timestamps without a zone are UTC.
 */
export function copyValue(type: ColumnType, value: string | null): string | undefined {
  if (value === null || value === '') return '\\N';
  switch (type) {
    case 'text':
      return copyText(value);
    case 'boolean':
      if (!BOOLEAN.test(value)) return undefined;
      return /^(true|yes)$/i.test(value) ? 't' : 'f';
    case 'geo': {
      const geo = parseGeo(value);
      // A point is (x, y): longitude first.
      return geo === null ? undefined : `(${String(geo[1])},${String(geo[0])})`;
    }
    case 'timestamp': {
      if (!isTimestamp(value)) return undefined;
      const zoned = /(Z|[+-][0-9]{2}(:?[0-9]{2})?)$/i.test(value.slice(10));
      return zoned ? value : `${value}Z`;
    }
    case 'integer':
    case 'decimal':
    case 'date':
      return fits(type, value) ? value : undefined;
  }
}
