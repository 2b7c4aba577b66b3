import type { Platform } from '../../platform/modules/index.ts';
import type { Column } from './columns.ts';
import { findDataset, readableVersions, type DatasetRow } from './repository.ts';

/** A readable version as the read routes use it. */
export interface VersionMeta {
  readonly id: string;
  readonly number: number;
  readonly table: string;
  readonly columns: readonly Column[];
  /** Visible columns by public name (hidden ones are absent, as if unknown). */
  readonly byName: ReadonlyMap<string, Column>;
  readonly rowCount: number;
  /** The text search configuration its `_search` vectors were built with. */
  readonly searchConfig: string;
  readonly importedAt: Date;
}

export interface DatasetMeta {
  readonly dataset: DatasetRow;
  readonly current: VersionMeta | null;
  readonly versions: ReadonlyMap<number, VersionMeta>;
}

interface Entry {
  at: number;
  value: Promise<DatasetMeta | null>;
  /** The value once loaded (for `peek`). */
  loaded?: DatasetMeta | null;
}

/**
 * Every read route needs a dataset's current version and columns before its query (and a
 * conditional request needs nothing else): they are kept per process for `ttlMs`, dropped at
 * once when this process changes them (a swap, an edit), within `ttlMs` when another does.
 */
export class MetadataCache {
  ttlMs = 2_000;
  readonly #bySlug = new Map<string, Entry>();
  readonly #platform: Platform;

  constructor(platform: Platform) {
    this.#platform = platform;
  }

  get(slug: string): Promise<DatasetMeta | null> {
    const now = Date.now();
    const hit = this.#bySlug.get(slug);
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.value;
    const value = this.#load(slug);
    // Unknown slugs are kept too (a scan of random slugs costs one query per slug and period),
    // in a bounded map.
    if (this.#bySlug.size > 10_000) this.#bySlug.clear();
    const entry: Entry = { at: now, value };
    this.#bySlug.set(slug, entry);
    value.then(
      (loaded) => {
        entry.loaded = loaded;
      },
      () => {
        if (this.#bySlug.get(slug) === entry) this.#bySlug.delete(slug);
      },
    );
    return value;
  }

  /**
   * The metadata `get` would answer now without a query, or undefined (not loaded, loading,
   * older than `ttlMs`, or dropped since). The same object until it is reloaded or dropped, so a
   * caller may keep what it derived from it and compare identities to know it is still current.
   */
  peek(slug: string): DatasetMeta | null | undefined {
    const hit = this.#bySlug.get(slug);
    if (hit === undefined || Date.now() - hit.at >= this.ttlMs) return undefined;
    return hit.loaded;
  }

  async #load(slug: string): Promise<DatasetMeta | null> {
    const db = this.#platform.database.db;
    const dataset = await findDataset(db, slug);
    if (!dataset) return null;
    const versions = new Map<number, VersionMeta>();
    for (const v of await readableVersions(db, dataset.id)) {
      if (v.tableName === null) continue;
      versions.set(v.number, {
        id: v.id,
        number: v.number,
        table: v.tableName,
        columns: v.columns,
        byName: new Map(v.columns.filter((c) => !c.hidden).map((c) => [c.name, c])),
        rowCount: v.rowCount,
        searchConfig: v.searchConfig,
        importedAt: new Date(v.finishedAt ?? v.createdAt),
      });
    }
    const current =
      dataset.currentVersion === null ? null : (versions.get(dataset.currentVersion) ?? null);
    return { dataset, current, versions };
  }

  forgetSlug(slug: string): void {
    this.#bySlug.delete(slug);
  }

  /** After a swap (the job knows the dataset's id, not its slug): every entry is dropped. */
  forgetDataset(_id: string): void {
    this.#bySlug.clear();
  }
}

const caches = new WeakMap<Platform, MetadataCache>();

/** The process's metadata cache of a platform (shared by the routes and the import job). */
export function metadataOf(platform: Platform): MetadataCache {
  let cache = caches.get(platform);
  if (cache === undefined) caches.set(platform, (cache = new MetadataCache(platform)));
  return cache;
}
