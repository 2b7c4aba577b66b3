import { HttpError } from '../../platform/http/index.ts';
import { isUniqueViolation, newId, withTransaction } from '../../platform/db/index.ts';
import { lookupFiles, type FileInfo } from '../../platform/files/index.ts';
import type { Platform } from '../../platform/modules/index.ts';
import {
  deleteSubtree,
  findCategory,
  findItem,
  insertCategory,
  insertItem,
  listCategories,
  listItems,
  lockTree,
  moveSubtree,
  moveSubtreeItems,
  replaceImages,
  softDeleteItem,
  subtreeContents,
  touchSubtreeItems,
  updateCategoryFields,
  updateImagesOfFile,
  updateItem,
  type CategoryRow,
  type ImageRow,
  type ItemRow,
  type ItemSort,
  type NewItem,
} from './catalog.repository.ts';
import { notFound, ShopCodes, StaleWriteError } from './shop.errors.ts';
import { isCurrency } from './shop.money.ts';
import type {
  CategoryNode,
  CategoryResponse,
  CreateCategoryBody,
  CreateItemBody,
  ItemListQuery,
  ItemResponse,
  ItemSummary,
  UpdateCategoryBody,
  UpdateItemBody,
} from './shop.schemas.ts';
import { decodeCursor, encodeCursor } from '../../platform/db/index.ts';
import { DbCodes } from '../../platform/db/index.ts';

export const ITEM_IMAGE_PURPOSE = 'shop.item-image';
const CATEGORIES_TAG = 'shop:categories';
/** Item details are cached by slug, under a tag of that slug. */
const itemTag = (slug: string) => `shop:item:${slug}`;

export interface CatalogSettings {
  attributesMaxBytes: number;
  attributesMaxDepth: number;
  cacheTtlSeconds: number;
  /** Signs listing cursors (`APP_SECRET`). */
  secret: string;
}

/** The strong validator of an item: its id and version (bumped by every change it shows). */
export function itemEtag(item: { id: string; version: number }): string {
  return `"${item.id}.${item.version}"`;
}

function toCategory(row: CategoryRow): CategoryResponse {
  return {
    id: row.id,
    parentId: row.parentId,
    slug: row.slug,
    name: row.name,
    description: row.description,
    depth: row.depth,
    position: row.position,
  };
}

function toItem(row: ItemRow): ItemResponse {
  return {
    id: row.id,
    sku: row.sku,
    slug: row.slug,
    name: row.name,
    description: row.description,
    price: Number(row.price),
    currency: row.currency,
    stock: row.stock,
    inStock: row.stock > 0,
    active: row.active,
    category: row.category,
    attributes: row.attributes,
    images: row.images,
    version: row.version,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

/** What an item shows of a file: dimensions, blurhash and variant paths once it is ready. */
export function imageOf(file: FileInfo): ImageRow {
  const ready = file.status === 'ready';
  return {
    fileId: file.id,
    status: file.status,
    width: ready ? file.width : null,
    height: ready ? file.height : null,
    blurhash: ready ? file.blurhash : null,
    path: ready ? file.path : null,
    variants: ready
      ? file.variants.map((v) => ({
          id: v.id,
          width: v.width,
          height: v.height,
          contentType: v.contentType,
          path: v.path,
        }))
      : [],
  };
}

/** Depth of a JSON value without recursion (a 10,000-deep array must not blow the stack). */
function jsonDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** The catalog's rules: the category tree, items, images and their caching. No SQL here. */
export class CatalogService {
  readonly #platform: Platform;
  readonly #settings: CatalogSettings;

  constructor(platform: Platform, settings: CatalogSettings) {
    this.#platform = platform;
    this.#settings = settings;
  }

  get #db() {
    return this.#platform.database.db;
  }

  // ---- categories

  /** The whole tree, nested or flat (cached, invalidated by every category change). */
  async tree(shape: 'nested' | 'flat'): Promise<{ items: (CategoryResponse | CategoryNode)[] }> {
    const { cache } = this.#platform;
    return cache.getOrSet(
      cache.key('shop-categories', shape),
      async () => {
        const rows = await listCategories(this.#db);
        if (shape === 'flat')
          return { items: [...rows].sort((a, b) => a.path.localeCompare(b.path)).map(toCategory) };
        const nodes = new Map<string, CategoryNode>();
        for (const row of rows) nodes.set(row.id, { ...toCategory(row), children: [] });
        const roots: CategoryNode[] = [];
        // Rows come by depth, so a parent is always seen before its children.
        for (const row of rows) {
          const node = nodes.get(row.id) as CategoryNode;
          const parent = row.parentId ? nodes.get(row.parentId) : undefined;
          if (parent) parent.children.push(node);
          else roots.push(node);
        }
        return { items: roots };
      },
      { ttlSeconds: this.#settings.cacheTtlSeconds, tags: [CATEGORIES_TAG] },
    );
  }

  async category(slug: string): Promise<CategoryResponse> {
    const row = await findCategory(this.#db, { slug });
    if (!row) throw notFound('category');
    return toCategory(row);
  }

  async createCategory(input: CreateCategoryBody): Promise<CategoryResponse> {
    const row = await this.#uniqueSlug(() =>
      withTransaction(this.#db, async (trx) => {
        await lockTree(trx);
        const parent = input.parentId ? await findCategory(trx, { id: input.parentId }) : null;
        if (input.parentId && !parent) throw notFound('parent category');
        return insertCategory(trx, {
          id: newId(),
          parent: parent ?? null,
          slug: input.slug,
          name: input.name,
          description: input.description ?? '',
          position: input.position ?? 0,
        });
      }),
    );
    await this.#platform.cache.invalidateTag(CATEGORIES_TAG);
    return toCategory(row);
  }

  /** Renames, reorders or moves a category with its subtree; a move under itself is a cycle. */
  async updateCategory(id: string, input: UpdateCategoryBody): Promise<CategoryResponse> {
    const touched = await this.#uniqueSlug(() =>
      withTransaction(this.#db, async (trx) => {
        await lockTree(trx);
        const category = await findCategory(trx, { id });
        if (!category) throw notFound('category');
        await updateCategoryFields(trx, id, input);
        if (input.parentId !== undefined && input.parentId !== category.parentId) {
          let parent: CategoryRow | null = null;
          if (input.parentId !== null) {
            parent = (await findCategory(trx, { id: input.parentId })) ?? null;
            if (!parent) throw notFound('parent category');
            // The new parent inside the moved subtree (itself included) would close a loop.
            if (parent.path.startsWith(category.path))
              throw new HttpError(ShopCodes.CATEGORY_CYCLE, {
                detail: `Category ${category.slug} cannot move under ${parent.slug}, which is itself or one of its descendants.`,
              });
          }
          await moveSubtree(trx, category, parent);
        }
        const touchedItems =
          input.name !== undefined || input.slug !== undefined
            ? await touchSubtreeItems(trx, category)
            : [];
        return touchedItems;
      }),
    );
    await this.#platform.cache.invalidateTags([CATEGORIES_TAG, ...touched.map(itemTag)]);
    const row = await findCategory(this.#db, { id });
    if (!row) throw notFound('category');
    return toCategory(row);
  }

  /**
   * Deletes a category. Refused while it has subcategories or live items, unless `moveItemsTo`
   * names a category outside it: then every item of the subtree moves there first and the whole
   * subtree goes.
   */
  async deleteCategory(id: string, moveItemsTo: string | undefined): Promise<void> {
    const moved = await withTransaction(this.#db, async (trx) => {
      await lockTree(trx);
      const category = await findCategory(trx, { id });
      if (!category) throw notFound('category');
      if (moveItemsTo === undefined) {
        const contents = await subtreeContents(trx, category);
        if (contents.items > 0 || contents.children > 0)
          throw new HttpError(ShopCodes.CATEGORY_NOT_EMPTY, {
            detail: `Category ${category.slug} holds ${contents.items} items and ${contents.children} subcategories; pass moveItemsTo to move its items.`,
          });
        await deleteSubtree(trx, category);
        return [];
      }
      const target = await findCategory(trx, { id: moveItemsTo });
      if (!target) throw notFound('target category');
      if (target.path.startsWith(category.path))
        throw new HttpError(ShopCodes.CATEGORY_CYCLE, {
          detail: 'The items cannot move into the subtree being deleted.',
        });
      const ids = await moveSubtreeItems(trx, category, target.id);
      await deleteSubtree(trx, category);
      return ids;
    });
    await this.#platform.cache.invalidateTags([CATEGORIES_TAG, ...moved.map(itemTag)]);
  }

  async #uniqueSlug<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isUniqueViolation(error))
        throw new HttpError(ShopCodes.DUPLICATE_SLUG, {
          detail: 'Another category has this slug.',
        });
      throw error;
    }
  }

  // ---- items

  /** An item as GET /items/:slug shows it (cached under its id's tag); inactive ones are not found. */
  async item(slug: string): Promise<ItemResponse> {
    const { cache } = this.#platform;
    const found = await cache.getOrSet(
      cache.key('shop-item', slug),
      async () => {
        const row = await findItem(this.#db, { slug });
        return row ? toItem(row) : null;
      },
      // "Not found" is cached too: creating or renaming an item to this slug drops it.
      { ttlSeconds: this.#settings.cacheTtlSeconds, tags: [itemTag(slug)] },
    );
    if (!found) throw notFound('item');
    return found;
  }

  /** An item for its admins, inactive ones included (never cached). */
  async adminItem(id: string): Promise<ItemResponse> {
    const row = await findItem(this.#db, { id }, { includeInactive: true });
    if (!row) throw notFound('item');
    return toItem(row);
  }

  async list(query: ItemListQuery) {
    const sort: ItemSort = query.sort ?? (query.q ? 'relevance' : 'newest');
    if (sort === 'relevance' && !query.q)
      throw new HttpError(DbCodes.INVALID_LIST_QUERY, {
        detail: 'Sorting by relevance needs q.',
        errors: [{ path: '/query/sort', message: 'relevance needs q' }],
      });
    if (
      query.minPrice !== undefined &&
      query.maxPrice !== undefined &&
      query.minPrice > query.maxPrice
    )
      throw new HttpError(DbCodes.INVALID_LIST_QUERY, {
        detail: 'minPrice is above maxPrice.',
        errors: [{ path: '/query/minPrice', message: 'must be at most maxPrice' }],
      });
    let attributes: Record<string, unknown> | undefined;
    if (query.attributes !== undefined) {
      try {
        attributes = JSON.parse(query.attributes) as Record<string, unknown>;
      } catch {
        attributes = undefined;
      }
      if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes))
        throw new HttpError(DbCodes.INVALID_LIST_QUERY, {
          detail: 'attributes must be a JSON object.',
          errors: [{ path: '/query/attributes', message: 'must be a JSON object' }],
        });
    }
    let categoryPath: string | undefined;
    if (query.category !== undefined) {
      const category = await this.#categoryPath(query.category);
      if (category === undefined)
        return { items: [], page: { limit: query.limit ?? 20, nextCursor: null, hasMore: false } };
      categoryPath = category;
    }
    const limit = query.limit ?? 20;
    // The cursor is bound to the listing's whole shape: filters and sort.
    const signature = `shop-items|${sort}|${JSON.stringify([categoryPath, query.minPrice, query.maxPrice, query.currency, query.inStock, query.q, attributes])}`;
    const after =
      query.cursor === undefined
        ? null
        : (decodeCursor(this.#settings.secret, signature, query.cursor, 2) as [string, string]);
    const rows = await listItems(
      this.#db,
      {
        ...(categoryPath !== undefined ? { categoryPath } : {}),
        ...(query.minPrice !== undefined ? { minPrice: query.minPrice } : {}),
        ...(query.maxPrice !== undefined ? { maxPrice: query.maxPrice } : {}),
        ...(query.currency !== undefined ? { currency: query.currency } : {}),
        ...(query.inStock !== undefined ? { inStock: query.inStock } : {}),
        ...(query.q !== undefined ? { q: query.q } : {}),
        ...(attributes !== undefined ? { attributes } : {}),
      },
      sort,
      limit,
      after,
    );
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const last = page.at(-1);
    const items: ItemSummary[] = page.map((r) => ({
      id: r.id,
      sku: r.sku,
      slug: r.slug,
      name: r.name,
      price: Number(r.price),
      currency: r.currency,
      inStock: r.stock > 0,
      category: r.category,
      image: r.image,
      createdAt: new Date(r.createdAt).toISOString(),
    }));
    return {
      items,
      page: {
        limit,
        nextCursor:
          hasMore && last
            ? encodeCursor(this.#settings.secret, signature, [last.k1, last.k2])
            : null,
        hasMore,
      },
    };
  }

  /** A category's path by slug (the category tree is small and cached). */
  async #categoryPath(slug: string): Promise<string | undefined> {
    const { cache } = this.#platform;
    const path = await cache.getOrSet(
      cache.key('shop-category-path', slug),
      async () => (await findCategory(this.#db, { slug }))?.path ?? null,
      { ttlSeconds: this.#settings.cacheTtlSeconds, tags: [CATEGORIES_TAG] },
    );
    return path ?? undefined;
  }

  #checkAttributes(attributes: Record<string, unknown> | undefined): void {
    if (attributes === undefined) return;
    const { attributesMaxBytes, attributesMaxDepth } = this.#settings;
    if (Buffer.byteLength(JSON.stringify(attributes)) > attributesMaxBytes)
      throw new HttpError(ShopCodes.INVALID_ATTRIBUTES, {
        detail: `Attributes hold at most ${attributesMaxBytes} bytes of JSON.`,
      });
    if (jsonDepth(attributes, attributesMaxDepth) > attributesMaxDepth)
      throw new HttpError(ShopCodes.INVALID_ATTRIBUTES, {
        detail: `Attributes nest at most ${attributesMaxDepth} levels deep.`,
      });
  }

  #checkCurrency(currency: string | undefined): void {
    if (currency !== undefined && !isCurrency(currency))
      throw new HttpError(ShopCodes.INVALID_CURRENCY, {
        detail: `${currency} is not an ISO 4217 currency.`,
      });
  }

  async #images(
    trx: Parameters<typeof lookupFiles>[0],
    ids: readonly string[],
  ): Promise<ImageRow[]> {
    if (ids.length === 0) return [];
    const files = await lookupFiles(trx, ids, { purpose: ITEM_IMAGE_PURPOSE });
    const missing = ids.filter((id) => !files.has(id));
    if (missing.length > 0)
      throw new HttpError(ShopCodes.INVALID_IMAGE, {
        detail: `Not item images: ${missing.join(', ')}.`,
      });
    return ids.map((id) => imageOf(files.get(id) as FileInfo));
  }

  async #uniqueItem<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isUniqueViolation(error))
        throw new HttpError(ShopCodes.DUPLICATE_SKU, {
          detail: 'Another item has this SKU or slug.',
        });
      throw error;
    }
  }

  async createItem(input: CreateItemBody): Promise<ItemResponse> {
    this.#checkCurrency(input.currency);
    this.#checkAttributes(input.attributes);
    const id = newId();
    const images = await this.#uniqueItem(() =>
      withTransaction(this.#db, async (trx) => {
        if (!(await findCategory(trx, { id: input.categoryId }))) throw notFound('category');
        const images = await this.#images(trx, input.images ?? []);
        const item: NewItem = {
          id,
          sku: input.sku,
          slug: input.slug,
          name: input.name,
          description: input.description ?? '',
          price: input.price,
          currency: input.currency,
          stock: input.stock,
          categoryId: input.categoryId,
          attributes: input.attributes ?? {},
          active: input.active ?? true,
        };
        await insertItem(trx, item);
        await replaceImages(trx, id, images);
        return images;
      }),
    );
    await this.#platform.cache.invalidateTag(itemTag(input.slug));
    await this.#recheck(images);
    return this.adminItem(id);
  }

  /**
   * Changes an item. With `If-Match` (the ETag read), a write on a version that changed since
   * (another admin's edit, an order taking stock) is refused with 412 and nothing is written.
   */
  async updateItem(
    id: string,
    input: UpdateItemBody,
    ifMatch: string | undefined,
  ): Promise<ItemResponse> {
    this.#checkCurrency(input.currency);
    this.#checkAttributes(input.attributes);
    const { oldSlug, images } = await this.#uniqueItem(() =>
      withTransaction(this.#db, async (trx) => {
        const current = await findItem(trx, { id }, { lock: true, includeInactive: true });
        if (!current) throw notFound('item');
        const etag = itemEtag(current);
        if (ifMatch !== undefined && !matchesIfMatch(ifMatch, etag))
          throw new StaleWriteError(etag);
        if (input.categoryId !== undefined && !(await findCategory(trx, { id: input.categoryId })))
          throw notFound('category');
        const { images: ids, ...fields } = input;
        await updateItem(trx, id, fields);
        const images = ids === undefined ? [] : await this.#images(trx, ids);
        if (ids !== undefined) await replaceImages(trx, id, images);
        return { oldSlug: current.slug, images };
      }),
    );
    await this.#platform.cache.invalidateTags(
      input.slug !== undefined ? [itemTag(oldSlug), itemTag(input.slug)] : [itemTag(oldSlug)],
    );
    await this.#recheck(images);
    return this.adminItem(id);
  }

  /**
   * Images attached while still processing are read again once the attachment committed: a
   * `file.ready` handled between our read and our commit found no row to update, and would
   * otherwise leave the item showing "processing" for ever.
   */
  async #recheck(images: readonly ImageRow[]): Promise<void> {
    for (const image of images)
      if (image.status === 'processing') await this.fileProcessed(image.fileId);
  }

  async deleteItem(id: string, ifMatch: string | undefined): Promise<void> {
    const slug = await withTransaction(this.#db, async (trx) => {
      const current = await findItem(trx, { id }, { lock: true, includeInactive: true });
      if (!current) throw notFound('item');
      const etag = itemEtag(current);
      if (ifMatch !== undefined && !matchesIfMatch(ifMatch, etag)) throw new StaleWriteError(etag);
      await softDeleteItem(trx, id);
      return current.slug;
    });
    await this.#platform.cache.invalidateTag(itemTag(slug));
  }

  /** A file of ours finished (or failed) processing: the items showing it show it now. */
  async fileProcessed(fileId: string): Promise<void> {
    const files = await lookupFiles(this.#db, [fileId], { purpose: ITEM_IMAGE_PURPOSE });
    const file = files.get(fileId);
    if (!file) return;
    const { fileId: _, ...image } = imageOf(file);
    const items = await updateImagesOfFile(this.#db, fileId, image);
    if (items.length > 0) await this.#platform.cache.invalidateTags(items.map(itemTag));
  }

  /** Drops cached item details after their stock moved (called once the order committed). */
  async stockMoved(slugs: readonly string[]): Promise<void> {
    if (slugs.length > 0) await this.#platform.cache.invalidateTags(slugs.map(itemTag));
  }
}

/** RFC 9110 If-Match: `*` or a list of strong tags (a weak tag never matches for a write). */
export function matchesIfMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === etag);
}
