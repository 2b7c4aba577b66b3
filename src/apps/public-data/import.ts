import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { Type } from 'typebox';
import { withTransaction } from '../../platform/db/index.ts';
import { openFile } from '../../platform/files/index.ts';
import { defineJob } from '../../platform/jobs/index.ts';
import type { Platform } from '../../platform/modules/index.ts';
import {
  copyValue,
  publicNames,
  sqlType,
  TypeInference,
  type Column,
  type ColumnOverride,
} from './columns.ts';
import { metadataOf } from './metadata.ts';
import { csvRecords, ImportRefusal, ndjsonLines, ndjsonObject, type FileRecord } from './parse.ts';
import {
  completeVersion,
  failVersion,
  findVersion,
  startVersion,
  type BadRow,
  type VersionRow,
} from './repository.ts';
import type { PublicDataSettings } from './settings.ts';

export const DATA_SCHEMA = 'public_data';
const MAX_BAD_ROWS = 100;
const IMPORT_RETRIES = 2;

/** The table of a version: named from its id (a UUID we made), never from anything a user sent. */
export function versionTable(versionId: string): string {
  if (!/^[0-9a-f-]{36}$/.test(versionId)) throw new Error(`not a version id: ${versionId}`);
  return `t_${versionId.replace(/-/g, '')}`;
}

/** `public_data."t_..."`: the only form table names are written in. */
export function qualified(table: string): string {
  if (!/^t_[0-9a-f]{32}$/.test(table)) throw new Error(`not a version table: ${table}`);
  return `${DATA_SCHEMA}."${table}"`;
}

class BadRows {
  readonly #rows: BadRow[] = [];
  count = 0;
  add(line: number, message: string): void {
    this.count++;
    if (this.#rows.length < MAX_BAD_ROWS) this.#rows.push({ line, message });
  }
  /** By line (rows refused by the second pass come after the first pass's). */
  get rows(): BadRow[] {
    return [...this.#rows].sort((a, b) => a.line - b.line);
  }
}

/** The records of the file, as arrays of fields in the order of `header` (NDJSON: keys). */
async function* records(
  platform: Platform,
  version: VersionRow,
  maxBytes: number,
  ndjsonKeys?: readonly string[],
): AsyncGenerator<FileRecord> {
  let file;
  try {
    file = await openFile(platform, version.fileId);
  } catch (error) {
    throw new ImportRefusal(
      'FILE_UNAVAILABLE',
      `The file cannot be read: ${(error as Error).message}`,
    );
  }
  if (file.size > maxBytes) {
    file.body.destroy();
    throw new ImportRefusal(
      'FILE_TOO_LARGE',
      `The file is larger than ${String(maxBytes)} bytes (PUBLIC_DATA_MAX_BYTES).`,
    );
  }
  if (version.format === 'csv') {
    yield* csvRecords(file.body, maxBytes);
    return;
  }
  const index = new Map((ndjsonKeys ?? []).map((k, i) => [k, i]));
  for await (const { line, text } of ndjsonLines(file.body, maxBytes)) {
    const object = ndjsonObject(text);
    if (typeof object === 'string') {
      yield { line, error: object };
      continue;
    }
    if (ndjsonKeys === undefined) {
      // First pass: the keys, in the order first seen, as the header.
      yield { line, fields: [...object.keys()] };
      continue;
    }
    const fields: (string | null)[] = new Array<string | null>(index.size).fill(null);
    for (const [key, value] of object) {
      const i = index.get(key);
      if (i !== undefined) fields[i] = value;
    }
    yield { line, fields };
  }
}

interface Scan {
  headers: string[];
  inference: TypeInference;
  bad: BadRows;
}

/** Pass 1: the header, each column's type, the structurally bad rows; limits checked. */
async function scan(
  platform: Platform,
  version: VersionRow,
  settings: PublicDataSettings,
): Promise<Scan> {
  const inference = new TypeInference();
  const bad = new BadRows();
  const tooMany = (n: number) =>
    new ImportRefusal(
      'TOO_MANY_COLUMNS',
      `The file has ${String(n)} columns; at most ${String(settings.maxColumns)} are allowed (PUBLIC_DATA_MAX_COLUMNS).`,
    );
  if (version.format === 'ndjson') {
    // Keys first (union over every line, first seen first), then types.
    const keys = new Map<string, number>();
    for await (const record of records(platform, version, settings.maxBytes)) {
      if (record.error !== undefined) {
        bad.add(record.line, record.error);
        continue;
      }
      for (const key of record.fields) {
        if (key !== null && !keys.has(key)) {
          keys.set(key, keys.size);
          if (keys.size > settings.maxColumns) throw tooMany(keys.size);
        }
      }
    }
    const headers = [...keys.keys()];
    if (headers.length === 0)
      throw new ImportRefusal('NO_HEADER', 'The file has no JSON object with keys.');
    for await (const record of records(platform, version, settings.maxBytes, headers)) {
      if (record.fields === undefined) continue;
      record.fields.forEach((v, i) => inference.observe(i, v));
    }
    return { headers, inference, bad: bad };
  }
  let headers: string[] | undefined;
  for await (const record of records(platform, version, settings.maxBytes)) {
    if (record.error !== undefined) {
      if (headers === undefined)
        throw new ImportRefusal('NO_HEADER', `The header cannot be read: ${record.error}`);
      bad.add(record.line, record.error);
      continue;
    }
    if (headers === undefined) {
      headers = record.fields.map((f) => (f ?? '').trim());
      if (headers.length > settings.maxColumns) throw tooMany(headers.length);
      continue;
    }
    if (record.fields.length !== headers.length) {
      bad.add(
        record.line,
        `Expected ${String(headers.length)} fields, found ${String(record.fields.length)}.`,
      );
      continue;
    }
    record.fields.forEach((v, i) => inference.observe(i, v));
  }
  if (headers === undefined)
    throw new ImportRefusal('NO_HEADER', 'The file is empty: no header row.');
  return { headers, inference, bad };
}

/** The columns: inferred, then overridden (by header or public name). */
function buildColumns(
  found: Scan,
  overrides: Readonly<Record<string, ColumnOverride>>,
  settings: PublicDataSettings,
): { columns: Column[]; warnings: string[] } {
  const { names, warnings } = publicNames(found.headers);
  const used = new Set<string>();
  const columns = found.headers.map((header, i): Column => {
    const name = names[i] as string;
    const key = Object.hasOwn(overrides, name)
      ? name
      : Object.hasOwn(overrides, header)
        ? header
        : undefined;
    if (key !== undefined) used.add(key);
    const o: ColumnOverride = key === undefined ? {} : (overrides[key] as ColumnOverride);
    const type = o.type ?? found.inference.typeOf(i);
    const indexedByDefault = i < settings.defaultIndexedColumns && type !== 'geo';
    let searchable = o.searchable ?? (type === 'text' && i < settings.defaultIndexedColumns);
    if (searchable && type !== 'text') {
      warnings.push(`Column ${name} is ${type}: only text columns are searchable.`);
      searchable = false;
    }
    const hidden = o.hidden ?? false;
    return {
      name,
      label: o.label ?? (header === '' ? name : header),
      description: o.description ?? '',
      type,
      filterable: !hidden && (o.filterable ?? (indexedByDefault || type === 'geo')),
      sortable: !hidden && type !== 'geo' && (o.sortable ?? indexedByDefault),
      searchable: !hidden && searchable,
      hidden,
      nullable: found.inference.hasNulls(i),
      physical: `c${String(i + 1)}`,
    };
  });
  for (const key of Object.keys(overrides))
    if (!used.has(key)) warnings.push(`The override ${JSON.stringify(key)} names no column.`);
  const indexed = columns.filter((c) => c.filterable || c.sortable).length;
  if (indexed > settings.maxIndexedColumns)
    throw new ImportRefusal(
      'TOO_MANY_INDEXED_COLUMNS',
      `${String(indexed)} columns are filterable or sortable; at most ${String(settings.maxIndexedColumns)} (PUBLIC_DATA_MAX_INDEXED_COLUMNS).`,
    );
  return { columns, warnings };
}

/** The table's DDL: `_row` (the file's order, the keyset tiebreaker), `c1..cN`, `_search`. */
function createTableSql(table: string, columns: readonly Column[], searchConfig: string): string {
  const defs = ['_row bigint not null', ...columns.map((c) => `${c.physical} ${sqlType(c.type)}`)];
  const searchable = columns.filter((c) => c.searchable);
  if (searchable.length > 0) {
    const text = searchable.map((c) => `coalesce(${c.physical}, '')`).join(` || ' ' || `);
    defs.push(
      `_search tsvector generated always as (to_tsvector('${searchConfig}'::regconfig, ${text})) stored`,
    );
  }
  return `create table ${qualified(table)} (${defs.join(', ')})`;
}

function indexSql(table: string, columns: readonly Column[]): string[] {
  const q = qualified(table);
  const out = [`create unique index on ${q} (_row)`];
  for (const c of columns) {
    if (c.type === 'geo') {
      if (c.filterable)
        out.push(
          `create index on ${q} using gist (ll_to_earth(${c.physical}[1], ${c.physical}[0]))`,
        );
    } else if (c.filterable || c.sortable) out.push(`create index on ${q} (${c.physical}, _row)`);
  }
  if (columns.some((c) => c.searchable)) out.push(`create index on ${q} using gin (_search)`);
  return out;
}

/** Pass 2: every row converted and sent through one COPY; rows that do not fit are counted bad. */
async function load(
  platform: Platform,
  version: VersionRow,
  settings: PublicDataSettings,
  table: string,
  columns: readonly Column[],
  found: Scan,
): Promise<number> {
  const client = await platform.database.pool.connect();
  let rowCount = 0;
  let failed: unknown;
  try {
    await client.query(NO_STATEMENT_TIMEOUT);
    const copy = client.query(
      copyFrom(
        `copy ${qualified(table)} (_row, ${columns.map((c) => c.physical).join(', ')}) from stdin`,
      ),
    );
    const bad = found.bad;
    const reported = new Set(bad.rows.map((r) => r.line));
    const types = columns.map((c) => c.type);
    const width = columns.length;
    async function* lines(): AsyncGenerator<string> {
      let batch = '';
      let first = version.format === 'csv';
      for await (const record of records(
        platform,
        version,
        settings.maxBytes,
        version.format === 'ndjson' ? found.headers : undefined,
      )) {
        if (first) {
          first = false; // the header
          continue;
        }
        if (record.fields === undefined || record.fields.length !== width) continue; // counted in pass 1
        let row = '';
        let error: string | undefined;
        for (let i = 0; i < width; i++) {
          const raw = record.fields[i] ?? null;
          const value =
            raw !== null && raw.includes('\0') ? undefined : copyValue(types[i] as never, raw);
          if (value === undefined) {
            error = `Column ${(columns[i] as Column).name}: ${JSON.stringify(String(raw).slice(0, 100))} is not ${types[i] as string}.`;
            break;
          }
          row += `\t${value}`;
        }
        if (error !== undefined) {
          if (!reported.has(record.line)) bad.add(record.line, error);
          continue;
        }
        rowCount++;
        batch += `${String(rowCount)}${row}\n`;
        if (batch.length > 65_536) {
          yield batch;
          batch = '';
        }
      }
      if (batch !== '') yield batch;
    }
    await pipeline(lines(), copy as unknown as Writable);
  } catch (error) {
    failed = error;
    throw error;
  } finally {
    if (!(failed instanceof Error))
      await client.query('reset statement_timeout').catch((e: unknown) => (failed = e));
    // A connection left mid-COPY (or not reset) is not reusable: destroyed rather than returned.
    client.release(failed instanceof Error ? failed : undefined);
  }
  return rowCount;
}

/**
 * Loading a large file and indexing its table take longer than the API's statement timeout
 * (`DATABASE_STATEMENT_TIMEOUT`, meant for requests): the import's own connection lifts it for
 * these statements only; the job's time limit bounds the whole import instead.
 */
const NO_STATEMENT_TIMEOUT = 'set statement_timeout = 0';

/** Runs `statements` one after another on one connection without the statement timeout. */
async function runLong(platform: Platform, statements: readonly string[]): Promise<void> {
  const client = await platform.database.pool.connect();
  let failed: unknown;
  try {
    await client.query(NO_STATEMENT_TIMEOUT);
    for (const statement of statements) await client.query(statement);
    await client.query('reset statement_timeout');
  } catch (error) {
    failed = error;
    throw error;
  } finally {
    client.release(failed instanceof Error ? failed : undefined);
  }
}

/** Runs the import of one version (the job's body); refusals are recorded, not retried. */
export async function importVersion(
  platform: Platform,
  versionId: string,
  settings: PublicDataSettings,
): Promise<{ status: 'ready' | 'failed' | 'skipped'; rowCount?: number }> {
  const db = platform.database.db;
  const version = await findVersion(db, versionId);
  if (!version || !(await startVersion(db, versionId))) return { status: 'skipped' };
  const table = versionTable(versionId);
  const pool = platform.database.pool;
  await pool.query(`drop table if exists ${qualified(table)}`); // a previous attempt's
  let found: Scan | undefined;
  let warnings: string[] = [];
  try {
    found = await scan(platform, version, settings);
    const built = buildColumns(found, version.overrides, settings);
    warnings = built.warnings;
    const columns = built.columns;
    await pool.query(createTableSql(table, columns, settings.searchConfig));
    const rowCount = await load(platform, version, settings, table, columns, found);
    await runLong(platform, [...indexSql(table, columns), `analyze ${qualified(table)}`]);
    const retired = await withTransaction(db, (trx) =>
      completeVersion(trx, {
        id: versionId,
        datasetId: version.datasetId,
        tableName: table,
        columns,
        searchConfig: settings.searchConfig,
        rowCount,
        badRows: found?.bad.rows ?? [],
        badRowCount: found?.bad.count ?? 0,
        warnings,
        keep: settings.keepVersions,
      }),
    );
    if (retired === null) {
      await pool.query(`drop table if exists ${qualified(table)}`);
      return { status: 'skipped' };
    }
    metadataOf(platform).forgetDataset(version.datasetId);
    for (const old of retired) await pool.query(`drop table if exists ${qualified(old)}`);
    return { status: 'ready', rowCount };
  } catch (error) {
    await pool.query(`drop table if exists ${qualified(table)}`);
    if (!(error instanceof ImportRefusal)) throw error;
    await failVersion(db, versionId, {
      code: error.code,
      message: error.message,
      badRows: found?.bad.rows ?? [],
      badRowCount: found?.bad.count ?? 0,
      warnings,
    });
    return { status: 'failed' };
  }
}

/** `public-data.import`: one version's import. */
export function importJob(settings: PublicDataSettings) {
  return defineJob({
    name: 'public-data.import',
    payload: Type.Object({ versionId: Type.String({ format: 'uuid' }) }),
    options: {
      retries: IMPORT_RETRIES,
      timeoutSeconds: 3600,
      backoff: { initialSeconds: 5, maxSeconds: 60 },
    },
    handler: async ({ versionId }, ctx) => {
      try {
        return await importVersion(ctx.platform, versionId, settings);
      } catch (error) {
        // The last attempt failed too (the database, storage): the version says so.
        if (ctx.attempt > IMPORT_RETRIES)
          await failVersion(ctx.platform.database.db, versionId, {
            code: 'IMPORT_ERROR',
            message: `The import failed on every attempt: ${(error as Error).message}`,
            badRows: [],
            badRowCount: 0,
            warnings: [],
          });
        throw error;
      }
    },
  });
}
