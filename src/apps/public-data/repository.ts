import { sql } from 'kysely';
import type { AnyDb } from '../../platform/db/index.ts';
import type { Column, ColumnOverride } from './columns.ts';

/** All SQL on the catalogue (`pd_dataset`, `pd_version`, `pd_api_key`). */

export type VersionStatus = 'queued' | 'importing' | 'ready' | 'failed' | 'retired';

export interface DatasetRow {
  id: string;
  slug: string;
  title: string;
  description: string;
  license: string;
  source: string;
  tags: string[];
  currentVersion: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface BadRow {
  line: number;
  message: string;
}

export interface VersionRow {
  id: string;
  datasetId: string;
  number: number;
  status: VersionStatus;
  fileId: string;
  format: 'csv' | 'ndjson';
  jobId: string | null;
  tableName: string | null;
  overrides: Record<string, ColumnOverride>;
  columns: Column[];
  searchConfig: string;
  rowCount: number;
  badRowCount: number;
  badRows: BadRow[];
  warnings: string[];
  failureCode: string | null;
  failure: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const DATASET = sql`id, slug, title, description, license, source, tags,
  current_version as "currentVersion", created_at as "createdAt", updated_at as "updatedAt"`;
const VERSION = sql`id, dataset_id as "datasetId", number, status, file_id as "fileId", format,
  job_id as "jobId", table_name as "tableName", overrides, columns, search_config as "searchConfig", row_count::float8 as "rowCount",
  bad_row_count::float8 as "badRowCount", bad_rows as "badRows", warnings,
  failure_code as "failureCode", failure, created_at as "createdAt", started_at as "startedAt",
  finished_at as "finishedAt"`;

export async function insertDataset(
  db: AnyDb,
  d: {
    id: string;
    slug: string;
    title: string;
    description: string;
    license: string;
    source: string;
    tags: string[];
  },
): Promise<DatasetRow> {
  const { rows } =
    await sql<DatasetRow>`insert into pd_dataset (id, slug, title, description, license, source, tags)
    values (${d.id}, ${d.slug}, ${d.title}, ${d.description}, ${d.license}, ${d.source}, ${d.tags}::text[])
    returning ${DATASET}`.execute(db);
  return rows[0] as DatasetRow;
}

export async function findDataset(
  db: AnyDb,
  slug: string,
  options: { lock?: boolean } = {},
): Promise<DatasetRow | undefined> {
  const lock = options.lock === true ? sql`for update` : sql``;
  const { rows } = await sql<DatasetRow>`select ${DATASET} from pd_dataset
    where slug = ${slug} and deleted_at is null ${lock}`.execute(db);
  return rows[0];
}

export async function findDatasetById(db: AnyDb, id: string): Promise<DatasetRow | undefined> {
  const { rows } = await sql<DatasetRow>`select ${DATASET} from pd_dataset
    where id = ${id} and deleted_at is null for update`.execute(db);
  return rows[0];
}

export async function updateDataset(
  db: AnyDb,
  id: string,
  patch: Partial<Pick<DatasetRow, 'title' | 'description' | 'license' | 'source' | 'tags'>>,
): Promise<DatasetRow> {
  const { rows } = await sql<DatasetRow>`update pd_dataset set
      title = coalesce(${patch.title ?? null}, title),
      description = coalesce(${patch.description ?? null}, description),
      license = coalesce(${patch.license ?? null}, license),
      source = coalesce(${patch.source ?? null}, source),
      tags = coalesce(${patch.tags ?? null}::text[], tags),
      updated_at = now()
    where id = ${id} returning ${DATASET}`.execute(db);
  return rows[0] as DatasetRow;
}

/** Soft-deletes the dataset; its versions are retired. The tables to drop are returned. */
export async function deleteDataset(db: AnyDb, id: string): Promise<string[]> {
  await sql`update pd_dataset set deleted_at = now(), current_version = null where id = ${id}`.execute(
    db,
  );
  const { rows } = await sql<{ tableName: string | null }>`update pd_version
    set status = case when status in ('queued', 'importing') then 'failed' else 'retired' end,
        failure = case when status in ('queued', 'importing') then 'The dataset was deleted.' else failure end,
        table_name = null
    from (select id, table_name as old from pd_version where dataset_id = ${id}) o
    where pd_version.id = o.id
    returning o.old as "tableName"`.execute(db);
  return rows.map((r) => r.tableName).filter((t): t is string => t !== null);
}

/** Public datasets (with a readable version), by slug, after `after`; `q` over title and description. */
export async function listDatasets(
  db: AnyDb,
  options: { q?: string; tag?: string; after?: string; limit: number },
): Promise<DatasetRow[]> {
  const q = options.q === undefined ? null : `%${escapeLike(options.q)}%`;
  const { rows } = await sql<DatasetRow>`select ${DATASET} from pd_dataset
    where deleted_at is null and current_version is not null
      and (${q}::text is null or title ilike ${q} or description ilike ${q})
      and (${options.tag ?? null}::text is null or tags @> array[${options.tag ?? null}::text])
      and (${options.after ?? null}::text is null or slug > ${options.after ?? null})
    order by slug limit ${options.limit}`.execute(db);
  return rows;
}

/** `%`, `_` and `\` matched literally by LIKE. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export async function insertVersion(
  db: AnyDb,
  v: {
    id: string;
    datasetId: string;
    fileId: string;
    format: 'csv' | 'ndjson';
    overrides: Record<string, ColumnOverride>;
    createdBy: string;
  },
): Promise<VersionRow> {
  const { rows } = await sql<VersionRow>`insert into pd_version
      (id, dataset_id, number, status, file_id, format, overrides, created_by)
    values (${v.id}, ${v.datasetId},
      (select coalesce(max(number), 0) + 1 from pd_version where dataset_id = ${v.datasetId}),
      'queued', ${v.fileId}, ${v.format}, ${JSON.stringify(v.overrides)}::jsonb, ${v.createdBy})
    returning ${VERSION}`.execute(db);
  return rows[0] as VersionRow;
}

export async function setVersionJob(db: AnyDb, id: string, jobId: string): Promise<void> {
  await sql`update pd_version set job_id = ${jobId} where id = ${id}`.execute(db);
}

export async function findVersion(db: AnyDb, id: string): Promise<VersionRow | undefined> {
  const { rows } =
    await sql<VersionRow>`select ${VERSION} from pd_version where id = ${id}`.execute(db);
  return rows[0];
}

export async function listVersions(db: AnyDb, datasetId: string): Promise<VersionRow[]> {
  const { rows } = await sql<VersionRow>`select ${VERSION} from pd_version
    where dataset_id = ${datasetId} order by number desc`.execute(db);
  return rows;
}

/** The versions a reader may ask for: imported and not retired. */
export async function readableVersions(db: AnyDb, datasetId: string): Promise<VersionRow[]> {
  const { rows } = await sql<VersionRow>`select ${VERSION} from pd_version
    where dataset_id = ${datasetId} and status = 'ready' order by number desc`.execute(db);
  return rows;
}

/** Marks a queued version importing; false when it is not queued (already done, or deleted). */
export async function startVersion(db: AnyDb, id: string): Promise<boolean> {
  const { rows } = await sql`update pd_version set status = 'importing', started_at = now()
    where id = ${id} and status in ('queued', 'importing') returning id`.execute(db);
  return rows.length > 0;
}

export async function failVersion(
  db: AnyDb,
  id: string,
  failure: {
    code: string;
    message: string;
    badRows: BadRow[];
    badRowCount: number;
    warnings: string[];
  },
): Promise<void> {
  await sql`update pd_version set status = 'failed', failure_code = ${failure.code},
      failure = ${failure.message}, bad_rows = ${JSON.stringify(failure.badRows)}::jsonb,
      bad_row_count = ${failure.badRowCount}, warnings = ${JSON.stringify(failure.warnings)}::jsonb,
      table_name = null, finished_at = now()
    where id = ${id} and status = 'importing'`.execute(db);
}

/**
 * The swap, in the caller's transaction: the version is ready, the dataset's current one when
 * newer, and versions beyond the `keep` newest ready ones are retired. Returns the tables to drop
 * (retired), or null when the version was no longer importing (the dataset was deleted).
 */
export async function completeVersion(
  db: AnyDb,
  v: {
    id: string;
    datasetId: string;
    tableName: string;
    columns: Column[];
    searchConfig: string;
    rowCount: number;
    badRows: BadRow[];
    badRowCount: number;
    warnings: string[];
    keep: number;
  },
): Promise<string[] | null> {
  const dataset = await findDatasetById(db, v.datasetId); // locks the dataset: swaps in turn
  if (!dataset) return null;
  const { rows } = await sql<{ number: number }>`update pd_version set status = 'ready',
      table_name = ${v.tableName}, columns = ${JSON.stringify(v.columns)}::jsonb,
      search_config = ${v.searchConfig},
      row_count = ${v.rowCount}, bad_rows = ${JSON.stringify(v.badRows)}::jsonb,
      bad_row_count = ${v.badRowCount}, warnings = ${JSON.stringify(v.warnings)}::jsonb,
      failure_code = null, failure = null, finished_at = now()
    where id = ${v.id} and status = 'importing' returning number`.execute(db);
  const number = rows[0]?.number;
  if (number === undefined) return null;
  await sql`update pd_dataset set current_version = greatest(coalesce(current_version, 0), ${number}),
      updated_at = now() where id = ${v.datasetId}`.execute(db);
  const retired = await sql<{
    tableName: string;
  }>`update pd_version set status = 'retired', table_name = null
    from (select id, table_name as old from pd_version
          where dataset_id = ${v.datasetId} and status = 'ready'
          order by number desc offset ${v.keep}) o
    where pd_version.id = o.id returning o.old as "tableName"`.execute(db);
  return retired.rows.map((r) => r.tableName);
}

// ---- API keys ----

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  rateLimitPerMin: number;
  requestCount: number;
  lastUsedAt: Date | null;
  createdAt: Date;
  revokedAt: Date | null;
}

const API_KEY = sql`id, name, prefix, rate_limit_per_min as "rateLimitPerMin",
  request_count::float8 as "requestCount", last_used_at as "lastUsedAt", created_at as "createdAt",
  revoked_at as "revokedAt"`;

export async function insertApiKey(
  db: AnyDb,
  k: { id: string; name: string; prefix: string; hash: Buffer; limit: number; createdBy: string },
): Promise<ApiKeyRow> {
  const { rows } = await sql<ApiKeyRow>`insert into pd_api_key
      (id, name, prefix, key_hash, rate_limit_per_min, created_by)
    values (${k.id}, ${k.name}, ${k.prefix}, ${k.hash}, ${k.limit}, ${k.createdBy})
    returning ${API_KEY}`.execute(db);
  return rows[0] as ApiKeyRow;
}

export async function listApiKeys(db: AnyDb): Promise<ApiKeyRow[]> {
  const { rows } =
    await sql<ApiKeyRow>`select ${API_KEY} from pd_api_key order by created_at desc, id desc`.execute(
      db,
    );
  return rows;
}

export async function revokeApiKey(db: AnyDb, id: string): Promise<boolean> {
  const { rows } = await sql`update pd_api_key set revoked_at = now()
    where id = ${id} and revoked_at is null returning id`.execute(db);
  return rows.length > 0;
}

export async function findApiKeyByPrefix(
  db: AnyDb,
  prefix: string,
): Promise<{ id: string; hash: Buffer; rateLimitPerMin: number } | undefined> {
  const { rows } = await sql<{ id: string; hash: Buffer; rateLimitPerMin: number }>`select id,
      key_hash as hash, rate_limit_per_min as "rateLimitPerMin"
    from pd_api_key where prefix = ${prefix} and revoked_at is null`.execute(db);
  return rows[0];
}

/** Adds counted uses (one statement for every key used since the last flush). */
export async function addApiKeyUsage(db: AnyDb, usage: ReadonlyMap<string, number>): Promise<void> {
  if (usage.size === 0) return;
  const ids = [...usage.keys()];
  const counts = ids.map((id) => usage.get(id) ?? 0);
  await sql`update pd_api_key k set request_count = k.request_count + u.n, last_used_at = now()
    from unnest(${ids}::uuid[], ${counts}::bigint[]) as u(id, n) where k.id = u.id`.execute(db);
}
