import { Type } from 'typebox';
import { defineMailTemplate } from '../../platform/mail/index.ts';

const orderVars = Type.Object({
  username: Type.String(),
  orderId: Type.String(),
  /** Formatted for people (`EUR 24.99`); the API keeps minor units. */
  total: Type.String(),
  lines: Type.String(),
});
const sample = {
  username: 'ada',
  orderId: '0190a5c4-7b7e-7000-8000-0000000000a1',
  total: 'EUR 24.99',
  lines: '2 × Blue mug (MUG-01)',
};

/** Sent in the transaction that places an order. */
export const orderPlacedMail = defineMailTemplate({
  name: 'shop.order-placed',
  description: 'Confirms an order just placed, with its lines and total.',
  vars: orderVars,
  sample,
  locales: {
    en: {
      subject: 'Your order {{orderId}}',
      html: '<p>Hello {{username}},</p>\n<p>We received your order {{orderId}}:</p>\n<p>{{lines}}</p>\n<p>Total: {{total}}</p>',
      text: 'Hello {{username}},\n\nWe received your order {{orderId}}:\n{{lines}}\n\nTotal: {{total}}',
    },
  },
});

/** Sent in the transaction that marks an order shipped. */
export const orderShippedMail = defineMailTemplate({
  name: 'shop.order-shipped',
  description: 'Tells the customer their order left, with the carrier and tracking number.',
  vars: Type.Object({
    username: Type.String(),
    orderId: Type.String(),
    carrier: Type.String(),
    trackingNumber: Type.String(),
  }),
  sample: { username: 'ada', orderId: sample.orderId, carrier: 'DHL', trackingNumber: 'JD0142' },
  locales: {
    en: {
      subject: 'Your order {{orderId}} has shipped',
      html: '<p>Hello {{username}},</p>\n<p>Your order {{orderId}} is on its way with {{carrier}} (tracking number {{trackingNumber}}).</p>',
      text: 'Hello {{username}},\n\nYour order {{orderId}} is on its way with {{carrier}} (tracking number {{trackingNumber}}).',
    },
  },
});

/** Sent in the transaction that records a refund. */
export const orderRefundedMail = defineMailTemplate({
  name: 'shop.order-refunded',
  description: 'Confirms a refund on an order (this refund’s amount).',
  vars: Type.Object({ username: Type.String(), orderId: Type.String(), amount: Type.String() }),
  sample: { username: 'ada', orderId: sample.orderId, amount: 'EUR 5.00' },
  locales: {
    en: {
      subject: 'Refund on your order {{orderId}}',
      html: '<p>Hello {{username}},</p>\n<p>We refunded {{amount}} on your order {{orderId}}.</p>',
      text: 'Hello {{username}},\n\nWe refunded {{amount}} on your order {{orderId}}.',
    },
  },
});

export const shopMailTemplates = [orderPlacedMail, orderShippedMail, orderRefundedMail];

/** Each currency's number of decimals, looked up once (an `Intl.NumberFormat` is costly to make). */
const fractionDigits = new Map<string, number>();

function digitsOf(currency: string): number {
  let digits = fractionDigits.get(currency);
  if (digits === undefined) {
    digits =
      new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
        .maximumFractionDigits ?? 2;
    fractionDigits.set(currency, digits);
  }
  return digits;
}

/** `EUR 24.99`: minor units shown with the currency's own number of decimals. */
export function formatMoney(amount: number | bigint, currency: string): string {
  const digits = digitsOf(currency);
  const value = BigInt(amount);
  if (digits === 0) return `${currency} ${value}`;
  const scale = 10n ** BigInt(digits);
  const whole = value / scale;
  const frac = (value % scale).toString().padStart(digits, '0');
  return `${currency} ${whole}.${frac}`;
}
