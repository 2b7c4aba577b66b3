// The shop's customers, carts and orders through HTTP: never overselling (concurrent orders for
// the last units), idempotent placement, exact money, the status machine and its history, stock
// returned on cancel/refund, events and mail, and every bad input of issue 18.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  ADDRESS,
  category,
  countStatements,
  idempotencyKey,
  item,
  startShop,
  type ItemJson,
  type ShopHarness,
} from '../helpers/shop.ts';

let h: ShopHarness;
let catId: string;
before(async () => {
  // 20 % tax, 5.00 shipping, free from 50.00 (the defaults, spelled out for the sums below).
  h = await startShop({
    SHOP_TAX_RATE_BP: '2000',
    SHOP_SHIPPING_FLAT: '500',
    SHOP_FREE_SHIPPING_OVER: '5000',
    SHOP_LOW_STOCK_THRESHOLD: '2',
  });
  catId = (await category(h)).id;
});
after(async () => {
  await h?.close();
});

interface Order {
  id: string;
  status: string;
  currency: string;
  subtotal: number;
  shipping: number;
  tax: number;
  total: number;
  refunded: number;
  lineCount: number;
  lines: {
    itemId: string;
    sku: string;
    name: string;
    unitPrice: number;
    quantity: number;
    lineTotal: number;
  }[];
  history: {
    kind: string;
    from: string | null;
    to: string | null;
    itemId: string | null;
    quantity: number | null;
    amount: number | null;
    actorId: string | null;
    reason: string;
  }[];
}

const stockOf = async (id: string) =>
  Number(
    (await h.sql<{ stock: number }>(`select stock from shop_item where id = $1`, [id]))[0]?.stock,
  );
const orderCount = async () =>
  Number((await h.sql<{ n: number }>(`select count(*)::int as n from shop_order`))[0]?.n);

async function place(
  headers: Record<string, string>,
  body: Record<string, unknown>,
  key = idempotencyKey(),
) {
  return h.call('POST', '/orders', { ...headers, ...key }, body);
}

describe('shop: customers and addresses', () => {
  test('a profile is made on first use; addresses with defaults; a country not in ISO 3166-1 is refused', async () => {
    const { headers } = await h.customer();
    assertProblem(await h.call('GET', '/customers/me'), 401, 'UNAUTHORIZED');
    const me = await h.call('GET', '/customers/me', headers);
    assert.equal(me.statusCode, 200, me.body);
    assert.deepEqual(me.json<{ addresses: unknown[] }>().addresses, []);
    assertProblem(
      await h.call('POST', '/customers/me/addresses', headers, { ...ADDRESS, country: 'XX' }),
      422,
      'INVALID_COUNTRY',
    );
    assertProblem(
      await h.call('POST', '/customers/me/addresses', headers, { ...ADDRESS, country: 'gb' }),
      422,
      'VALIDATION_FAILED',
    );
    const added = await h.call('POST', '/customers/me/addresses', headers, ADDRESS);
    assert.equal(added.statusCode, 201, added.body);
    const body = added.json<{
      addresses: { id: string }[];
      defaultShippingAddressId: string;
      defaultBillingAddressId: string;
    }>();
    const first = body.addresses[0]?.id;
    assert.equal(body.defaultShippingAddressId, first);
    assert.equal(body.defaultBillingAddressId, first);
    const second = await h.call('POST', '/customers/me/addresses', headers, {
      ...ADDRESS,
      city: 'Paris',
      country: 'FR',
      defaultBilling: true,
    });
    const after = second.json<{
      addresses: { id: string }[];
      defaultShippingAddressId: string;
      defaultBillingAddressId: string;
    }>();
    assert.equal(after.defaultShippingAddressId, first);
    assert.equal(after.defaultBillingAddressId, after.addresses[1]?.id);
    const patched = await h.call('PATCH', '/customers/me', headers, {
      name: 'Ada',
      phone: '+44 20 7946 0000',
    });
    assert.equal(patched.json<{ name: string }>().name, 'Ada');
    // Another customer's address is not found, as default or anywhere.
    const other = await h.customer();
    assertProblem(
      await h.call('PATCH', '/customers/me', other.headers, { defaultShippingAddressId: first }),
      404,
      'SHOP_NOT_FOUND',
    );
    assertProblem(
      await h.call('DELETE', `/customers/me/addresses/${first}`, other.headers),
      404,
      'SHOP_NOT_FOUND',
    );
  });
});

describe('shop: the cart', () => {
  test('lines at live prices; inactive and deleted items refused; quantities 0, -1, 1.5, 10^12 refused', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, price: 1250 });
    const put = (id: string, quantity: unknown) =>
      h.call('PUT', `/cart/items/${id}`, headers, { quantity });
    assert.equal((await put(a.id, 2)).statusCode, 200);
    for (const q of [0, -1, 1.5, 1e12, '2'])
      assertProblem(await put(a.id, q), 422, 'VALIDATION_FAILED');
    await h.call('PATCH', `/items/${a.id}`, h.admin, { price: 1300 });
    const cart = (await h.call('GET', '/cart', headers)).json<{
      lines: { unitPrice: number; quantity: number; lineTotal: number }[];
      subtotals: { currency: string; subtotal: number }[];
    }>();
    assert.deepEqual(
      cart.lines.map((l) => [l.unitPrice, l.quantity, l.lineTotal]),
      [[1300, 2, 2600]],
    );
    assert.deepEqual(cart.subtotals, [{ currency: 'EUR', subtotal: 2600 }]);
    const inactive = await item(h, { categoryId: catId, active: false });
    assertProblem(await put(inactive.id, 1), 422, 'ITEM_UNAVAILABLE');
    const deleted = await item(h, { categoryId: catId });
    await h.call('DELETE', `/items/${deleted.id}`, h.admin);
    assertProblem(await put(deleted.id, 1), 422, 'ITEM_UNAVAILABLE');
    assertProblem(await put('0190a5c4-7b7e-7000-8000-000000000000', 1), 422, 'ITEM_UNAVAILABLE');
    assert.equal((await h.call('DELETE', `/cart/items/${a.id}`, headers)).statusCode, 204);
    assert.deepEqual(
      (await h.call('GET', '/cart', headers)).json<{ lines: unknown[] }>().lines,
      [],
    );
  });
});

describe('shop: placing orders', () => {
  test('totals are computed server-side: lines snapshot sku, name and price; tax rounded once; the history records stock', async () => {
    const { headers, user } = await h.customer();
    const a = await item(h, { categoryId: catId, price: 1999, stock: 5 });
    const b = await item(h, { categoryId: catId, price: 5, stock: 5 });
    const res = await place(headers, {
      lines: [
        { itemId: a.id, quantity: 1 },
        { itemId: b.id, quantity: 1 },
      ],
      shippingAddress: ADDRESS,
    });
    assert.equal(res.statusCode, 201, res.body);
    const order = res.json<Order>();
    // The answer (built from what was written) is what reading the order gives.
    assert.deepEqual((await h.call('GET', `/orders/${order.id}`, headers)).json(), order);
    // 19.99 + 0.05 = 20.04, shipping 5.00, tax 20 % of 25.04 = 5.008 → 5.01.
    assert.deepEqual(
      [order.subtotal, order.shipping, order.tax, order.total, order.currency, order.status],
      [2004, 500, 501, 3005, 'EUR', 'pending'],
    );
    assert.equal(order.lineCount, 2);
    assert.deepEqual(
      order.lines.map((l) => [l.sku, l.unitPrice, l.quantity, l.lineTotal]).sort(),
      [
        [a.sku, 1999, 1, 1999],
        [b.sku, 5, 1, 5],
      ].sort(),
    );
    assert.equal(await stockOf(a.id), 4);
    assert.deepEqual(
      order.history.map((e) => [e.kind, e.from, e.to, e.quantity, e.actorId]),
      [
        ['status', null, 'pending', null, user.id],
        ...[a.id, b.id].sort().map(() => ['stock', null, null, -1, user.id]),
      ],
    );
    // A later price change does not touch the order.
    await h.call('PATCH', `/items/${a.id}`, h.admin, { price: 1 });
    const again = (await h.call('GET', `/orders/${order.id}`, headers)).json<Order>();
    assert.equal(again.total, 3005);
    assert.equal(again.lines.find((l) => l.itemId === a.id)?.unitPrice, 1999);
    // Client-sent totals are dropped by the schema: the server's sum stands.
    const sent = await place(headers, {
      lines: [{ itemId: b.id, quantity: 1 }],
      shippingAddress: ADDRESS,
      total: 1,
      subtotal: 1,
    });
    assert.equal(sent.statusCode, 201, sent.body);
    assert.equal(sent.json<Order>().total, 606); // 0.05 + 5.00 shipping + 20 % (1.01)
  });

  test('the Idempotency-Key is required; replayed: same answer, one order; reused with another body: 422', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 10 });
    const body = { lines: [{ itemId: a.id, quantity: 2 }], shippingAddress: ADDRESS };
    assertProblem(await h.call('POST', '/orders', headers, body), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    const key = idempotencyKey();
    const before = await orderCount();
    const first = await place(headers, body, key);
    assert.equal(first.statusCode, 201, first.body);
    const replay = await place(headers, body, key);
    assert.equal(replay.statusCode, 201);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(replay.json<Order>().id, first.json<Order>().id);
    assert.equal(await orderCount(), before + 1);
    assert.equal(await stockOf(a.id), 8);
    assertProblem(
      await place(headers, { ...body, lines: [{ itemId: a.id, quantity: 3 }] }, key),
      422,
      'IDEMPOTENCY_KEY_REUSED',
    );
    assert.equal(await orderCount(), before + 1);
  });

  test('bad orders: quantities, mixed currencies, unknown/inactive items, another customer’s address, empty cart, totals past 10^12', async () => {
    const { headers } = await h.customer();
    const other = await h.customer();
    const eur = await item(h, { categoryId: catId, currency: 'EUR' });
    const usd = await item(h, { categoryId: catId, currency: 'USD' });
    const before = await orderCount();
    for (const quantity of [0, -1, 1.5, 1e12])
      assertProblem(
        await place(headers, { lines: [{ itemId: eur.id, quantity }], shippingAddress: ADDRESS }),
        422,
        'VALIDATION_FAILED',
      );
    const mixed = assertProblem(
      await place(headers, {
        lines: [
          { itemId: eur.id, quantity: 1 },
          { itemId: usd.id, quantity: 1 },
        ],
        shippingAddress: ADDRESS,
      }),
      422,
      'CURRENCY_MISMATCH',
    );
    assert.match(mixed.detail, /EUR, USD/);
    const inactive = await item(h, { categoryId: catId, active: false });
    assertProblem(
      await place(headers, {
        lines: [{ itemId: inactive.id, quantity: 1 }],
        shippingAddress: ADDRESS,
      }),
      422,
      'ITEM_UNAVAILABLE',
    );
    const addressOfOther = (
      await h.call('POST', '/customers/me/addresses', other.headers, ADDRESS)
    ).json<{ addresses: { id: string }[] }>().addresses[0]?.id;
    assertProblem(
      await place(headers, {
        lines: [{ itemId: eur.id, quantity: 1 }],
        shippingAddressId: addressOfOther,
      }),
      404,
      'SHOP_NOT_FOUND',
    );
    assertProblem(
      await place(headers, {
        lines: [{ itemId: eur.id, quantity: 1 }],
        shippingAddress: { ...ADDRESS, country: 'QQ' },
      }),
      422,
      'INVALID_COUNTRY',
    );
    assertProblem(
      await place(headers, { lines: [{ itemId: eur.id, quantity: 1 }] }),
      422,
      'ADDRESS_REQUIRED',
    );
    assertProblem(await place(headers, { shippingAddress: ADDRESS }), 422, 'EMPTY_ORDER');
    // 10^12 - 1 per unit, twice: past the money bound.
    const dear = await item(h, { categoryId: catId, price: 999_999_999_999, stock: 5 });
    assertProblem(
      await place(headers, { lines: [{ itemId: dear.id, quantity: 2 }], shippingAddress: ADDRESS }),
      422,
      'AMOUNT_TOO_LARGE',
    );
    assert.equal(await orderCount(), before);
    assert.equal(await stockOf(dear.id), 5);
  });

  test('OUT_OF_STOCK lists each short item with what is left; nothing is taken from the others', async () => {
    const { headers } = await h.customer();
    const plenty = await item(h, { categoryId: catId, stock: 10 });
    const few = await item(h, { categoryId: catId, stock: 2 });
    const none = await item(h, { categoryId: catId, stock: 0 });
    const res = await place(headers, {
      lines: [
        { itemId: plenty.id, quantity: 1 },
        { itemId: few.id, quantity: 3 },
        { itemId: none.id, quantity: 1 },
      ],
      shippingAddress: ADDRESS,
    });
    const problem = assertProblem(res, 409, 'OUT_OF_STOCK');
    const short = (problem.items as { itemId: string; requested: number; available: number }[])
      .map((s) => [s.itemId, s.requested, s.available])
      .sort();
    assert.deepEqual(
      short,
      [
        [few.id, 3, 2],
        [none.id, 1, 0],
      ].sort(),
    );
    assert.equal(await stockOf(plenty.id), 10);
    assert.equal(await stockOf(few.id), 2);
  });

  test('never oversell: 30 customers racing for the last 5 units: exactly 5 sold, the rest OUT_OF_STOCK, no 5xx', async () => {
    const last = await item(h, { categoryId: catId, stock: 5 });
    const decoy = await item(h, { categoryId: catId, stock: 1000 });
    const customers = await Promise.all(Array.from({ length: 30 }, () => h.customer()));
    // Lines in both orders, so lock ordering is what prevents deadlocks.
    const results = await Promise.all(
      customers.map(({ headers }, i) =>
        place(headers, {
          lines:
            i % 2 === 0
              ? [
                  { itemId: last.id, quantity: 1 },
                  { itemId: decoy.id, quantity: 1 },
                ]
              : [
                  { itemId: decoy.id, quantity: 1 },
                  { itemId: last.id, quantity: 1 },
                ],
          shippingAddress: ADDRESS,
        }),
      ),
    );
    const statuses = results.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 201).length, 5, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 409).length, 25, statuses.join(','));
    for (const r of results.filter((x) => x.statusCode === 409))
      assertProblem(r, 409, 'OUT_OF_STOCK');
    assert.equal(await stockOf(last.id), 0);
    assert.equal(await stockOf(decoy.id), 995);
    const sold = await h.sql<{ n: number }>(
      `select coalesce(sum(quantity), 0)::int as n from shop_order_line where item_id = $1`,
      [last.id],
    );
    assert.equal(sold[0]?.n, 5);
  });

  test('the same item on two lines is one line of the sum; item details show the stock taken (fresh ETag)', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 10, price: 100 });
    const before = await h.call('GET', `/items/${a.slug}`);
    const etag = before.headers.etag as string;
    const res = await place(headers, {
      lines: [
        { itemId: a.id, quantity: 2 },
        { itemId: a.id, quantity: 3 },
      ],
      shippingAddress: ADDRESS,
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(
      res.json<Order>().lines.map((l) => [l.itemId, l.quantity, l.lineTotal]),
      [[a.id, 5, 500]],
    );
    const after = await h.call('GET', `/items/${a.slug}`, { 'if-none-match': etag });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json<{ stock: number }>().stock, 5);
    assert.notEqual(after.headers.etag, etag);
  });

  test('ordering from the cart empties it; the default shipping address is used', async () => {
    const { headers } = await h.customer();
    await h.call('POST', '/customers/me/addresses', headers, ADDRESS);
    const a = await item(h, { categoryId: catId, stock: 3 });
    await h.call('PUT', `/cart/items/${a.id}`, headers, { quantity: 2 });
    const res = await place(headers, {});
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(
      res.json<{ shippingAddress: { city: string } }>().shippingAddress.city,
      'London',
    );
    assert.deepEqual(
      (await h.call('GET', '/cart', headers)).json<{ lines: unknown[] }>().lines,
      [],
    );
  });
});

describe('shop: the status machine', () => {
  let stock: ItemJson;
  let customer: { headers: Record<string, string>; user: { id: string; email: string } };
  before(async () => {
    stock = await item(h, { categoryId: catId, stock: 1000, price: 1000 });
    customer = await h.customer();
  });
  const newOrder = async (quantity = 1) => {
    const res = await place(customer.headers, {
      lines: [{ itemId: stock.id, quantity }],
      shippingAddress: ADDRESS,
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json<Order>();
  };
  // Cancelling is the customer's; the other actions are the admin's.
  const act = (id: string, action: string, body: Record<string, unknown> = {}) =>
    h.call(
      'POST',
      `/orders/${id}/${action}`,
      action === 'cancel' ? customer.headers : h.admin,
      body,
    );

  test('pending → paid → shipped → delivered → refunded, with history, events and mails', async () => {
    const order = await newOrder();
    const paid = await act(order.id, 'pay', { reference: 'ch_123' });
    assert.equal(paid.statusCode, 200, paid.body);
    assert.equal(paid.json<{ paymentReference: string }>().paymentReference, 'ch_123');
    assert.equal(
      (await act(order.id, 'ship', { carrier: 'DHL', trackingNumber: 'JD01' })).statusCode,
      200,
    );
    assert.equal((await act(order.id, 'deliver')).statusCode, 200);
    const refunded = await act(order.id, 'refund');
    assert.equal(refunded.statusCode, 200, refunded.body);
    const body = refunded.json<Order>();
    assert.equal(body.status, 'refunded');
    assert.equal(body.refunded, body.total);
    assert.deepEqual(
      body.history.filter((e) => e.kind === 'status').map((e) => [e.from, e.to]),
      [
        [null, 'pending'],
        ['pending', 'paid'],
        ['paid', 'shipped'],
        ['shipped', 'delivered'],
        ['delivered', 'refunded'],
      ],
    );
    // Delivered goods do not come back into stock with a refund.
    assert.ok(!body.history.some((e) => e.kind === 'stock' && (e.quantity ?? 0) > 0));
    const events = await h.sql<{ type: string }>(
      `select type from gw_event where subject_id = $1 order by occurred_at, id`,
      [order.id],
    );
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'shop.order.placed',
        'shop.order.paid',
        'shop.order.shipped',
        'shop.order.delivered',
        'shop.order.refunded',
      ],
    );
    const mails = await h.sql<{ template: string }>(
      `select template from gw_mail_delivery where recipient = $1 order by created_at, id`,
      [customer.user.email],
    );
    for (const t of ['shop.order-placed', 'shop.order-shipped', 'shop.order-refunded'])
      assert.ok(
        mails.some((m) => m.template === t),
        t,
      );
    await eventually('the shipped mail delivered', async () => {
      const rows = await h.sql<{ text: string }>(
        `select text from gw_mail_dev_message where recipient = $1 and template = 'shop.order-shipped'`,
        [customer.user.email],
      );
      return rows.find((r) => r.text.includes('JD01'));
    });
  });

  test('every forbidden transition is a 409 naming the current status, and changes nothing', async () => {
    const allowed: Record<string, string[]> = {
      pending: ['pay', 'cancel'],
      paid: ['ship', 'cancel', 'refund'],
      shipped: ['deliver', 'refund'],
      delivered: ['refund'],
      cancelled: [],
      refunded: [],
    };
    const reach: Record<string, (id: string) => Promise<void>> = {
      pending: async () => {},
      paid: async (id) => void (await act(id, 'pay')),
      shipped: async (id) => {
        await act(id, 'pay');
        await act(id, 'ship', { carrier: 'UPS', trackingNumber: '1Z' });
      },
      delivered: async (id) => {
        await reach.shipped?.(id);
        await act(id, 'deliver');
      },
      cancelled: async (id) => void (await act(id, 'cancel')),
      refunded: async (id) => {
        await act(id, 'pay');
        await act(id, 'refund');
      },
    };
    const bodies: Record<string, Record<string, unknown>> = {
      ship: { carrier: 'UPS', trackingNumber: '1Z' },
    };
    for (const [status, ok] of Object.entries(allowed)) {
      for (const action of ['pay', 'ship', 'deliver', 'cancel', 'refund'].filter(
        (a) => !ok.includes(a),
      )) {
        const order = await newOrder();
        await reach[status]?.(order.id);
        const [row] = await h.sql<{ status: string; updated_at: Date }>(
          `select status, updated_at from shop_order where id = $1`,
          [order.id],
        );
        assert.equal(row?.status, status);
        const res = await act(order.id, action, bodies[action] ?? {});
        const problem = assertProblem(res, 409, 'INVALID_ORDER_TRANSITION');
        assert.equal(problem.currentStatus, status);
        assert.match(problem.detail, new RegExp(`is ${status}`), `${status} → ${action}`);
        const [afterRow] = await h.sql<{ status: string; updated_at: Date }>(
          `select status, updated_at from shop_order where id = $1`,
          [order.id],
        );
        assert.deepEqual(afterRow, row, `${status} → ${action} changed the order`);
      }
    }
  });

  test('cancel before shipment returns the stock in the same transaction; a paid one is refunded', async () => {
    const before = await stockOf(stock.id);
    const order = await newOrder(3);
    assert.equal(await stockOf(stock.id), before - 3);
    const res = await h.call('POST', `/orders/${order.id}/cancel`, customer.headers, {});
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<Order>().status, 'cancelled');
    assert.equal(await stockOf(stock.id), before);
    const history = res.json<Order>().history;
    assert.ok(history.some((e) => e.kind === 'stock' && e.quantity === 3 && e.itemId === stock.id));
    // Paid, then cancelled: the payment is refunded through the provider.
    const paidOrder = await newOrder(1);
    await act(paidOrder.id, 'pay');
    const cancelled = await h.call('POST', `/orders/${paidOrder.id}/cancel`, customer.headers, {});
    assert.equal(cancelled.json<Order>().refunded, paidOrder.total);
    assert.ok(h.payments.calls.some((c) => c.op === 'refund' && c.orderId === paidOrder.id));
    // Partly refunded, then cancelled: only what remains goes back.
    const partly = await newOrder(1);
    await act(partly.id, 'pay');
    await act(partly.id, 'refund', { amount: 100 });
    const rest = await h.call('POST', `/orders/${partly.id}/cancel`, customer.headers, {});
    assert.equal(rest.statusCode, 200, rest.body);
    assert.equal(rest.json<Order>().refunded, partly.total);
    assert.deepEqual(
      h.payments.calls
        .filter((c) => c.op === 'refund' && c.orderId === partly.id)
        .map((c) => c.amount),
      [100, partly.total - 100],
    );
  });

  test('partial refunds add up; more than what remains is refused; the last one makes it refunded and returns unshipped stock', async () => {
    const before = await stockOf(stock.id);
    const order = await newOrder(2); // 20.00, free shipping? no: 20.00 + 5.00 + 20 % = 30.00
    assert.equal(order.total, 3000);
    await act(order.id, 'pay');
    const part = await act(order.id, 'refund', { amount: 1000 });
    assert.equal(part.statusCode, 200, part.body);
    assert.deepEqual([part.json<Order>().status, part.json<Order>().refunded], ['paid', 1000]);
    assertProblem(await act(order.id, 'refund', { amount: 2001 }), 422, 'REFUND_TOO_LARGE');
    for (const amount of [0, -5, 1.5])
      assertProblem(await act(order.id, 'refund', { amount }), 422, 'VALIDATION_FAILED');
    const rest = await act(order.id, 'refund', { amount: 2000 });
    assert.deepEqual([rest.json<Order>().status, rest.json<Order>().refunded], ['refunded', 3000]);
    assert.equal(await stockOf(stock.id), before);
    const refunds = rest
      .json<Order>()
      .history.filter((e) => e.kind === 'refund')
      .map((e) => e.amount);
    assert.deepEqual(refunds, [1000, 2000]);
  });

  test('a declined payment leaves the order pending (422 PAYMENT_FAILED)', async () => {
    const order = await newOrder(7);
    h.payments.declineAmounts.add(order.total);
    assertProblem(await act(order.id, 'pay'), 422, 'PAYMENT_FAILED');
    h.payments.declineAmounts.delete(order.total);
    assert.equal(
      (await h.call('GET', `/orders/${order.id}`, customer.headers)).json<Order>().status,
      'pending',
    );
  });

  test('customers see only their own orders: another’s is 404 to read and to cancel; admin actions need orders:manage', async () => {
    const order = await newOrder();
    const stranger = await h.customer();
    assertProblem(
      await h.call('GET', `/orders/${order.id}`, stranger.headers),
      404,
      'SHOP_NOT_FOUND',
    );
    assertProblem(
      await h.call('POST', `/orders/${order.id}/cancel`, stranger.headers, {}),
      404,
      'SHOP_NOT_FOUND',
    );
    assertProblem(
      await h.call('POST', `/orders/${order.id}/pay`, customer.headers, {}),
      403,
      'FORBIDDEN',
    );
    assertProblem(await h.call('GET', `/admin/orders`, customer.headers), 403, 'FORBIDDEN');
    const mine = (await h.call('GET', `/orders?limit=100`, customer.headers)).json<{
      items: { id: string }[];
    }>();
    assert.ok(mine.items.some((o) => o.id === order.id));
    const theirs = (await h.call('GET', `/orders`, stranger.headers)).json<{ items: unknown[] }>();
    assert.deepEqual(theirs.items, []);
  });
});

describe('shop: order listings', () => {
  test('the customer’s orders: keyset pages, newest first, one statement per page with the line count', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 100 });
    const made: string[] = [];
    for (let i = 1; i <= 3; i++)
      made.unshift(
        (
          await place(headers, { lines: [{ itemId: a.id, quantity: i }], shippingAddress: ADDRESS })
        ).json<Order>().id,
      );
    const first = (await h.call('GET', '/orders?limit=2', headers)).json<{
      items: { id: string; lineCount: number }[];
      page: { nextCursor: string };
    }>();
    const second = (
      await h.call(
        'GET',
        `/orders?limit=2&cursor=${encodeURIComponent(first.page.nextCursor)}`,
        headers,
      )
    ).json<{ items: { id: string }[] }>();
    assert.deepEqual(
      [...first.items, ...second.items].map((o) => o.id),
      made,
    );
    assert.equal(first.items[0]?.lineCount, 1);
    // One statement per page (the profile looked up inside it), whatever the page size.
    for (const limit of [1, 3]) {
      const { statements } = await countStatements(() =>
        h.call('GET', `/orders?limit=${limit}`, headers),
      );
      assert.equal(statements.length, 1, statements.join('\n---\n'));
    }
  });

  test('admin filters: status, customer, date, total; bad filters 422', async () => {
    const { headers } = await h.customer();
    const a = await item(h, { categoryId: catId, stock: 100, price: 100 });
    const o1 = (
      await place(headers, { lines: [{ itemId: a.id, quantity: 1 }], shippingAddress: ADDRESS })
    ).json<Order & { customerId: string }>();
    const o2 = (
      await place(headers, { lines: [{ itemId: a.id, quantity: 90 }], shippingAddress: ADDRESS })
    ).json<Order>();
    await h.call('POST', `/orders/${o2.id}/pay`, h.admin, {});
    const get = async (q: string) => {
      const res = await h.call('GET', `/admin/orders?${q}`, h.admin);
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ items: { id: string }[] }>().items.map((o) => o.id);
    };
    assert.deepEqual(await get(`customerId=${o1.customerId}`), [o2.id, o1.id]);
    assert.deepEqual(await get(`customerId=${o1.customerId}&status=paid`), [o2.id]);
    assert.deepEqual(await get(`customerId=${o1.customerId}&total[gte]=${o2.total}`), [o2.id]);
    assert.deepEqual(await get(`customerId=${o1.customerId}&total[lte]=${o1.total}`), [o1.id]);
    const since = new Date(Date.now() - 60_000).toISOString();
    assert.ok((await get(`createdAt[gte]=${since}&status=pending`)).includes(o1.id));
    assertProblem(
      await h.call('GET', '/admin/orders?total[gte]=lots', h.admin),
      422,
      'INVALID_LIST_QUERY',
    );
    assertProblem(
      await h.call('GET', '/admin/orders?colour=red', h.admin),
      422,
      'INVALID_LIST_QUERY',
    );
  });
});
