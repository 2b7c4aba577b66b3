import { sql, type Kysely } from 'kysely';

/** Categories (a tree with a materialised path), items, their images. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table shop_category (
      id uuid primary key,
      parent_id uuid references shop_category (id),
      slug text not null unique,
      name text not null,
      description text not null default '',
      -- '/<root id>/<child id>/.../<own id>/': descendants are the paths that start with it.
      path text not null,
      depth integer not null,
      position integer not null default 0,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  // text_pattern_ops: a prefix LIKE ('/a/b/%') is an index range whatever the collation.
  await sql`create index shop_category_path_idx on shop_category (path text_pattern_ops)`.execute(
    db,
  );
  await sql`create index shop_category_parent_idx on shop_category (parent_id, position, name)`.execute(
    db,
  );
  await sql`create trigger shop_category_set_updated_at before update on shop_category for each row execute function gw_set_updated_at()`.execute(
    db,
  );

  await sql`
    create table shop_item (
      id uuid primary key,
      sku text not null,
      slug text not null,
      name text not null,
      description text not null default '',
      price bigint not null check (price >= 0 and price <= 1000000000000),
      currency char(3) not null,
      stock integer not null check (stock >= 0),
      -- Null only for deleted items whose category was deleted since (live items block that).
      category_id uuid references shop_category (id) on delete set null,
      attributes jsonb not null default '{}',
      active boolean not null default true,
      -- Bumped by every change of what GET /items/:slug shows: the ETag and If-Match token.
      version integer not null default 1,
      search tsvector generated always as (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', sku), 'A') ||
        setweight(to_tsvector('english', description), 'B')
      ) stored,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz
    )`.execute(db);
  await sql`create unique index shop_item_sku_key on shop_item (sku) where deleted_at is null`.execute(
    db,
  );
  await sql`create unique index shop_item_slug_key on shop_item (slug) where deleted_at is null`.execute(
    db,
  );
  // The listing's orders, by category (each category of a subtree is one index range, merged)
  // and over the whole catalog; only listed rows are indexed.
  for (const [name, cols] of [
    ['cat_price', 'category_id, price, id'],
    ['cat_new', 'category_id, created_at desc, id desc'],
    ['cat_name', 'category_id, name, id'],
    ['price', 'price, id'],
    ['new', 'created_at desc, id desc'],
    ['name', 'name, id'],
  ] as const) {
    await sql`create index ${sql.id(`shop_item_${name}_idx`)} on shop_item (${sql.raw(cols)}) where active and deleted_at is null`.execute(
      db,
    );
  }
  // Moving or emptying a category finds its items, listed or not.
  await sql`create index shop_item_category_idx on shop_item (category_id)`.execute(db);
  await sql`create index shop_item_search_idx on shop_item using gin (search)`.execute(db);
  await sql`create index shop_item_attributes_idx on shop_item using gin (attributes jsonb_path_ops)`.execute(
    db,
  );
  await sql`create trigger shop_item_set_updated_at before update on shop_item for each row execute function gw_set_updated_at()`.execute(
    db,
  );

  // The files area owns the files; this is the shop's copy of what an item shows of each, kept
  // current by the file.ready/file.failed subscriber, so that a listing reads it in its one query.
  await sql`
    create table shop_item_image (
      item_id uuid not null references shop_item (id) on delete cascade,
      position integer not null,
      file_id uuid not null,
      status text not null default 'processing',
      width integer,
      height integer,
      blurhash text,
      path text,
      variants jsonb not null default '[]',
      primary key (item_id, position)
    )`.execute(db);
  await sql`create index shop_item_image_file_idx on shop_item_image (file_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table shop_item_image`.execute(db);
  await sql`drop table shop_item`.execute(db);
  await sql`drop table shop_category`.execute(db);
}
