// The shop's listings on a catalog large enough for the planner to choose (40,000 items in 400
// categories, 20,000 orders): EXPLAIN of the very statements the routes send asserts the index
// each listing and filter is meant to use, and no sequential scan of items or orders. Also the
// migrations' down, and the low-stock event.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rollback } from '../../src/platform/db/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import {
  ADDRESS,
  category,
  countStatements,
  idempotencyKey,
  item,
  startShop,
  type ShopHarness,
} from '../helpers/shop.ts';

let h: ShopHarness;
let customerId: string;
let customerHeaders: Record<string, string>;

before(async () => {
  h = await startShop({ SHOP_LOW_STOCK_THRESHOLD: '3' });
  // A customer with orders, made through the API so the profile exists.
  const c = await h.customer();
  customerHeaders = c.headers;
  customerId = (await h.call('GET', '/customers/me', c.headers)).json<{ id: string }>().id;
  // 20 roots × 20 children = 400 leaves; 100 items each. Generated in SQL.
  await h.sql(`
    with r as (select gen_random_uuid() as id, g from generate_series(1, 20) g)
    insert into shop_category (id, parent_id, slug, name, path, depth)
    select r.id, null, 'plan-root-' || r.g, 'Root ' || r.g, '/' || r.id || '/', 0 from r`);
  await h.sql(`
    with x as (
      select gen_random_uuid() as id, p.id as parent, p.slug, p.name, p.path, g
        from shop_category p, generate_series(1, 20) g where p.slug like 'plan-root-%')
    insert into shop_category (id, parent_id, slug, name, path, depth)
    select x.id, x.parent, x.slug || '-' || x.g, x.name || '.' || x.g, x.path || x.id || '/', 1 from x`);
  await h.sql(`
    insert into shop_item (id, sku, slug, name, description, price, currency, stock, category_id, attributes, created_at)
    select gen_random_uuid(), 'PLAN-' || c.slug || '-' || g, 'plan-' || c.slug || '-' || g,
           'Thing ' || g || ' ' || md5(c.slug || g), 'generated', (g * 37 % 10000) + 1, 'EUR', g % 7,
           c.id, jsonb_build_object('color', (array['red','blue','green'])[g % 3 + 1], 'n', g),
           now() - (g || ' minutes')::interval
      from shop_category c, generate_series(1, 100) g where c.depth = 1`);
  await h.sql(
    `update shop_item set attributes = attributes || '{"edition":"rare"}' where sku like 'PLAN-plan-root-3-%-7'`,
  );
  await h.sql(
    `update shop_item set name = name || ' zeppelin' where sku like 'PLAN-plan-root-4-%-9'`,
  );
  const [one] = await h.sql<{ id: string }>(`select id from shop_item limit 1`);
  await h.sql(
    `
    insert into shop_order (id, customer_id, user_id, status, currency, subtotal, shipping, tax, total, line_count, shipping_address, created_at)
    select gen_random_uuid(), $1, gen_random_uuid(), (array['pending','paid','shipped','delivered','cancelled','refunded'])[g % 6 + 1],
           'EUR', g, 0, 0, g, 1, '{}'::jsonb, now() - (g || ' seconds')::interval
      from generate_series(1, 20000) g`,
    [customerId],
  );
  void one;
  // Other customers own most orders: the customer's own listing must not read them all.
  await h.sql(
    `insert into shop_customer (id, user_id) select gen_random_uuid(), gen_random_uuid() from generate_series(1, 50)`,
  );
  await h.sql(
    `
    update shop_order set customer_id = c.id
      from (select id, row_number() over () as n from shop_customer where id <> $1) c
     where (hashtext(shop_order.id::text) % 50 + 50) % 50 + 1 = c.n`,
    [customerId],
  );
  await h.sql(`analyze shop_category; analyze shop_item; analyze shop_order`);
});
after(async () => {
  await h?.close();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function walk(node: PlanNode, out: PlanNode[] = []): PlanNode[] {
  out.push(node);
  for (const child of node.Plans ?? []) walk(child, out);
  return out;
}

/** The plan of the one shop statement a request sends. */
async function planOf(method: 'GET', path: string, headers: Record<string, string> = {}) {
  const { queries, result } = await countStatements(
    () => h.call(method, path, headers),
    /shop_(item|order)\b/,
  );
  assert.equal(result.statusCode, 200, result.body);
  const page = queries.at(-1);
  assert.ok(page, 'a statement was sent');
  const [row] = await h.sql<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
    `explain (format json) ${page.text}`,
    page.values,
  );
  return walk(row?.['QUERY PLAN'][0]?.Plan as PlanNode);
}

function assertIndex(nodes: PlanNode[], index: string, label: string): void {
  const indexes = nodes.map((n) => n['Index Name']).filter(Boolean);
  assert.ok(
    indexes.includes(index),
    `${label}: ${index} not in ${JSON.stringify(nodes.map((n) => [n['Node Type'], n['Relation Name'], n['Index Name']]))}`,
  );
  const seq = nodes.filter(
    (n) =>
      n['Node Type'] === 'Seq Scan' &&
      ['shop_item', 'shop_order'].includes(n['Relation Name'] ?? ''),
  );
  assert.deepEqual(seq, [], `${label}: a sequential scan of ${seq[0]?.['Relation Name']}`);
}

describe('shop: every listing and filter uses its index (EXPLAIN)', () => {
  test('items by category (with descendants) and price, newest, name; over the whole catalog; filters', async () => {
    const cases: [string, string][] = [
      // A category with its subtree: one range of the listing table (migration 202612080500).
      ['category=plan-root-2&sort=price', 'shop_item_listing_price_idx'],
      [
        'category=plan-root-2&sort=-price&minPrice=100&maxPrice=5000&inStock=true',
        'shop_item_listing_price_idx',
      ],
      ['category=plan-root-2-3&sort=newest', 'shop_item_listing_new_idx'],
      ['category=plan-root-2&sort=name', 'shop_item_listing_name_idx'],
      ['sort=price', 'shop_item_price_idx'],
      ['sort=newest', 'shop_item_new_idx'],
      ['sort=name', 'shop_item_name_idx'],
      ['q=zeppelin', 'shop_item_search_idx'],
      [`attributes=${encodeURIComponent('{"edition":"rare"}')}`, 'shop_item_attributes_idx'],
    ];
    for (const [query, index] of cases)
      assertIndex(await planOf('GET', `/items?${query}`), index, query);
  });

  test('an item by slug; orders by customer and date; admin orders by date, status, total', async () => {
    assertIndex(
      await planOf('GET', '/items/plan-plan-root-1-1-5'),
      'shop_item_slug_key',
      'item by slug',
    );
    assertIndex(
      await planOf('GET', '/orders?limit=20', customerHeaders),
      'shop_order_customer_idx',
      'my orders',
    );
    assertIndex(
      await planOf('GET', '/admin/orders', h.admin),
      'shop_order_created_idx',
      'admin by date',
    );
    assertIndex(
      await planOf('GET', '/admin/orders?status=refunded', h.admin),
      'shop_order_status_idx',
      'admin by status',
    );
    assertIndex(
      await planOf('GET', '/admin/orders?sort=total&total[gte]=19990', h.admin),
      'shop_order_total_idx',
      'admin by total',
    );
    assertIndex(
      await planOf('GET', `/admin/orders?customerId=${customerId}`, h.admin),
      'shop_order_customer_idx',
      'admin by customer',
    );
  });

  test('a page of a top category is one index range of the listing, in order, one statement', async () => {
    const { statements, result } = await countStatements(() =>
      h.call('GET', '/items?category=plan-root-5&sort=price&limit=20'),
    );
    assert.equal(result.statusCode, 200);
    assert.equal(statements.filter((s) => /shop_item/.test(s)).length, 1);
    const prices = result.json<{ items: { price: number }[] }>().items.map((i) => i.price);
    assert.deepEqual(
      prices,
      [...prices].sort((a, b) => a - b),
    );
    // The cheapest items of the subtree, checked against a plain query.
    const expected = await h.sql<{ price: string }>(
      `select price from shop_item where active and deleted_at is null and category_id in
         (select id from shop_category where path like (select path from shop_category where slug = 'plan-root-5') || '%')
       order by price, id limit 20`,
    );
    assert.deepEqual(
      prices,
      expected.map((r) => Number(r.price)),
    );
  });
});

describe('shop: low stock', () => {
  test('an order leaving an item at the threshold publishes shop.item.low_stock once', async () => {
    const cat = await category(h);
    const it = await item(h, { categoryId: cat.id, stock: 5 });
    const order = (quantity: number) =>
      h.call(
        'POST',
        '/orders',
        { ...customerHeaders, ...idempotencyKey() },
        {
          lines: [{ itemId: it.id, quantity }],
          shippingAddress: ADDRESS,
        },
      );
    assert.equal((await order(1)).statusCode, 201); // 4 left: above 3
    assert.equal((await order(1)).statusCode, 201); // 3 left: at the threshold
    assert.equal((await order(1)).statusCode, 201); // 2 left: already low
    const events = await h.sql<{ data: { stock: number; threshold: number } }>(
      `select data from gw_event where type = 'shop.item.low_stock' and subject_id = $1`,
      [it.id],
    );
    assert.deepEqual(
      events.map((e) => [e.data.stock, e.data.threshold]),
      [[3, 3]],
    );
  });
});

describe('shop: migrations', () => {
  test('down removes every shop table', async () => {
    const migrations = allMigrations([h.shop]);
    const tdb = await createTestDatabase({ migrations });
    try {
      const names = Object.keys(migrations).sort();
      const later = names.slice(names.indexOf('202612071100_shop_catalog'));
      await rollback(tdb.database.db, migrations, later.length);
      const { rows } = await tdb.database.pool.query<{ n: number }>(
        `select count(*)::int as n from pg_tables where tablename like 'shop\\_%'`,
      );
      assert.equal(rows[0]?.n, 0);
    } finally {
      await tdb.drop();
    }
  });
});
