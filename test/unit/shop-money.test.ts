// The shop's money rules, written once in src/apps/shop/shop.money.ts: tax rounding, totals,
// bounds, ISO 4217 and ISO 3166-1 checks; and the order status machine's table.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matchesIfMatch } from '../../src/apps/shop/catalog.service.ts';
import { isCountry } from '../../src/apps/shop/shop.countries.ts';
import { formatMoney } from '../../src/apps/shop/shop.mail.ts';
import {
  isCurrency,
  isMoney,
  MAX_MONEY,
  orderTotals,
  percentOf,
} from '../../src/apps/shop/shop.money.ts';
import { TRANSITIONS } from '../../src/apps/shop/orders.service.ts';
import {
  FakePaymentProvider,
  ManualPaymentProvider,
  PaymentDeclined,
} from '../../src/apps/shop/shop.payments.ts';

describe('shop money', () => {
  test('percentOf rounds half away from zero, once, in exact integers', () => {
    assert.equal(percentOf(5n, 2000), 1n); // 1.0
    assert.equal(percentOf(2n, 2000), 0n); // 0.4
    assert.equal(percentOf(25n, 2000), 5n); // 5.0
    assert.equal(percentOf(2504n, 2000), 501n); // 500.8
    assert.equal(percentOf(1n, 5000), 1n); // 0.5 → 1
    assert.equal(percentOf(3n, 5000), 2n); // 1.5 → 2
    assert.equal(percentOf(-3n, 5000), -2n); // symmetric
    assert.equal(percentOf(0n, 2000), 0n);
    // 19.6 %: basis points keep it exact.
    assert.equal(percentOf(1000n, 1960), 196n);
    // Far past 2^53 and still exact.
    assert.equal(percentOf(10n ** 18n + 1n, 2000), 2n * 10n ** 17n);
    assert.throws(() => percentOf(1n, 1.5), RangeError);
    assert.throws(() => percentOf(1n, -1), RangeError);
  });

  test('orderTotals: subtotal of lines, flat shipping waived from the threshold, tax on the sum rounded once', () => {
    const rules = { shippingFlat: 500, freeShippingOver: 5000, taxBp: 2000 };
    assert.deepEqual(
      orderTotals(
        [
          { unitPrice: 1999n, quantity: 1 },
          { unitPrice: 5n, quantity: 1 },
        ],
        rules,
      ),
      { subtotal: 2004n, shipping: 500n, tax: 501n, total: 3005n },
    );
    // At the threshold shipping is free.
    assert.deepEqual(orderTotals([{ unitPrice: 2500n, quantity: 2 }], rules), {
      subtotal: 5000n,
      shipping: 0n,
      tax: 1000n,
      total: 6000n,
    });
    // Splitting lines differently never changes the total (rounded once, not per line).
    const a = orderTotals(
      [
        { unitPrice: 3n, quantity: 1 },
        { unitPrice: 3n, quantity: 1 },
      ],
      rules,
    );
    const b = orderTotals([{ unitPrice: 3n, quantity: 2 }], rules);
    assert.deepEqual(a, b);
    // Never free: freeShippingOver 0.
    assert.equal(
      orderTotals([{ unitPrice: 10n ** 9n, quantity: 1 }], { ...rules, freeShippingOver: 0 })
        .shipping,
      500n,
    );
  });

  test('bounds, currencies, countries', () => {
    assert.equal(MAX_MONEY, 10 ** 12);
    assert.ok(isMoney(0) && isMoney(MAX_MONEY));
    for (const bad of [-1, 1.5, MAX_MONEY + 1, 1e20, Number.NaN]) assert.equal(isMoney(bad), false);
    for (const c of ['EUR', 'USD', 'JPY', 'GBP']) assert.ok(isCurrency(c), c);
    for (const c of ['XYZ', 'eur', 'EURO', '']) assert.equal(isCurrency(c), false, c);
    for (const c of ['GB', 'FR', 'US', 'DE', 'ZW']) assert.ok(isCountry(c), c);
    for (const c of ['UK', 'XX', 'gb', 'ZZ', 'EU']) assert.equal(isCountry(c), false, c);
    assert.equal(formatMoney(2499, 'EUR'), 'EUR 24.99');
    assert.equal(formatMoney(5, 'EUR'), 'EUR 0.05');
    assert.equal(formatMoney(1200, 'JPY'), 'JPY 1200');
  });

  test('If-Match: `*`, a list, strong comparison only', () => {
    assert.ok(matchesIfMatch('*', '"a.1"'));
    assert.ok(matchesIfMatch('"x", "a.1"', '"a.1"'));
    assert.equal(matchesIfMatch('W/"a.1"', '"a.1"'), false);
    assert.equal(matchesIfMatch('"a.2"', '"a.1"'), false);
  });

  test('the status machine is exactly the issue’s', () => {
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(TRANSITIONS).map(([k, v]) => [k, [[...v.from].sort(), v.to]]),
      ),
      {
        pay: [['pending'], 'paid'],
        ship: [['paid'], 'shipped'],
        deliver: [['shipped'], 'delivered'],
        cancel: [['paid', 'pending'], 'cancelled'],
        refund: [['delivered', 'paid', 'shipped'], 'refunded'],
      },
    );
  });

  test('payment providers: manual needs the outside payment’s reference; the fake one declines on demand', async () => {
    const manual = new ManualPaymentProvider();
    await assert.rejects(
      manual.charge({ orderId: 'o', amount: 1, currency: 'EUR' }),
      PaymentDeclined,
    );
    assert.deepEqual(
      await manual.charge({ orderId: 'o', amount: 1, currency: 'EUR', reference: 'bank-42' }),
      { reference: 'bank-42' },
    );
    const fake = new FakePaymentProvider();
    fake.declineAmounts.add(700);
    await assert.rejects(
      fake.charge({ orderId: 'o', amount: 700, currency: 'EUR' }),
      PaymentDeclined,
    );
    assert.match(
      (await fake.charge({ orderId: 'o', amount: 701, currency: 'EUR' })).reference,
      /^fake_ch_/,
    );
    assert.deepEqual(
      fake.calls.map((c) => [c.op, c.amount]),
      [
        ['charge', 700],
        ['charge', 701],
      ],
    );
  });
});
