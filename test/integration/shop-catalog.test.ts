// The shop's catalog through HTTP: the category tree (moves, cycles, deletes), items (validation,
// optimistic concurrency, images), the listing (filters, descendants, sorts, keyset pages, one
// statement per page, index use) and caching (ETag, 304, invalidation).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  category,
  countStatements,
  item,
  startShop,
  uniq,
  type ShopHarness,
} from '../helpers/shop.ts';
import { multipart, png } from '../fixtures/files/samples.ts';

let h: ShopHarness;
before(async () => {
  h = await startShop();
});
after(async () => {
  await h?.close();
});

interface Page<T> {
  items: T[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
}
interface Listed {
  id: string;
  slug: string;
  name: string;
  price: number;
  inStock: boolean;
  category: { id: string; slug: string; name: string };
  image: { fileId: string; status: string; variants: { path: string }[] } | null;
}

describe('shop: permissions', () => {
  test('catalog writes need shop:manage: 401 anonymous, 403 for a customer; reads are public', async () => {
    const { headers } = await h.customer();
    const body = { slug: uniq('perm'), name: 'x' };
    assertProblem(await h.call('POST', '/categories', {}, body), 401, 'UNAUTHORIZED');
    assertProblem(await h.call('POST', '/categories', headers, body), 403, 'FORBIDDEN');
    assert.equal((await h.call('GET', '/categories')).statusCode, 200);
    assert.equal((await h.call('GET', '/items')).statusCode, 200);
    // admin got both permissions by default, nobody else did.
    const roles = await h.sql<{ name: string }>(
      `select name from gw_role where 'shop:manage' = any(permissions) and 'orders:manage' = any(permissions)`,
    );
    assert.deepEqual(
      roles.map((r) => r.name),
      ['admin'],
    );
  });
});

describe('shop: the category tree', () => {
  test('nested and flat trees; a subtree moves whole; a category under its own grandchild is a 409 cycle', async () => {
    const a = await category(h, { name: 'A' });
    const b = await category(h, { name: 'B', parentId: a.id });
    const c = await category(h, { name: 'C', parentId: b.id });
    const other = await category(h, { name: 'Other' });
    // A under its grandchild C, and under itself: cycles.
    const cycle = assertProblem(
      await h.call('PATCH', `/categories/${a.id}`, h.admin, { parentId: c.id }),
      409,
      'CATEGORY_CYCLE',
    );
    assert.match(cycle.detail, /descendants/);
    assertProblem(
      await h.call('PATCH', `/categories/${a.id}`, h.admin, { parentId: a.id }),
      409,
      'CATEGORY_CYCLE',
    );
    // Move B (with C) under Other: depths and paths follow.
    const moved = await h.call('PATCH', `/categories/${b.id}`, h.admin, { parentId: other.id });
    assert.equal(moved.statusCode, 200, moved.body);
    const rows = await h.sql<{ id: string; path: string; depth: number; parent_id: string }>(
      `select id, path, depth, parent_id from shop_category where id = any($1) order by depth`,
      [[b.id, c.id]],
    );
    assert.deepEqual(
      rows.map((r) => [r.id, r.path, r.depth]),
      [
        [b.id, `/${other.id}/${b.id}/`, 1],
        [c.id, `/${other.id}/${b.id}/${c.id}/`, 2],
      ],
    );
    const nested = await h.call('GET', '/categories');
    assert.equal(nested.statusCode, 200);
    type Node = { id: string; children: Node[] };
    const root = nested.json<{ items: Node[] }>().items.find((n) => n.id === other.id);
    assert.equal(root?.children[0]?.id, b.id);
    assert.equal(root?.children[0]?.children[0]?.id, c.id);
    const flat = (await h.call('GET', '/categories?shape=flat')).json<{
      items: { id: string }[];
    }>();
    const ids = flat.items.map((i) => i.id);
    assert.ok(ids.indexOf(other.id) < ids.indexOf(b.id) && ids.indexOf(b.id) < ids.indexOf(c.id));
    // And back to the root.
    assert.equal(
      (await h.call('PATCH', `/categories/${b.id}`, h.admin, { parentId: null })).statusCode,
      200,
    );
    const [cRow] = await h.sql<{ path: string; depth: number }>(
      `select path, depth from shop_category where id = $1`,
      [c.id],
    );
    assert.deepEqual(cRow, { path: `/${b.id}/${c.id}/`, depth: 1 });
  });

  test('two opposite moves at once (A under B, B under A) cannot both pass: one is a 409 cycle, no loop is stored', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await category(h);
      const b = await category(h);
      const [x, y] = await Promise.all([
        h.call('PATCH', `/categories/${a.id}`, h.admin, { parentId: b.id }),
        h.call('PATCH', `/categories/${b.id}`, h.admin, { parentId: a.id }),
      ]);
      assert.deepEqual([x.statusCode, y.statusCode].sort(), [200, 409]);
      const rows = await h.sql<{ id: string; parent_id: string | null }>(
        `select id, parent_id from shop_category where id = any($1)`,
        [[a.id, b.id]],
      );
      assert.equal(rows.filter((r) => r.parent_id === null).length, 1, 'one of them is a root');
    }
  });

  test('a non-empty category is not deleted (409) unless its items move; then its whole subtree goes', async () => {
    const top = await category(h);
    const child = await category(h, { parentId: top.id });
    const target = await category(h);
    const it = await item(h, { categoryId: child.id });
    assertProblem(
      await h.call('DELETE', `/categories/${top.id}`, h.admin),
      409,
      'CATEGORY_NOT_EMPTY',
    );
    assertProblem(
      await h.call('DELETE', `/categories/${child.id}`, h.admin),
      409,
      'CATEGORY_NOT_EMPTY',
    );
    // Into its own subtree: refused.
    assertProblem(
      await h.call('DELETE', `/categories/${top.id}?moveItemsTo=${child.id}`, h.admin),
      409,
      'CATEGORY_CYCLE',
    );
    const res = await h.call('DELETE', `/categories/${top.id}?moveItemsTo=${target.id}`, h.admin);
    assert.equal(res.statusCode, 204, res.body);
    const [row] = await h.sql<{ category_id: string }>(
      `select category_id from shop_item where id = $1`,
      [it.id],
    );
    assert.equal(row?.category_id, target.id);
    assert.equal(
      (await h.sql(`select 1 from shop_category where id = any($1)`, [[top.id, child.id]])).length,
      0,
    );
    // An empty one goes at once; a second delete is a 404.
    const empty = await category(h);
    assert.equal((await h.call('DELETE', `/categories/${empty.id}`, h.admin)).statusCode, 204);
    assertProblem(
      await h.call('DELETE', `/categories/${empty.id}`, h.admin),
      404,
      'SHOP_NOT_FOUND',
    );
  });

  test('bad input: duplicate slug 409, unknown parent 404, bad slug 422', async () => {
    const a = await category(h);
    assertProblem(
      await h.call('POST', '/categories', h.admin, { slug: a.slug, name: 'dup' }),
      409,
      'DUPLICATE_SLUG',
    );
    assertProblem(
      await h.call('POST', '/categories', h.admin, {
        slug: uniq('orphan'),
        name: 'o',
        parentId: '0190a5c4-7b7e-7000-8000-000000000000',
      }),
      404,
      'SHOP_NOT_FOUND',
    );
    assertProblem(
      await h.call('POST', '/categories', h.admin, { slug: 'Not A Slug', name: 'x' }),
      422,
      'VALIDATION_FAILED',
    );
  });

  test('the tree is cached and a change shows at once (tag invalidation); GET answers 304 to its ETag', async () => {
    const first = await h.call('GET', '/categories');
    const etag = first.headers.etag as string;
    assert.ok(etag);
    const again = await h.call('GET', '/categories', { 'if-none-match': etag });
    assert.equal(again.statusCode, 304);
    const made = await category(h, { name: 'Fresh' });
    const after = await h.call('GET', '/categories', { 'if-none-match': etag });
    assert.equal(after.statusCode, 200);
    assert.ok(after.json<{ items: { id: string }[] }>().items.some((c) => c.id === made.id));
  });
});

describe('shop: items', () => {
  test('bad prices, currencies, attributes: 422 and nothing stored', async () => {
    const cat = await category(h);
    const base = {
      sku: uniq('BAD').toUpperCase(),
      slug: uniq('bad'),
      name: 'Bad',
      price: 100,
      currency: 'EUR',
      stock: 1,
      categoryId: cat.id,
    };
    const before = (await h.sql(`select 1 from shop_item`)).length;
    for (const price of [-1, 1e20, 1.5, 1_000_000_000_001])
      assertProblem(
        await h.call('POST', '/items', h.admin, { ...base, price }),
        422,
        'VALIDATION_FAILED',
      );
    for (const currency of ['eur', 'EURO', 'E1R'])
      assertProblem(
        await h.call('POST', '/items', h.admin, { ...base, currency }),
        422,
        'VALIDATION_FAILED',
      );
    // Well-formed but not ISO 4217.
    assertProblem(
      await h.call('POST', '/items', h.admin, { ...base, currency: 'XYZ' }),
      422,
      'INVALID_CURRENCY',
    );
    // 100 levels deep.
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    assertProblem(
      await h.call('POST', '/items', h.admin, { ...base, attributes: deep }),
      422,
      'INVALID_ATTRIBUTES',
    );
    // 1 MB of JSON: refused before parsing (413) or by the attributes limit (422), never stored.
    const big = await h.call('POST', '/items', h.admin, {
      ...base,
      attributes: { blob: 'x'.repeat(1024 * 1024) },
    });
    assert.ok([413, 422].includes(big.statusCode), big.body);
    const tooLarge = await h.call('POST', '/items', h.admin, {
      ...base,
      attributes: { blob: 'x'.repeat(20_000) },
    });
    assertProblem(tooLarge, 422, 'INVALID_ATTRIBUTES');
    assertProblem(
      await h.call('POST', '/items', h.admin, { ...base, stock: -1 }),
      422,
      'VALIDATION_FAILED',
    );
    assert.equal((await h.sql(`select 1 from shop_item`)).length, before);
    // The same SKU twice: 409.
    assert.equal((await h.call('POST', '/items', h.admin, base)).statusCode, 201);
    assertProblem(
      await h.call('POST', '/items', h.admin, { ...base, slug: uniq('other') }),
      409,
      'DUPLICATE_SKU',
    );
  });

  test('two admins editing one item: the stale If-Match gets 412 and writes nothing', async () => {
    const cat = await category(h);
    const it = await item(h, { categoryId: cat.id, price: 500 });
    const read = await h.call('GET', `/admin/items/${it.id}`, h.admin);
    const etag = read.headers.etag as string;
    assert.equal(etag, `"${it.id}.1"`);
    const first = await h.call(
      'PATCH',
      `/items/${it.id}`,
      { ...h.admin, 'if-match': etag },
      { price: 600 },
    );
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.headers.etag, `"${it.id}.2"`);
    const second = await h.call(
      'PATCH',
      `/items/${it.id}`,
      { ...h.admin, 'if-match': etag },
      { price: 700 },
    );
    const problem = assertProblem(second, 412, 'STALE_WRITE');
    assert.equal(second.headers.etag, `"${it.id}.2"`);
    assert.ok(problem.detail);
    const [row] = await h.sql<{ price: string }>(`select price from shop_item where id = $1`, [
      it.id,
    ]);
    assert.equal(row?.price, '600');
    // A stale delete too; the fresh one works.
    assertProblem(
      await h.call('DELETE', `/items/${it.id}`, { ...h.admin, 'if-match': etag }),
      412,
      'STALE_WRITE',
    );
    assert.equal(
      (await h.call('DELETE', `/items/${it.id}`, { ...h.admin, 'if-match': `"${it.id}.2"` }))
        .statusCode,
      204,
    );
    assertProblem(await h.call('GET', `/items/${it.slug}`), 404, 'SHOP_NOT_FOUND');
  });

  test('item details are cached with an ETag: 304 while unchanged, fresh after an edit', async () => {
    const cat = await category(h);
    const it = await item(h, { categoryId: cat.id, price: 250 });
    const first = await h.call('GET', `/items/${it.slug}`);
    assert.equal(first.statusCode, 200);
    const etag = first.headers.etag as string;
    assert.equal(
      (await h.call('GET', `/items/${it.slug}`, { 'if-none-match': etag })).statusCode,
      304,
    );
    await h.call('PATCH', `/items/${it.id}`, h.admin, { price: 275, name: 'Renamed' });
    const after = await h.call('GET', `/items/${it.slug}`, { 'if-none-match': etag });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json<{ price: number; name: string }>().price, 275);
    // Inactive items are not shown.
    await h.call('PATCH', `/items/${it.id}`, h.admin, { active: false });
    assertProblem(await h.call('GET', `/items/${it.slug}`), 404, 'SHOP_NOT_FOUND');
  });
});

describe('shop: the listing', () => {
  let root: { id: string; slug: string };
  let leafA: { id: string; slug: string };
  let leafB: { id: string; slug: string };
  const ids: string[] = [];

  before(async () => {
    root = await category(h, { name: 'Listing root' });
    const mid = await category(h, { parentId: root.id });
    leafA = await category(h, { parentId: mid.id });
    leafB = await category(h, { parentId: root.id });
    const specs = [
      {
        categoryId: leafA.id,
        price: 300,
        stock: 0,
        attributes: { color: 'blue' },
        name: 'Blue teapot',
        description: 'porcelain teapot',
      },
      { categoryId: leafA.id, price: 100, stock: 5, attributes: { color: 'red' }, name: 'Red mug' },
      {
        categoryId: leafB.id,
        price: 200,
        stock: 5,
        attributes: { color: 'blue', size: 'L' },
        name: 'Blue mug',
      },
      { categoryId: leafB.id, price: 400, stock: 5, name: 'Teapot stand', active: false },
      { categoryId: mid.id, price: 150, stock: 2, name: 'Saucer' },
    ];
    for (const s of specs) ids.push((await item(h, s)).id);
  });

  const list = async (query: string) => {
    const res = await h.call('GET', `/items?${query}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json<Page<Listed>>();
  };

  test('category includes its descendants; price range, inStock, q, attributes filter; inactive never listed', async () => {
    const all = await list(`category=${root.slug}&sort=price`);
    assert.deepEqual(
      all.items.map((i) => i.price),
      [100, 150, 200, 300],
    );
    assert.equal(all.items[0]?.category.id, leafA.id);
    assert.deepEqual(
      (await list(`category=${leafA.slug}&sort=-price`)).items.map((i) => i.price),
      [300, 100],
    );
    assert.deepEqual(
      (await list(`category=${root.slug}&sort=price&minPrice=150&maxPrice=300`)).items.map(
        (i) => i.price,
      ),
      [150, 200, 300],
    );
    assert.deepEqual(
      (await list(`category=${root.slug}&sort=price&inStock=true`)).items.map((i) => i.price),
      [100, 150, 200],
    );
    const q = await list(`category=${root.slug}&q=teapot`);
    assert.deepEqual(
      q.items.map((i) => i.name),
      ['Blue teapot'],
    );
    const attrs = await list(
      `category=${root.slug}&sort=price&attributes=${encodeURIComponent('{"color":"blue"}')}`,
    );
    assert.deepEqual(
      attrs.items.map((i) => i.name),
      ['Blue mug', 'Blue teapot'],
    );
    assert.deepEqual((await list(`category=no-such-category`)).items, []);
  });

  test('keyset pages: every item once in each sort, joined by signed cursors', async () => {
    for (const sort of ['price', '-price', 'newest', 'name']) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<Listed> = await list(
          `category=${root.slug}&sort=${sort}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        seen.push(...page.items.map((i) => i.id));
        cursor = page.page.nextCursor;
      } while (cursor);
      assert.equal(seen.length, 4, sort);
      assert.equal(new Set(seen).size, 4, sort);
    }
    // A cursor of another listing shape is refused.
    const page = await list(`category=${root.slug}&sort=price&limit=1`);
    assertProblem(
      await h.call(
        'GET',
        `/items?category=${root.slug}&sort=name&limit=1&cursor=${encodeURIComponent(page.page.nextCursor ?? '')}`,
      ),
      400,
      'INVALID_CURSOR',
    );
  });

  test('bad list queries: 422', async () => {
    for (const q of [
      'limit=0',
      'limit=101',
      'minPrice=-1',
      'maxPrice=100000000000000000000',
      'sort=cheapest',
      'currency=eur',
    ])
      assertProblem(await h.call('GET', `/items?${q}`), 422, 'VALIDATION_FAILED');
    assertProblem(await h.call('GET', '/items?sort=relevance'), 422, 'INVALID_LIST_QUERY');
    assertProblem(await h.call('GET', '/items?attributes=notjson'), 422, 'INVALID_LIST_QUERY');
    assertProblem(await h.call('GET', '/items?minPrice=5&maxPrice=4'), 422, 'INVALID_LIST_QUERY');
    assertProblem(await h.call('GET', '/items?cursor=forged'), 400, 'INVALID_CURSOR');
  });

  test('one statement per page, whatever the page size (items with their category and first image)', async () => {
    // Warm the category path cache so the page alone is counted.
    await list(`category=${root.slug}`);
    for (const limit of [1, 4]) {
      const { statements } = await countStatements(() =>
        h.call('GET', `/items?category=${root.slug}&sort=price&limit=${limit}`),
      );
      assert.equal(statements.length, 1, statements.join('\n---\n'));
    }
    const { statements } = await countStatements(() =>
      h.call('GET', `/items?sort=newest&limit=50`),
    );
    assert.equal(statements.length, 1);
  });
});

describe('shop: images through the files area', () => {
  test('an item shows its image once processed: variants, dimensions, blurhash; another purpose is refused', async () => {
    const upload = async (purpose: string) => {
      const form = multipart([
        { name: 'purpose', data: purpose },
        { name: 'file', filename: 'mug.png', contentType: 'image/png', data: await png(400, 300) },
      ]);
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/files',
        headers: { ...h.admin, 'content-type': form.contentType },
        payload: form.body,
      });
      assert.ok([201, 202].includes(res.statusCode), res.body);
      return res.json<{ id: string }>().id;
    };
    const fileId = await upload('shop.item-image');
    const other = await upload('files.image');
    const cat = await category(h);
    const base = { categoryId: cat.id };
    await assert.rejects(item(h, { ...base, images: [other] }), /INVALID_IMAGE/);
    const it = await item(h, { ...base, images: [fileId] });
    const shown = await eventually('the image ready on the item', async () => {
      const res = await h.call('GET', `/items/${it.slug}`);
      const body = res.json<{
        images: {
          status: string;
          width: number;
          blurhash: string;
          variants: { id: string; path: string }[];
        }[];
      }>();
      return body.images[0]?.status === 'ready' ? body.images[0] : undefined;
    });
    assert.equal(shown.width, 400);
    assert.ok(shown.blurhash);
    assert.ok(shown.variants.some((v) => v.id === 'w320.webp' && v.path.includes(fileId)));
    // The listing shows it too, and anyone may fetch the variant (public purpose).
    const listed = (await h.call('GET', `/items?category=${cat.slug}`)).json<Page<Listed>>();
    assert.equal(listed.items[0]?.image?.fileId, fileId);
    const variant = await h.app.inject({ method: 'GET', url: shown.variants[0]?.path ?? '' });
    assert.ok([200, 302].includes(variant.statusCode), variant.body);
  });
});
