// Placing an order in few round trips (issue 18, benchmark (b)): the items locked and their stock
// taken in one statement, the order, its lines and its history in another, and the edges of that
// path: a first order before the account has a customer profile, the same item on several lines,
// several short lines at once (nothing written), stock returned while an order waits on the item's
// lock, and orders of several lines racing over the same items in any line order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { assertProblem } from '../helpers/problem.ts';
import {
  ADDRESS,
  category,
  idempotencyKey,
  item,
  startShop,
  type ItemJson,
  type ShopHarness,
} from '../helpers/shop.ts';

let h: ShopHarness;
let catId: string;
before(async () => {
  h = await startShop({ SHOP_LOW_STOCK_THRESHOLD: '2' });
  catId = (await category(h)).id;
});
after(async () => {
  await h?.close();
});

interface Order {
  id: string;
  customerId: string;
  total: number;
  lines: { itemId: string; quantity: number; lineTotal: number }[];
  history: { kind: string; itemId: string | null; quantity: number | null }[];
}

interface ShortItem {
  itemId: string;
  sku: string | null;
  requested: number;
  available: number;
}

const stockOf = async (id: string) =>
  (await h.sql<{ stock: number }>(`select stock from shop_item where id = $1`, [id]))[0]?.stock;

/** Rows an order writes, counted: to show that a refused order wrote none of them. */
async function written(): Promise<Record<string, number>> {
  const [row] = await h.sql<Record<string, number>>(`
    select (select count(*)::int from shop_order) as orders,
           (select count(*)::int from shop_order_line) as lines,
           (select count(*)::int from shop_order_history) as history,
           (select count(*)::int from gw_event where type like 'shop.%') as events,
           (select count(*)::int from gw_mail_delivery where template = 'shop.order-placed') as mails`);
  return row ?? {};
}

function place(headers: Record<string, string>, lines: { itemId: string; quantity: number }[]) {
  return h.call(
    'POST',
    '/orders',
    { ...headers, ...idempotencyKey() },
    {
      lines,
      shippingAddress: ADDRESS,
    },
  );
}

/**
 * The statements sent while `fn` runs: every one goes through `pg.Client.prototype.query` (the
 * pool's own client class, for named statements, looks it up at each call).
 */
async function statementsOf(fn: () => Promise<unknown>): Promise<string[]> {
  type Queryable = { query: (...args: unknown[]) => unknown };
  const proto = pg.Client.prototype as unknown as Queryable;
  const seen: string[] = [];
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text;
    if (typeof text === 'string') seen.push(text);
    return original.apply(this, args);
  };
  try {
    await fn();
    return seen;
  } finally {
    proto.query = original;
  }
}

describe('shop: placing an order in few statements', () => {
  test('an order of 3 lines sends 2 shop statements: stock taken in one, order + lines + history in the other', async () => {
    const { headers } = await h.customer();
    const items = await Promise.all([1, 2, 3].map(() => item(h, { categoryId: catId, stock: 50 })));
    const lines = items.map((i, n) => ({ itemId: i.id, quantity: n + 1 }));
    // The first order makes the customer profile; the second is the steady state.
    assert.equal((await place(headers, lines)).statusCode, 201);
    let res: Awaited<ReturnType<typeof place>> | undefined;
    const statements = await statementsOf(async () => {
      res = await place(headers, lines);
    });
    assert.equal(res?.statusCode, 201, res?.body);
    const shop = statements.filter((s) => /\bshop_/.test(s));
    assert.equal(shop.length, 2, shop.join('\n---\n'));
    assert.match(shop[0] ?? '', /for update/);
    assert.match(shop[0] ?? '', /update shop_item/);
    assert.match(shop[1] ?? '', /insert into shop_order_history/);
    const order = res?.json<Order>();
    assert.deepEqual(
      order?.history.filter((e) => e.kind === 'stock').map((e) => [e.itemId, e.quantity]),
      [...lines].sort((a, b) => (a.itemId < b.itemId ? -1 : 1)).map((l) => [l.itemId, -l.quantity]),
    );
    for (const [n, i] of items.entries()) assert.equal(await stockOf(i.id), 50 - 2 * (n + 1));
    // What was written is what was answered (history in the order given, lines in id order).
    const stored = await h.call('GET', `/orders/${order?.id ?? ''}`, headers);
    assert.deepEqual(stored.json<Order>().lines, order?.lines);
    assert.deepEqual(
      stored.json<Order>().history.map((e) => [e.kind, e.itemId, e.quantity]),
      order?.history.map((e) => [e.kind, e.itemId, e.quantity]),
    );
  });

  test('the first order of an account without a customer profile makes the profile once and places one order', async () => {
    const { user, headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 5, price: 250 });
    const before = await written();
    const res = await place(headers, [{ itemId: a.id, quantity: 2 }]);
    assert.equal(res.statusCode, 201, res.body);
    const profiles = await h.sql<{ id: string }>(
      `select id from shop_customer where user_id = $1`,
      [user.id],
    );
    assert.equal(profiles.length, 1);
    assert.equal(res.json<Order>().customerId, profiles[0]?.id);
    const after = await written();
    assert.equal(after.orders, (before.orders ?? 0) + 1);
    assert.equal(after.mails, (before.mails ?? 0) + 1);
    assert.equal(await stockOf(a.id), 3);
  });

  test('a first order refused for stock makes no profile and writes nothing', async () => {
    const { user, headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 1 });
    const before = await written();
    assertProblem(await place(headers, [{ itemId: a.id, quantity: 2 }]), 409, 'OUT_OF_STOCK');
    assert.deepEqual(await written(), before);
    assert.deepEqual(await h.sql(`select id from shop_customer where user_id = $1`, [user.id]), []);
    assert.equal(await stockOf(a.id), 1);
  });

  test('two lines naming the same item are one line of their sum: refused when the sum is short, listed once', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 4 });
    const before = await written();
    const problem = assertProblem(
      await place(headers, [
        { itemId: a.id, quantity: 3 },
        { itemId: a.id, quantity: 2 },
      ]),
      409,
      'OUT_OF_STOCK',
    );
    assert.deepEqual(
      (problem.items as ShortItem[]).map((s) => [s.itemId, s.sku, s.requested, s.available]),
      [[a.id, a.sku, 5, 4]],
    );
    assert.deepEqual(await written(), before);
    assert.equal(await stockOf(a.id), 4);
    const ok = await place(headers, [
      { itemId: a.id, quantity: 3 },
      { itemId: a.id, quantity: 1 },
    ]);
    assert.equal(ok.statusCode, 201, ok.body);
    assert.deepEqual(
      ok.json<Order>().lines.map((l) => [l.itemId, l.quantity]),
      [[a.id, 4]],
    );
    assert.equal(await stockOf(a.id), 0);
  });

  test('two short lines among four: 409 OUT_OF_STOCK lists each short item; no order, line, history, event, mail or stock move', async () => {
    const { headers } = await h.customer();
    const plenty = await item(h, { categoryId: catId, stock: 10 });
    const exact = await item(h, { categoryId: catId, stock: 3 });
    const few = await item(h, { categoryId: catId, stock: 2 });
    const none = await item(h, { categoryId: catId, stock: 0 });
    // The profile exists already: what follows is the steady path.
    assert.equal((await place(headers, [{ itemId: plenty.id, quantity: 1 }])).statusCode, 201);
    const before = await written();
    const problem = assertProblem(
      await place(headers, [
        { itemId: none.id, quantity: 1 },
        { itemId: plenty.id, quantity: 2 },
        { itemId: few.id, quantity: 3 },
        { itemId: exact.id, quantity: 3 },
      ]),
      409,
      'OUT_OF_STOCK',
    );
    const short = (problem.items as ShortItem[])
      .map((s) => [s.itemId, s.sku, s.requested, s.available])
      .sort();
    assert.deepEqual(
      short,
      [
        [few.id, few.sku, 3, 2],
        [none.id, none.sku, 1, 0],
      ].sort(),
    );
    assert.match(String(problem.detail), /Nothing was ordered/);
    assert.deepEqual(await written(), before);
    assert.equal(await stockOf(plenty.id), 9);
    assert.equal(await stockOf(exact.id), 3);
    assert.equal(await stockOf(few.id), 2);
    assert.equal(await stockOf(none.id), 0);
  });

  test('stock returned while the order waits on the item lock is seen: the order is placed (no stale refusal)', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 0 });
    const b = await item(h, { categoryId: catId, stock: 10 });
    // The profile exists, so the order's first statement is the one that locks the items.
    assert.equal((await place(headers, [{ itemId: b.id, quantity: 1 }])).statusCode, 201);
    const holder = await h.tdb.database.pool.connect();
    let pending: ReturnType<typeof place> | undefined;
    try {
      await holder.query('begin');
      await holder.query('update shop_item set stock = 5 where id = $1', [a.id]);
      // The order's statement starts (its snapshot sees 0 left) and waits on the row lock.
      pending = place(headers, [
        { itemId: b.id, quantity: 1 },
        { itemId: a.id, quantity: 2 },
      ]);
      let waiting = 0;
      for (let i = 0; i < 200 && waiting === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        waiting = (
          await h.sql<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where wait_event_type = 'Lock' and query like '%locked as materialized%'`,
          )
        )[0]?.n as number;
      }
      assert.equal(waiting, 1, 'the order waits on the item held by the test');
      await holder.query('commit');
    } finally {
      if (!pending) await holder.query('rollback');
      holder.release();
    }
    const res = await pending;
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(await stockOf(a.id), 3);
    assert.equal(await stockOf(b.id), 8);
  });

  test('orders of three lines racing over the same items in every line order: never oversold, no deadlock, no 5xx', async () => {
    const items: ItemJson[] = await Promise.all(
      [4, 4, 4].map((stock) => item(h, { categoryId: catId, stock })),
    );
    const decoy = await item(h, { categoryId: catId, stock: 1000 });
    const customers = await Promise.all(Array.from({ length: 16 }, () => h.customer()));
    // Warm the profiles so that every order takes the one-statement path at once.
    for (const c of customers)
      assert.equal((await place(c.headers, [{ itemId: decoy.id, quantity: 1 }])).statusCode, 201);
    const [deadlocksBefore] = await h.sql<{ n: number }>(
      `select deadlocks::int as n from pg_stat_database where datname = current_database()`,
    );
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
      [2, 0, 1],
    ];
    const results = await Promise.all(
      customers.map(({ headers }, n) =>
        place(
          headers,
          (orders[n % orders.length] ?? []).map((i) => ({
            itemId: items[i]?.id ?? '',
            quantity: 1,
          })),
        ),
      ),
    );
    const statuses = results.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 201).length, 4, statuses.join(','));
    for (const r of results.filter((x) => x.statusCode !== 201))
      assertProblem(r, 409, 'OUT_OF_STOCK');
    for (const i of items) assert.equal(await stockOf(i.id), 0);
    const sold = await h.sql<{ n: number }>(
      `select coalesce(sum(quantity), 0)::int as n from shop_order_line where item_id = any($1::uuid[])`,
      [items.map((i) => i.id)],
    );
    assert.equal(sold[0]?.n, 12);
    const [deadlocksAfter] = await h.sql<{ n: number }>(
      `select deadlocks::int as n from pg_stat_database where datname = current_database()`,
    );
    assert.equal(deadlocksAfter?.n, deadlocksBefore?.n);
  });
});
