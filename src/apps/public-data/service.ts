import { PassThrough, type Readable } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';
import {
  decodeCursor,
  encodeCursor,
  isUniqueViolation,
  newId,
  preparedSql,
  withTransaction,
} from '../../platform/db/index.ts';
import { lookupFiles } from '../../platform/files/index.ts';
import { HttpError } from '../../platform/http/index.ts';
import type { Platform } from '../../platform/modules/index.ts';
import { ApiKeys, newApiKey } from './api-keys.ts';
import { PublicDataCodes } from './errors.ts';
import { importJob, qualified } from './import.ts';
import { metadataOf, type DatasetMeta, type MetadataCache, type VersionMeta } from './metadata.ts';
import {
  exportSql,
  facetSql,
  nextCursor,
  pageSql,
  planRows,
  versionEtag,
  type RawQuery,
} from './query.ts';
import {
  deleteDataset,
  findDataset,
  insertApiKey,
  insertDataset,
  insertVersion,
  listApiKeys,
  listDatasets,
  listVersions,
  revokeApiKey,
  setVersionJob,
  updateDataset,
  type ApiKeyRow,
  type DatasetRow,
  type VersionRow,
} from './repository.ts';
import type { CreateDatasetBody, CreateVersionBody, PatchDatasetBody } from './schemas.ts';
import type { PublicDataSettings } from './settings.ts';

export const DATASET_PURPOSE = 'public-data.dataset';

/** The filter conditions (`q` and `near` count as one each) up to which a rows page is named. */
const NAMED_CONDITIONS = 2;

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

export interface Actor {
  userId: string;
  requestId: string;
}

/** The answer of a public read: its body (JSON text), or nothing when the client's copy is current. */
export type Conditional<T> =
  { etag: string; notModified: true } | { etag: string; notModified: false; body: T };

export class PublicDataService {
  readonly #platform: Platform;
  readonly #settings: PublicDataSettings;
  readonly #secret: string;
  readonly keys: ApiKeys;

  constructor(platform: Platform, settings: PublicDataSettings) {
    this.#platform = platform;
    this.#settings = settings;
    this.#secret = platform.config.secrets.appSecret;
    this.keys = new ApiKeys(platform, settings.metadataTtlMs);
    metadataOf(platform).ttlMs = settings.metadataTtlMs;
  }

  get #db() {
    return this.#platform.database.db;
  }

  // ---- publishing ----

  async createDataset(input: CreateDatasetBody): Promise<ReturnType<typeof datasetJson>> {
    try {
      const row = await insertDataset(this.#db, { id: newId(), ...input });
      metadataOf(this.#platform).forgetSlug(row.slug);
      return datasetJson(row, null);
    } catch (error) {
      if (isUniqueViolation(error)) throw new HttpError(PublicDataCodes.SLUG_TAKEN);
      throw error;
    }
  }

  async #dataset(slug: string): Promise<DatasetRow> {
    const row = await findDataset(this.#db, slug);
    if (!row) throw new HttpError(PublicDataCodes.DATASET_NOT_FOUND);
    return row;
  }

  async patchDataset(slug: string, patch: PatchDatasetBody) {
    const row = await this.#dataset(slug);
    const updated = await updateDataset(this.#db, row.id, patch);
    metadataOf(this.#platform).forgetSlug(slug);
    return datasetJson(updated, null);
  }

  async deleteDataset(slug: string): Promise<void> {
    const row = await this.#dataset(slug);
    const tables = await withTransaction(this.#db, (trx) => deleteDataset(trx, row.id));
    metadataOf(this.#platform).forgetSlug(slug);
    for (const table of tables)
      await this.#platform.database.pool.query(`drop table if exists ${qualified(table)}`);
  }

  async createVersion(slug: string, input: CreateVersionBody, actor: Actor) {
    const dataset = await this.#dataset(slug);
    const files = await lookupFiles(this.#db, [input.fileId], {
      purpose: DATASET_PURPOSE,
      ownerId: actor.userId,
    });
    const file = files.get(input.fileId);
    if (!file) throw new HttpError(PublicDataCodes.DATASET_FILE_NOT_FOUND);
    if (file.status !== 'ready') throw new HttpError(PublicDataCodes.DATASET_FILE_NOT_READY);
    const job = importJob(this.#settings);
    const { version, jobId } = await withTransaction(this.#db, async (trx) => {
      await findDataset(trx, slug, { lock: true }); // numbers are taken in turn
      const v = await insertVersion(trx, {
        id: newId(),
        datasetId: dataset.id,
        fileId: file.id,
        format: input.format,
        overrides: input.columns,
        createdBy: actor.userId,
      });
      const sent = await this.#platform.jobs.send(job, { versionId: v.id }, { trx, ...actor });
      await setVersionJob(trx, v.id, sent.id);
      return { version: { ...v, jobId: sent.id }, jobId: sent.id };
    });
    return { version: versionJson(version, dataset.currentVersion), jobId };
  }

  async versions(slug: string) {
    const dataset = await this.#dataset(slug);
    const rows = await listVersions(this.#db, dataset.id);
    return { items: rows.map((v) => versionJson(v, dataset.currentVersion)) };
  }

  // ---- API keys ----

  async createApiKey(input: { name: string; rateLimitPerMin?: number }, actor: Actor) {
    const made = newApiKey();
    const row = await insertApiKey(this.#db, {
      id: newId(),
      name: input.name,
      prefix: made.prefix,
      hash: made.hash,
      limit: input.rateLimitPerMin ?? this.#settings.apiKeyDefaultLimit,
      createdBy: actor.userId,
    });
    return { ...apiKeyJson(row), key: made.key };
  }

  async listApiKeys() {
    await this.keys.flush();
    return { items: (await listApiKeys(this.#db)).map(apiKeyJson) };
  }

  async revokeApiKey(id: string): Promise<void> {
    if (!(await revokeApiKey(this.#db, id))) throw new HttpError(PublicDataCodes.API_KEY_NOT_FOUND);
    this.keys.forget();
  }

  // ---- public reads ----

  /** This process's metadata cache (the conditional fast path peeks into it). */
  get metadata(): MetadataCache {
    return metadataOf(this.#platform);
  }

  async #meta(slug: string): Promise<DatasetMeta> {
    const meta = await metadataOf(this.#platform).get(slug);
    if (!meta || meta.current === null) throw new HttpError(PublicDataCodes.DATASET_NOT_FOUND);
    return meta;
  }

  #version(meta: DatasetMeta, number: number | undefined): VersionMeta {
    if (number === undefined) return meta.current as VersionMeta;
    const v = meta.versions.get(number);
    if (!v) throw new HttpError(PublicDataCodes.VERSION_NOT_FOUND);
    return v;
  }

  async list(query: { q?: string; tag?: string; limit: number; cursor?: string }) {
    const after =
      query.cursor === undefined
        ? undefined
        : String(decodeCursor(this.#secret, 'pd:datasets', query.cursor, 1)[0]);
    const rows = await listDatasets(this.#db, {
      q: query.q,
      tag: query.tag,
      after,
      limit: query.limit + 1,
    });
    const hasMore = rows.length > query.limit;
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items: items.map((d) => datasetJson(d, null)),
      page: {
        limit: query.limit,
        nextCursor: hasMore && last ? encodeCursor(this.#secret, 'pd:datasets', [last.slug]) : null,
        hasMore,
      },
    };
  }

  async detail(
    slug: string,
    url: string,
    ifNoneMatch: string | undefined,
    matches: (inm: string, etag: string) => boolean,
  ) {
    const meta = await this.#meta(slug);
    const current = meta.current as VersionMeta;
    const etag = versionEtag(
      `${current.id}:${meta.dataset.updatedAt.valueOf()}`,
      this.#platform.version,
      url,
    );
    if (ifNoneMatch !== undefined && matches(ifNoneMatch, etag))
      return { etag, meta, notModified: true as const };
    return {
      etag,
      meta,
      notModified: false as const,
      body: {
        ...datasetJson(meta.dataset, current),
        columns: current.columns.filter((c) => !c.hidden).map(columnJson),
        versions: [...meta.versions.values()].map((v) => ({
          number: v.number,
          rowCount: v.rowCount,
          importedAt: v.importedAt.toISOString(),
        })),
      },
    };
  }

  /** Runs a read; a version whose table was dropped meanwhile (a swap elsewhere) is read again once. */
  async #withVersion<T>(
    slug: string,
    number: number | undefined,
    read: (v: VersionMeta) => Promise<T>,
  ): Promise<T> {
    const v = this.#version(await this.#meta(slug), number);
    try {
      return await read(v);
    } catch (error) {
      if ((error as { code?: string }).code !== '42P01') throw error;
      metadataOf(this.#platform).forgetSlug(slug);
      return read(this.#version(await this.#meta(slug), number));
    }
  }

  /** An ETag check that needs no query: the version (from the metadata) and the URL. */
  async etagOf(slug: string, number: number | undefined, url: string): Promise<string> {
    return (await this.conditional(slug, number, url)).etag;
  }

  /** The ETag of a rows URL and the metadata it was derived from (see `metadataOf().peek`). */
  async conditional(
    slug: string,
    number: number | undefined,
    url: string,
  ): Promise<{ etag: string; meta: DatasetMeta }> {
    const meta = await this.#meta(slug);
    const v = this.#version(meta, number);
    return { etag: versionEtag(v.id, this.#platform.version, url), meta };
  }

  async rows(
    slug: string,
    query: RawQuery & { limit?: number; cursor?: string; version?: number },
  ): Promise<string> {
    return this.#withVersion(slug, query.version, async (version) => {
      const plan = planRows(version, query, this.#settings, { inline: false });
      const limit = Math.min(query.limit ?? 50, this.#settings.maxLimit);
      // Facets share the filters' parameters (bound so far), not the cursor's.
      const filterParams = plan.binder.params.slice();
      const text = pageSql(plan, { limit, cursor: query.cursor, secret: this.#secret });
      const pool = this.#platform.database.pool;
      const facetQueries = plan.facets.map((c) =>
        pool.query<{ value: unknown; count: number }>(
          facetSql(plan, c, this.#settings.facetSize),
          filterParams,
        ),
      );
      // The common shapes run as named prepared statements (prepared.ts): every column, at most
      // NAMED_CONDITIONS filter conditions. Filters combine per column, so only those stay a
      // bounded set (per version: sorts × a few columns' filters × first or later page); the
      // version's table is in the text, so a new version is a new statement. Others run unnamed.
      const named = query.fields === undefined && plan.where.length <= NAMED_CONDITIONS;
      const { rows } = await pool.query<Record<string, unknown>>(
        named ? preparedSql(text) : text,
        plan.binder.params,
      );
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const next = hasMore && last ? nextCursor(plan, this.#secret, last) : null;
      let facets = '';
      if (facetQueries.length > 0) {
        const results = await Promise.all(facetQueries);
        const entries = plan.facets.map(
          (c, i) => `${JSON.stringify(c.name)}:${JSON.stringify(results[i]?.rows ?? [])}`,
        );
        facets = `,"facets":{${entries.join(',')}}`;
      }
      return `{"version":${String(version.number)},"items":[${page.map((r) => r.j as string).join(',')}],"page":{"limit":${String(limit)},"nextCursor":${JSON.stringify(next)},"hasMore":${String(hasMore)}}${facets}}`;
    });
  }

  /** The checks of an export (422 for a bad filter) without running it: a HEAD request. */
  async checkExport(slug: string, query: RawQuery & { version?: number }): Promise<void> {
    const version = this.#version(await this.#meta(slug), query.version);
    planRows(version, query, this.#settings, { inline: true });
  }

  /** The whole filtered result as CSV or NDJSON, streamed from COPY (memory flat however large). */
  async export(
    slug: string,
    query: RawQuery & { version?: number },
    format: 'csv' | 'ndjson',
  ): Promise<{ stream: Readable; filename: string; version: number }> {
    const meta = await this.#meta(slug);
    const version = this.#version(meta, query.version);
    const plan = planRows(version, query, this.#settings, { inline: true });
    const statement = exportSql(plan, format);
    const client = await this.#platform.database.pool.connect();
    const out = new PassThrough({ highWaterMark: 64 * 1024 });
    // LF like the rows COPY writes (RFC 4180 readers take both).
    if (format === 'csv') out.write(`${plan.fields.map((c) => c.name).join(',')}\n`);
    const copy = client.query(copyTo(statement));
    let released = false;
    const release = (error?: Error) => {
      if (released) return;
      released = true;
      client.release(error);
    };
    copy.on('error', (error: Error) => {
      release(error);
      out.destroy(error);
    });
    copy.on('end', () => release());
    // The client went away: the connection is mid-COPY, so it is destroyed, not reused.
    out.on('close', () => {
      if (!copy.readableEnded) {
        copy.destroy();
        release(new Error('export aborted'));
      }
    });
    copy.pipe(out);
    return {
      stream: out,
      filename: `${meta.dataset.slug}-v${String(version.number)}.${format}`,
      version: version.number,
    };
  }
}

function datasetJson(d: DatasetRow, current: VersionMeta | null) {
  return {
    slug: d.slug,
    title: d.title,
    description: d.description,
    license: d.license,
    source: d.source,
    tags: d.tags,
    version: d.currentVersion,
    rowCount: current?.rowCount ?? null,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

function columnJson(c: VersionMeta['columns'][number]) {
  return {
    name: c.name,
    label: c.label,
    description: c.description,
    type: c.type,
    filterable: c.filterable,
    sortable: c.sortable,
    searchable: c.searchable,
  };
}

function versionJson(v: VersionRow, current: number | null) {
  return {
    id: v.id,
    number: v.number,
    status: v.status,
    current: v.number === current,
    fileId: v.fileId,
    format: v.format,
    jobId: v.jobId,
    rowCount: v.rowCount,
    badRowCount: v.badRowCount,
    badRows: v.badRows,
    warnings: v.warnings,
    failureCode: v.failureCode,
    failure: v.failure,
    columns: v.columns.map((c) => ({ ...columnJson(c), hidden: c.hidden })),
    createdAt: new Date(v.createdAt).toISOString(),
    finishedAt: iso(v.finishedAt),
  };
}

function apiKeyJson(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    rateLimitPerMin: k.rateLimitPerMin,
    requestCount: k.requestCount,
    lastUsedAt: iso(k.lastUsedAt),
    createdAt: new Date(k.createdAt).toISOString(),
    revokedAt: iso(k.revokedAt),
  };
}
