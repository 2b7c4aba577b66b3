import { sql, type Kysely, type RawBuilder } from 'kysely';
import { executePrepared, type AnyDb } from '../../platform/db/index.ts';

/**
 * All SQL of the catalog. The shop's tables are its own; queries are written in SQL (through
 * Kysely's `sql`) because the listings are shaped for their indexes (laterals, row comparisons).
 */

export interface CategoryRow {
  id: string;
  parentId: string | null;
  slug: string;
  name: string;
  description: string;
  path: string;
  depth: number;
  position: number;
}

const CATEGORY_COLUMNS = sql`id, parent_id as "parentId", slug, name, description, path, depth, position`;

export async function listCategories(db: AnyDb): Promise<CategoryRow[]> {
  const { rows } = await sql<CategoryRow>`
    select ${CATEGORY_COLUMNS} from shop_category order by depth, position, name, id`.execute(db);
  return rows;
}

export async function findCategory(
  db: AnyDb,
  by: { id: string } | { slug: string },
  lock = false,
): Promise<CategoryRow | undefined> {
  const where = 'id' in by ? sql`id = ${by.id}` : sql`slug = ${by.slug}`;
  const { rows } = await sql<CategoryRow>`
    select ${CATEGORY_COLUMNS} from shop_category where ${where} ${lock ? sql`for update` : sql``}`.execute(
    db,
  );
  return rows[0];
}

/** Serialises changes of the tree's shape, so that two concurrent moves cannot make a cycle. */
export async function lockTree(db: AnyDb): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('shop_category_tree'))`.execute(db);
}

export async function insertCategory(
  db: AnyDb,
  c: {
    id: string;
    parent: CategoryRow | null;
    slug: string;
    name: string;
    description: string;
    position: number;
  },
): Promise<CategoryRow> {
  const path = `${c.parent?.path ?? '/'}${c.id}/`;
  const depth = c.parent ? c.parent.depth + 1 : 0;
  const { rows } = await sql<CategoryRow>`
    insert into shop_category (id, parent_id, slug, name, description, path, depth, position)
    values (${c.id}, ${c.parent?.id ?? null}, ${c.slug}, ${c.name}, ${c.description}, ${path}, ${depth}, ${c.position})
    returning ${CATEGORY_COLUMNS}`.execute(db);
  return rows[0] as CategoryRow;
}

export async function updateCategoryFields(
  db: AnyDb,
  id: string,
  fields: { slug?: string; name?: string; description?: string; position?: number },
): Promise<void> {
  const sets: RawBuilder<unknown>[] = [];
  if (fields.slug !== undefined) sets.push(sql`slug = ${fields.slug}`);
  if (fields.name !== undefined) sets.push(sql`name = ${fields.name}`);
  if (fields.description !== undefined) sets.push(sql`description = ${fields.description}`);
  if (fields.position !== undefined) sets.push(sql`position = ${fields.position}`);
  if (sets.length === 0) return;
  await sql`update shop_category set ${sql.join(sets)} where id = ${id}`.execute(db);
}

/** Moves a category and its whole subtree under `parent` (null: a root): one statement. */
export async function moveSubtree(
  db: AnyDb,
  category: CategoryRow,
  parent: CategoryRow | null,
): Promise<void> {
  const newPath = `${parent?.path ?? '/'}${category.id}/`;
  const delta = (parent ? parent.depth + 1 : 0) - category.depth;
  await sql`
    update shop_category
       set path = ${newPath} || substr(path, ${category.path.length + 1}),
           depth = depth + ${delta},
           parent_id = case when id = ${category.id} then ${parent?.id ?? null}::uuid else parent_id end
     where path like ${`${category.path}%`}`.execute(db);
}

/** Live items and child categories under a category (its subtree, itself included). */
export async function subtreeContents(
  db: AnyDb,
  category: CategoryRow,
): Promise<{ items: number; children: number }> {
  const { rows } = await sql<{ items: number; children: number }>`
    select
      (select count(*)::int from shop_item i
        where i.deleted_at is null
          and i.category_id in (select id from shop_category where path like ${`${category.path}%`})) as items,
      (select count(*)::int from shop_category where parent_id = ${category.id}) as children`.execute(
    db,
  );
  return rows[0] ?? { items: 0, children: 0 };
}

/** Moves every item (live or deleted) of the subtree to `target`; returns the moved slugs. */
export async function moveSubtreeItems(
  db: AnyDb,
  category: CategoryRow,
  target: string,
): Promise<string[]> {
  const { rows } = await sql<{ slug: string }>`
    update shop_item set category_id = ${target}, version = version + 1
     where category_id in (select id from shop_category where path like ${`${category.path}%`})
    returning slug`.execute(db);
  return rows.map((r) => r.slug);
}

/** Deletes the subtree's categories, deepest first (deleted items lose their category). */
export async function deleteSubtree(db: AnyDb, category: CategoryRow): Promise<void> {
  await sql`delete from shop_category where path like ${`${category.path}%`}`.execute(db);
}

/** Items shown under a category: bumps their version (their category changed); their slugs. */
export async function touchSubtreeItems(db: AnyDb, category: CategoryRow): Promise<string[]> {
  const { rows } = await sql<{ slug: string }>`
    update shop_item set version = version + 1
     where category_id in (select id from shop_category where path like ${`${category.path}%`})
       and deleted_at is null
    returning slug`.execute(db);
  return rows.map((r) => r.slug);
}

// ---- items

export interface ImageRow {
  fileId: string;
  status: 'processing' | 'ready' | 'failed';
  width: number | null;
  height: number | null;
  blurhash: string | null;
  path: string | null;
  variants: { id: string; width: number; height: number; contentType: string; path: string }[];
}

export interface ItemRow {
  id: string;
  sku: string;
  slug: string;
  name: string;
  description: string;
  price: string;
  currency: string;
  stock: number;
  active: boolean;
  attributes: Record<string, unknown>;
  version: number;
  category: { id: string; slug: string; name: string };
  images: ImageRow[];
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

const IMAGE_JSON = sql`json_build_object('fileId', m.file_id, 'status', m.status, 'width', m.width,
  'height', m.height, 'blurhash', m.blurhash, 'path', m.path, 'variants', m.variants)`;

/** One item with its category and images: one statement. */
export async function findItem(
  db: AnyDb,
  by: { id: string } | { slug: string },
  options: { lock?: boolean; includeInactive?: boolean } = {},
): Promise<ItemRow | undefined> {
  const where = 'id' in by ? sql`i.id = ${by.id}` : sql`i.slug = ${by.slug}`;
  const { rows } = await sql<ItemRow>`
    select i.id, i.sku, i.slug, i.name, i.description, i.price::text as price, i.currency, i.stock,
           i.active, i.attributes, i.version, i.created_at as "createdAt", i.updated_at as "updatedAt",
           i.deleted_at as "deletedAt",
           json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) as category,
           coalesce((select json_agg(${IMAGE_JSON} order by m.position)
                       from shop_item_image m where m.item_id = i.id), '[]') as images
      from shop_item i join shop_category c on c.id = i.category_id
     where ${where} and i.deleted_at is null ${options.includeInactive ? sql`` : sql`and i.active`}
     ${options.lock ? sql`for update of i` : sql``}`.execute(db);
  return rows[0];
}

export interface NewItem {
  id: string;
  sku: string;
  slug: string;
  name: string;
  description: string;
  price: number;
  currency: string;
  stock: number;
  categoryId: string;
  attributes: Record<string, unknown>;
  active: boolean;
}

export async function insertItem(db: AnyDb, item: NewItem): Promise<void> {
  await sql`
    insert into shop_item (id, sku, slug, name, description, price, currency, stock, category_id, attributes, active)
    values (${item.id}, ${item.sku}, ${item.slug}, ${item.name}, ${item.description}, ${item.price},
            ${item.currency}, ${item.stock}, ${item.categoryId}, ${JSON.stringify(item.attributes)}::jsonb, ${item.active})`.execute(
    db,
  );
}

/** Writes the given fields and bumps the version; the caller holds the row lock. */
export async function updateItem(db: AnyDb, id: string, fields: Partial<NewItem>): Promise<void> {
  const sets: RawBuilder<unknown>[] = [sql`version = version + 1`];
  const columns: [keyof NewItem, string][] = [
    ['sku', 'sku'],
    ['slug', 'slug'],
    ['name', 'name'],
    ['description', 'description'],
    ['price', 'price'],
    ['currency', 'currency'],
    ['stock', 'stock'],
    ['categoryId', 'category_id'],
    ['active', 'active'],
  ];
  for (const [key, column] of columns)
    if (fields[key] !== undefined) sets.push(sql`${sql.ref(column)} = ${fields[key]}`);
  if (fields.attributes !== undefined)
    sets.push(sql`attributes = ${JSON.stringify(fields.attributes)}::jsonb`);
  await sql`update shop_item set ${sql.join(sets)} where id = ${id}`.execute(db);
}

export async function softDeleteItem(db: AnyDb, id: string): Promise<void> {
  await sql`update shop_item set deleted_at = now(), active = false, version = version + 1 where id = ${id}`.execute(
    db,
  );
}

/** Replaces an item's images with these (in order). */
export async function replaceImages(
  db: AnyDb,
  itemId: string,
  images: readonly ImageRow[],
): Promise<void> {
  await sql`delete from shop_item_image where item_id = ${itemId}`.execute(db);
  if (images.length === 0) return;
  await sql`
    insert into shop_item_image (item_id, position, file_id, status, width, height, blurhash, path, variants)
    select ${itemId}::uuid, r.ord - 1, (r.e->>'fileId')::uuid, r.e->>'status', (r.e->>'width')::int, (r.e->>'height')::int,
           r.e->>'blurhash', r.e->>'path', r.e->'variants'
      from jsonb_array_elements(${JSON.stringify(images)}::jsonb) with ordinality as r(e, ord)`.execute(
    db,
  );
}

/** Updates every item image showing this file; returns the slugs of the items touched (version bumped). */
export async function updateImagesOfFile(
  db: AnyDb,
  fileId: string,
  image: Omit<ImageRow, 'fileId'>,
): Promise<string[]> {
  const { rows } = await sql<{ slug: string }>`
    with touched as (
      update shop_item_image
         set status = ${image.status}, width = ${image.width}, height = ${image.height},
             blurhash = ${image.blurhash}, path = ${image.path}, variants = ${JSON.stringify(image.variants)}::jsonb
       where file_id = ${fileId}
      returning item_id)
    update shop_item set version = version + 1 where id in (select item_id from touched)
    returning slug`.execute(db);
  return rows.map((r) => r.slug);
}

// ---- the listing

export type ItemSort = 'price' | '-price' | 'newest' | 'name' | 'relevance';

export interface ItemFilter {
  /** The category's path: items of it and every descendant. */
  categoryPath?: string;
  minPrice?: number;
  maxPrice?: number;
  currency?: string;
  inStock?: boolean;
  q?: string;
  attributes?: Record<string, unknown>;
}

export interface ListedItem {
  id: string;
  sku: string;
  slug: string;
  name: string;
  price: string;
  currency: string;
  stock: number;
  createdAt: Date;
  category: { id: string; slug: string; name: string };
  image: ImageRow | null;
  k1: string;
  k2: string;
}

/** The order of each sort: its key column (as in the indexes) and direction. */
const SORTS: Record<ItemSort, { key: RawBuilder<unknown>; desc: boolean }> = {
  price: { key: sql`i.price`, desc: false },
  '-price': { key: sql`i.price`, desc: true },
  newest: { key: sql`i.created_at`, desc: true },
  name: { key: sql`i.name`, desc: false },
  // Built with the query's own terms in listItems.
  relevance: { key: sql`0`, desc: true },
};

/**
 * One page of listed items, with each item's category and first ready image, in one statement.
 * With a category, the items of each category of its subtree are read by their own index range
 * (a lateral per category, each stopping at the page size) and merged: a page of a top category
 * reads at most (categories × page) index entries, never the whole subtree.
 * `after` is the last row's keys (sort key as text, id).
 */
export async function listItems(
  db: AnyDb,
  filter: ItemFilter,
  sort: ItemSort,
  limit: number,
  after: [string, string] | null,
): Promise<ListedItem[]> {
  const { desc } = SORTS[sort];
  const key =
    sort === 'relevance'
      ? sql`ts_rank(i.search, websearch_to_tsquery('english', ${filter.q ?? ''}))`
      : SORTS[sort].key;
  const cmp = sql.raw(desc ? '<' : '>');
  const dir = sql.raw(desc ? 'desc' : 'asc');
  const castKey =
    sort === 'newest'
      ? sql`${after?.[0] ?? null}::timestamptz`
      : sort === 'name'
        ? sql`${after?.[0] ?? null}::text`
        : sort === 'relevance'
          ? sql`${after?.[0] ?? null}::real`
          : sql`${after?.[0] ?? null}::bigint`;

  const conditions: RawBuilder<unknown>[] = [sql`i.active`, sql`i.deleted_at is null`];
  if (filter.minPrice !== undefined) conditions.push(sql`i.price >= ${filter.minPrice}`);
  if (filter.maxPrice !== undefined) conditions.push(sql`i.price <= ${filter.maxPrice}`);
  if (filter.currency !== undefined) conditions.push(sql`i.currency = ${filter.currency}`);
  if (filter.inStock === true) conditions.push(sql`i.stock > 0`);
  if (filter.inStock === false) conditions.push(sql`i.stock = 0`);
  if (filter.q !== undefined)
    conditions.push(sql`i.search @@ websearch_to_tsquery('english', ${filter.q})`);
  if (filter.attributes !== undefined)
    conditions.push(sql`i.attributes @> ${JSON.stringify(filter.attributes)}::jsonb`);
  if (after) conditions.push(sql`(${key}, i.id) ${cmp} (${castKey}, ${after[1]}::uuid)`);
  const where = sql.join(conditions, sql` and `);
  const order = sql`${key} ${dir}, i.id ${dir}`;

  // A category (with its subtree) by price, newest or name: one range of the listing table's
  // index in the page's order (see migration 202612080500), each row joined to its item.
  if (filter.categoryPath !== undefined && sort !== 'relevance')
    return listCategoryItems(db, filter, sort, limit, after);

  // Relevance is computed per row, so no index gives its order: the matches are ranked.
  const perCategory = filter.categoryPath !== undefined && sort !== 'relevance';
  const source = perCategory
    ? sql`(select cc.id from shop_category cc where cc.path like ${`${filter.categoryPath ?? ''}%`}) sub
          cross join lateral (
            select i.* from shop_item i where i.category_id = sub.id and ${where}
             order by ${order} limit ${limit + 1}) i`
    : filter.categoryPath !== undefined
      ? sql`shop_item i`
      : sql`shop_item i`;
  const outerWhere =
    filter.categoryPath !== undefined && !perCategory
      ? sql`where ${where} and i.category_id in (select cc.id from shop_category cc where cc.path like ${`${filter.categoryPath}%`})`
      : perCategory
        ? sql``
        : sql`where ${where}`;

  // The listings run as named prepared statements, one per shape (filters present, sort, page).
  const { rows } = await executePrepared(
    db,
    sql<ListedItem>`
    select i.id, i.sku, i.slug, i.name, i.price::text as price, i.currency, i.stock,
           i.created_at as "createdAt",
           json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) as category,
           (select ${IMAGE_JSON} from shop_item_image m
             where m.item_id = i.id and m.status = 'ready' order by m.position limit 1) as image,
           (${key})::text as k1, i.id::text as k2
      from ${source}
      join shop_category c on c.id = i.category_id
      ${outerWhere}
     order by ${order}
     limit ${limit + 1}`,
  );
  return rows;
}

/** The listing table's copy of each sort key. */
const LISTING_KEYS: Record<Exclude<ItemSort, 'relevance'>, RawBuilder<unknown>> = {
  price: sql`l.price`,
  '-price': sql`l.price`,
  newest: sql`l.created_at`,
  name: sql`l.name`,
};

/** The category's own id: the last one of its materialised path. */
export function categoryIdOfPath(path: string): string {
  const id = path
    .split('/')
    .filter((part) => part !== '')
    .at(-1);
  if (id === undefined) throw new Error(`not a category path: ${path}`);
  return id;
}

/**
 * A category and its subtree, one page: the range of `shop_item_listing` for the category in the
 * sort's order (price bounds and in-stock on the index itself), each row joined to its item and
 * category, stopping at the page size. The same columns and keys as the other listings.
 */
async function listCategoryItems(
  db: AnyDb,
  filter: ItemFilter,
  sort: Exclude<ItemSort, 'relevance'>,
  limit: number,
  after: [string, string] | null,
): Promise<ListedItem[]> {
  const { desc } = SORTS[sort];
  const key = LISTING_KEYS[sort];
  const cmp = sql.raw(desc ? '<' : '>');
  const dir = sql.raw(desc ? 'desc' : 'asc');
  const cast = sort === 'newest' ? sql`timestamptz` : sort === 'name' ? sql`text` : sql`bigint`;
  const conditions: RawBuilder<unknown>[] = [
    sql`l.category_id = ${categoryIdOfPath(filter.categoryPath ?? '')}::uuid`,
    sql`i.active`,
    sql`i.deleted_at is null`,
  ];
  if (filter.minPrice !== undefined) conditions.push(sql`l.price >= ${filter.minPrice}`);
  if (filter.maxPrice !== undefined) conditions.push(sql`l.price <= ${filter.maxPrice}`);
  if (filter.inStock === true) conditions.push(sql`l.in_stock`);
  if (filter.inStock === false) conditions.push(sql`not l.in_stock`);
  if (filter.currency !== undefined) conditions.push(sql`i.currency = ${filter.currency}`);
  if (filter.q !== undefined)
    conditions.push(sql`i.search @@ websearch_to_tsquery('english', ${filter.q})`);
  if (filter.attributes !== undefined)
    conditions.push(sql`i.attributes @> ${JSON.stringify(filter.attributes)}::jsonb`);
  if (after)
    conditions.push(sql`(${key}, l.item_id) ${cmp} (${after[0]}::${cast}, ${after[1]}::uuid)`);
  const { rows } = await executePrepared(
    db,
    sql<ListedItem>`
    select i.id, i.sku, i.slug, i.name, i.price::text as price, i.currency, i.stock,
           i.created_at as "createdAt",
           json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) as category,
           (select ${IMAGE_JSON} from shop_item_image m
             where m.item_id = i.id and m.status = 'ready' order by m.position limit 1) as image,
           (${key})::text as k1, i.id::text as k2
      from shop_item_listing l
      join shop_item i on i.id = l.item_id
      join shop_category c on c.id = i.category_id
     where ${sql.join(conditions, sql` and `)}
     order by ${key} ${dir}, l.item_id ${dir}
     limit ${limit + 1}`,
  );
  return rows;
}

export type CatalogDb = Kysely<unknown>;
