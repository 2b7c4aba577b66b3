import { defineErrorCodes, HttpError } from '../../platform/http/index.ts';

/** The shop's error codes (stable once shipped). */
export const ShopCodes = defineErrorCodes('shop', {
  SHOP_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Not found',
    description:
      'No such category, item, address or order for this caller (another customer’s is not found either).',
  },
  OUT_OF_STOCK: {
    kind: 'Conflict',
    title: 'Out of stock',
    description:
      'A line asks for more than is left; nothing was ordered. `items` lists each short item with `requested` and `available`.',
  },
  INVALID_ORDER_TRANSITION: {
    kind: 'Conflict',
    title: 'Invalid order transition',
    description: 'The order’s current status (`status`) does not allow this action.',
  },
  CURRENCY_MISMATCH: {
    kind: 'Invalid',
    title: 'Currencies mixed',
    description: 'An order holds items of one currency only.',
  },
  INVALID_CURRENCY: {
    kind: 'Invalid',
    title: 'Unknown currency',
    description: 'The currency is not an ISO 4217 code.',
  },
  INVALID_COUNTRY: {
    kind: 'Invalid',
    title: 'Unknown country',
    description: 'The country is not an ISO 3166-1 alpha-2 code.',
  },
  AMOUNT_TOO_LARGE: {
    kind: 'Invalid',
    title: 'Amount too large',
    description: 'An amount (price, line or order total, refund) is above 10^12 minor units.',
  },
  ITEM_UNAVAILABLE: {
    kind: 'Invalid',
    title: 'Item unavailable',
    description: 'The item is inactive or deleted: it cannot be put in a cart or ordered.',
  },
  ADDRESS_REQUIRED: {
    kind: 'Invalid',
    title: 'Shipping address required',
    description:
      'Give `shippingAddressId` or `shippingAddress`, or set a default shipping address first.',
  },
  EMPTY_ORDER: {
    kind: 'Invalid',
    title: 'Nothing to order',
    description: 'No lines were given and the cart is empty.',
  },
  DUPLICATE_SKU: {
    kind: 'Conflict',
    title: 'SKU taken',
    description: 'Another item has this SKU (or this slug).',
  },
  DUPLICATE_SLUG: {
    kind: 'Conflict',
    title: 'Slug taken',
    description: 'Another category has this slug.',
  },
  CATEGORY_CYCLE: {
    kind: 'Conflict',
    title: 'Category cycle',
    description: 'The new parent is the category itself or one of its descendants.',
  },
  CATEGORY_NOT_EMPTY: {
    kind: 'Conflict',
    title: 'Category not empty',
    description:
      'The category (or a descendant) still holds items or subcategories; pass `moveItemsTo` to move them first.',
  },
  INVALID_IMAGE: {
    kind: 'Invalid',
    title: 'Not an item image',
    description: 'An image id is not an upload of purpose `shop.item-image` by this caller.',
  },
  INVALID_ATTRIBUTES: {
    kind: 'Invalid',
    title: 'Attributes refused',
    description: 'The attributes JSON is too large or too deeply nested.',
  },
  STALE_WRITE: {
    kind: 'PreconditionFailed',
    title: 'Precondition failed',
    description: 'The item changed since the `ETag` given in `If-Match`; read it again.',
  },
  REFUND_TOO_LARGE: {
    kind: 'Invalid',
    title: 'Refund too large',
    description: 'The refund is more than what remains paid on the order.',
  },
  PAYMENT_FAILED: {
    kind: 'Invalid',
    title: 'Payment failed',
    description: 'The payment provider refused the payment; the order stays pending.',
  },
});

export function notFound(what: string): HttpError {
  return new HttpError(ShopCodes.SHOP_NOT_FOUND, { detail: `No such ${what}.` });
}

/** 412 Precondition Failed, with the item's current `ETag`. */
export class StaleWriteError extends HttpError {
  constructor(current: string) {
    super(ShopCodes.STALE_WRITE, {
      detail: 'The item changed since you read it; read it again and retry.',
      headers: { etag: current },
    });
  }
}
