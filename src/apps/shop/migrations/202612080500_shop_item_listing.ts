import { sql, type Kysely } from 'kysely';

/**
 * The listing of a category with all its descendants as one index range (issue 18 (c): a top
 * category's page merged one index range per leaf, 100 of them, tens of milliseconds).
 *
 * `shop_item_listing` holds one row per listed item (active, not deleted) and per category it is
 * shown under: its own category and each ancestor (the ids of the category's materialised path),
 * with the listing's sort keys copied, so "category X and its subtree, by price from 200.00" is
 * one range of `(category_id, price, item_id)` in order, stopping at the page size. `in_stock` is
 * in the indexes (INCLUDE) so that the in-stock filter skips sold-out items without a heap visit.
 *
 * Triggers keep it right in the transaction that changes the source: an item inserted, or updated
 * in a field the listing copies (category, price, name, creation time, active, deleted, stock
 * crossing zero); a category whose path changes (a move rewrites the subtree's paths in one
 * statement; each moved category's trigger re-lists its own items under the new ancestors). A
 * stock change that stays above zero (every order but the one that sells out) fires nothing.
 * Triggers rather than repository calls: every write path (a move, an item edit, an order, a
 * delete with its items moved) is covered, including ones added later.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table shop_item_listing (
      item_id uuid not null references shop_item (id) on delete cascade,
      -- The item's category or one of its ancestors.
      category_id uuid not null,
      price bigint not null,
      created_at timestamptz not null,
      name text not null,
      in_stock boolean not null,
      primary key (item_id, category_id)
    )`.execute(db);

  // The ancestors-or-self of a category, from its path ('/<root>/.../<own id>/').
  const ancestors = (path: string) =>
    sql.raw(`unnest(string_to_array(trim(both '/' from ${path}), '/')::uuid[])`);

  // Inserts: once per statement, over the inserted rows (a bulk insert is one set-based insert).
  await sql`
    create function shop_item_listing_insert() returns trigger language plpgsql as $$
    begin
      insert into shop_item_listing (item_id, category_id, price, created_at, name, in_stock)
      select n.id, a, n.price, n.created_at, n.name, n.stock > 0
        from new_items n join shop_category c on c.id = n.category_id, ${ancestors('c.path')} a
       where n.active and n.deleted_at is null;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger shop_item_listing_insert after insert on shop_item
      referencing new table as new_items
      for each statement execute function shop_item_listing_insert()`.execute(db);

  // Updates: per row, and only when a copied field changed (the WHEN clause is evaluated without
  // calling the function: an order's stock update that stays above zero costs nothing here).
  await sql`
    create function shop_item_listing_sync() returns trigger language plpgsql as $$
    begin
      delete from shop_item_listing where item_id = old.id;
      if new.active and new.deleted_at is null and new.category_id is not null then
        insert into shop_item_listing (item_id, category_id, price, created_at, name, in_stock)
        select new.id, a, new.price, new.created_at, new.name, new.stock > 0
          from shop_category c, ${ancestors('c.path')} a
         where c.id = new.category_id;
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger shop_item_listing_update
      after update of category_id, price, created_at, name, stock, active, deleted_at on shop_item
      for each row when (
        old.category_id is distinct from new.category_id or old.price <> new.price
        or old.created_at <> new.created_at or old.name <> new.name
        or (old.stock > 0) <> (new.stock > 0) or old.active <> new.active
        or old.deleted_at is distinct from new.deleted_at)
      execute function shop_item_listing_sync()`.execute(db);

  await sql`
    create function shop_category_listing_sync() returns trigger language plpgsql as $$
    begin
      -- The category's items first, in id order (as orders lock them: no deadlock between the
      -- two): an item written meanwhile then re-lists itself after this, from the new path.
      perform 1 from shop_item where category_id = new.id order by id for update;
      delete from shop_item_listing l using shop_item i
       where i.category_id = new.id and l.item_id = i.id;
      insert into shop_item_listing (item_id, category_id, price, created_at, name, in_stock)
      select i.id, a, i.price, i.created_at, i.name, i.stock > 0
        from shop_item i, ${ancestors('new.path')} a
       where i.category_id = new.id and i.active and i.deleted_at is null;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger shop_category_listing_move after update of path on shop_category
      for each row when (old.path <> new.path)
      execute function shop_category_listing_sync()`.execute(db);

  // What exists already (a deployment upgrading): one statement.
  await sql`
    insert into shop_item_listing (item_id, category_id, price, created_at, name, in_stock)
    select i.id, a, i.price, i.created_at, i.name, i.stock > 0
      from shop_item i join shop_category c on c.id = i.category_id,
           ${ancestors('c.path')} a
     where i.active and i.deleted_at is null`.execute(db);

  for (const [name, cols] of [
    ['price', 'category_id, price, item_id'],
    ['new', 'category_id, created_at desc, item_id desc'],
    ['name', 'category_id, name, item_id'],
  ] as const)
    await sql`create index ${sql.id(`shop_item_listing_${name}_idx`)} on shop_item_listing (${sql.raw(cols)}) include (in_stock)`.execute(
      db,
    );
  await sql`analyze shop_item_listing`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists shop_category_listing_move on shop_category`.execute(db);
  await sql`drop trigger if exists shop_item_listing_update on shop_item`.execute(db);
  await sql`drop trigger if exists shop_item_listing_insert on shop_item`.execute(db);
  await sql`drop function if exists shop_category_listing_sync()`.execute(db);
  await sql`drop function if exists shop_item_listing_sync()`.execute(db);
  await sql`drop function if exists shop_item_listing_insert()`.execute(db);
  await sql`drop table if exists shop_item_listing`.execute(db);
}
