// The listing table (migration 202612080500: one row per listed item and per category it shows
// under, its own and each ancestor) stays right through every write: an item created, edited
// (price, name, category, active, stock crossing zero), deleted; a category moved with its
// subtree (in the move's own transaction); a category deleted with its items moved. After each
// step the table equals what the categories' paths and the items say, and a subtree's page is
// the same as a plain query over the tree.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { CategoryRow } from '../../src/apps/shop/catalog.repository.ts';
import { moveSubtree } from '../../src/apps/shop/catalog.repository.ts';
import { withTransaction } from '../../src/platform/db/index.ts';
import { category, item, startShop, type ShopHarness } from '../helpers/shop.ts';

let h: ShopHarness;
before(async () => {
  h = await startShop();
});
after(async () => {
  await h?.close();
});

/** Listing rows that differ from what the tree and the items say: none when it is right. */
async function drift(): Promise<unknown[]> {
  return h.sql(`
    with expected as (
      select i.id as item_id, a as category_id, i.price, i.created_at, i.name, i.stock > 0 as in_stock
        from shop_item i join shop_category c on c.id = i.category_id,
             unnest(string_to_array(trim(both '/' from c.path), '/')::uuid[]) a
       where i.active and i.deleted_at is null)
    (select 'missing' as what, * from expected except select 'missing', * from (
       select item_id, category_id, price, created_at, name, in_stock from shop_item_listing) l)
    union all
    (select 'extra', * from (
       select item_id, category_id, price, created_at, name, in_stock from shop_item_listing) l
     except select 'extra', * from expected)`);
}

interface Listed {
  id: string;
  price: number;
  inStock: boolean;
}

async function page(query: string): Promise<Listed[]> {
  const res = await h.call('GET', `/items?${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ items: Listed[] }>().items;
}

/** The subtree's listed items by price, from the tree itself (no listing table). */
async function expectedPage(slug: string, extra = ''): Promise<string[]> {
  const rows = await h.sql<{ id: string }>(
    `select i.id from shop_item i
      where i.active and i.deleted_at is null ${extra} and i.category_id in (
        select id from shop_category
         where path like (select path from shop_category where slug = $1) || '%')
      order by i.price, i.id limit 50`,
    [slug],
  );
  return rows.map((r) => r.id);
}

const ids = async (query: string) => (await page(query)).map((i) => i.id);

describe('shop: the listing table follows every write', () => {
  test('items: created, edited, sold out and restocked, deactivated, moved, deleted', async () => {
    const root = await category(h, { name: 'Listing root' });
    const mid = await category(h, { parentId: root.id });
    const leaf = await category(h, { parentId: mid.id });
    const other = await category(h);
    const a = await item(h, { categoryId: leaf.id, price: 300, stock: 1 });
    const b = await item(h, { categoryId: mid.id, price: 200 });
    const c = await item(h, { categoryId: leaf.id, price: 100 });
    assert.deepEqual(await drift(), []);
    // Every level shows what lies under it, by price.
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [c.id, b.id, a.id]);
    assert.deepEqual(await ids(`category=${mid.slug}&sort=price`), [c.id, b.id, a.id]);
    assert.deepEqual(await ids(`category=${leaf.slug}&sort=price`), [c.id, a.id]);

    const patch = async (id: string, body: Record<string, unknown>) => {
      const res = await h.call('PATCH', `/items/${id}`, h.admin, body);
      assert.equal(res.statusCode, 200, res.body);
    };
    // A new price reorders; a new name and category follow.
    await patch(a.id, { price: 50 });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [a.id, c.id, b.id]);
    await patch(c.id, { name: 'Aardvark first' });
    assert.equal((await ids(`category=${root.slug}&sort=name`))[0], c.id);
    await patch(b.id, { categoryId: other.id });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [a.id, c.id]);
    assert.deepEqual(await ids(`category=${other.slug}&sort=price`), [b.id]);
    assert.deepEqual(await drift(), []);

    // Stock crossing zero: out of `inStock=true`, in `inStock=false`, and back.
    await patch(a.id, { stock: 0 });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price&inStock=true`), [c.id]);
    assert.deepEqual(await ids(`category=${root.slug}&sort=price&inStock=false`), [a.id]);
    await patch(a.id, { stock: 4 });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price&inStock=true`), [a.id, c.id]);

    // Deactivated and deleted items leave every level; reactivated ones come back.
    await patch(c.id, { active: false });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [a.id]);
    await patch(c.id, { active: true });
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [a.id, c.id]);
    const deleted = await h.call('DELETE', `/items/${a.id}`, h.admin);
    assert.equal(deleted.statusCode, 204, deleted.body);
    assert.deepEqual(await ids(`category=${root.slug}&sort=price`), [c.id]);
    assert.deepEqual(await drift(), []);
  });

  test('a category moved with its subtree: its items list under the new ancestors only', async () => {
    const oldRoot = await category(h, { name: 'Old root' });
    const newRoot = await category(h, { name: 'New root' });
    const moving = await category(h, { parentId: oldRoot.id });
    const below = await category(h, { parentId: moving.id });
    const stays = await item(h, { categoryId: oldRoot.id, price: 10 });
    const x = await item(h, { categoryId: moving.id, price: 20 });
    const y = await item(h, { categoryId: below.id, price: 30 });
    assert.deepEqual(await ids(`category=${oldRoot.slug}&sort=price`), [stays.id, x.id, y.id]);

    const moved = await h.call('PATCH', `/categories/${moving.id}`, h.admin, {
      parentId: newRoot.id,
    });
    assert.equal(moved.statusCode, 200, moved.body);
    assert.deepEqual(await ids(`category=${oldRoot.slug}&sort=price`), [stays.id]);
    assert.deepEqual(await ids(`category=${newRoot.slug}&sort=price`), [x.id, y.id]);
    assert.deepEqual(await ids(`category=${below.slug}&sort=price`), [y.id]);
    assert.deepEqual(
      await ids(`category=${newRoot.slug}&sort=price`),
      await expectedPage(newRoot.slug),
    );
    assert.deepEqual(await drift(), []);

    // And made a root of its own.
    const rooted = await h.call('PATCH', `/categories/${moving.id}`, h.admin, { parentId: null });
    assert.equal(rooted.statusCode, 200, rooted.body);
    assert.deepEqual(await ids(`category=${newRoot.slug}&sort=price`), []);
    assert.deepEqual(await ids(`category=${moving.slug}&sort=price`), [x.id, y.id]);
    assert.deepEqual(await drift(), []);
  });

  test('the move and the listing change in one transaction: a rolled-back move leaves both', async () => {
    const from = await category(h);
    const to = await category(h);
    const moving = await category(h, { parentId: from.id });
    const it = await item(h, { categoryId: moving.id, price: 70 });
    const listedUnder = async () =>
      (
        await h.sql<{ category_id: string }>(
          `select category_id from shop_item_listing where item_id = $1 order by category_id`,
          [it.id],
        )
      ).map((r) => r.category_id);
    const [row] = await h.sql<CategoryRow>(
      `select id, parent_id as "parentId", slug, name, description, path, depth, position
         from shop_category where id = $1`,
      [moving.id],
    );
    const [target] = await h.sql<CategoryRow>(
      `select id, parent_id as "parentId", slug, name, description, path, depth, position
         from shop_category where id = $1`,
      [to.id],
    );
    assert.ok(row && target);
    const rollback = new Error('rollback');
    await assert.rejects(
      withTransaction(h.tdb.database.db, async (trx) => {
        await moveSubtree(trx, row, target);
        // Inside the transaction: already listed under the new ancestors.
        const { rows } = await sql<{ category_id: string }>`
          select category_id from shop_item_listing where item_id = ${it.id}
           order by category_id`.execute(trx);
        assert.deepEqual(
          rows.map((r) => r.category_id),
          [moving.id, to.id].sort(),
        );
        throw rollback;
      }),
      (error) => error === rollback,
    );
    assert.deepEqual(await listedUnder(), [from.id, moving.id].sort());
    assert.deepEqual(await drift(), []);
  });

  test('a category deleted with its items moved: they list under the target', async () => {
    const gone = await category(h);
    const child = await category(h, { parentId: gone.id });
    const target = await category(h);
    const p = await item(h, { categoryId: gone.id, price: 5 });
    const q = await item(h, { categoryId: child.id, price: 6 });
    const res = await h.call('DELETE', `/categories/${gone.id}?moveItemsTo=${target.id}`, h.admin);
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual(await ids(`category=${target.slug}&sort=price`), [p.id, q.id]);
    assert.deepEqual(await drift(), []);
  });

  test('keyset pages over a subtree: every item once, in order, each page one index range', async () => {
    const root = await category(h);
    const leaves = [
      await category(h, { parentId: root.id }),
      await category(h, { parentId: root.id }),
    ];
    for (let n = 0; n < 9; n++)
      await item(h, {
        categoryId: (leaves[n % 2] ?? root).id,
        price: 100 + (n % 4) * 10,
        stock: n % 3,
      });
    for (const [sort, extra] of [
      ['price', ''],
      ['-price', ''],
      ['newest', ''],
      ['name', ''],
      ['price&inStock=true&minPrice=110', 'and i.stock > 0 and i.price >= 110'],
    ] as const) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await h.call(
          'GET',
          `/items?category=${root.slug}&sort=${sort}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json<{ items: Listed[]; page: { nextCursor: string | null } }>();
        seen.push(...body.items.map((i) => i.id));
        cursor = body.page.nextCursor;
      } while (cursor);
      assert.equal(new Set(seen).size, seen.length, sort);
      assert.deepEqual(seen, await ids(`category=${root.slug}&sort=${sort}&limit=50`), sort);
      if (sort === 'price' || extra !== '')
        assert.deepEqual(seen, await expectedPage(root.slug, extra), sort);
    }
  });
});
