import { Type } from 'typebox';
import { defineEvent } from '../../platform/events/index.ts';

/** Permissions that see every shop event (customers see their own orders' events). */
export const SHOP_MANAGE = 'shop:manage';
export const ORDERS_MANAGE = 'orders:manage';

const ORDER_EXAMPLE = {
  orderId: '0190a5c4-7b7e-7000-8000-0000000000a1',
  customerId: '0190a5c4-7b7e-7000-8000-0000000000c1',
  status: 'paid',
  currency: 'EUR',
  total: 2499,
};
const orderPayload = Type.Object(
  {
    orderId: Type.String({ format: 'uuid' }),
    customerId: Type.String({ format: 'uuid' }),
    status: Type.String(),
    currency: Type.String({ minLength: 3, maxLength: 3 }),
    /** Minor units. */
    total: Type.Integer({ minimum: 0 }),
    /** Refunds only: this refund's amount and everything refunded so far, in minor units. */
    amount: Type.Optional(Type.Integer({ minimum: 0 })),
    refunded: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
const visibility = { permission: ORDERS_MANAGE, ownerVisible: true };

function orderEvent(what: string, description: string, status: string) {
  return defineEvent({
    type: `shop.order.${what}`,
    description,
    payload: orderPayload,
    example: { ...ORDER_EXAMPLE, status },
    visibility,
  });
}

export const orderPlaced = orderEvent('placed', 'An order was placed (stock taken).', 'pending');
export const orderPaid = orderEvent('paid', 'An order’s payment was recorded.', 'paid');
export const orderShipped = orderEvent('shipped', 'An order left the warehouse.', 'shipped');
export const orderDelivered = orderEvent('delivered', 'An order was delivered.', 'delivered');
export const orderCancelled = orderEvent(
  'cancelled',
  'An order was cancelled (its stock returned).',
  'cancelled',
);
export const orderRefunded = orderEvent(
  'refunded',
  'Money was refunded on an order (`amount`; `refunded` so far; `status` is `refunded` once all of it is).',
  'refunded',
);

export const itemLowStock = defineEvent({
  type: 'shop.item.low_stock',
  description: 'An item’s stock fell to `SHOP_LOW_STOCK_THRESHOLD` or below.',
  payload: Type.Object(
    {
      itemId: Type.String({ format: 'uuid' }),
      sku: Type.String(),
      stock: Type.Integer({ minimum: 0 }),
      threshold: Type.Integer({ minimum: 0 }),
    },
    { additionalProperties: false },
  ),
  example: {
    itemId: '0190a5c4-7b7e-7000-8000-0000000000b1',
    sku: 'MUG-01',
    stock: 3,
    threshold: 5,
  },
  visibility: { permission: SHOP_MANAGE, ownerVisible: false },
});

export const shopEvents = [
  orderPlaced,
  orderPaid,
  orderShipped,
  orderDelivered,
  orderCancelled,
  orderRefunded,
  itemLowStock,
];
