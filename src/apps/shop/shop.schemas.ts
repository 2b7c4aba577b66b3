import { Type, type Static, type TSchema } from 'typebox';
import { pageSchema, type ListSpec } from '../../platform/db/index.ts';
import { MAX_MONEY } from './shop.money.ts';

const Uuid = Type.String({ format: 'uuid' });
const Slug = Type.String({ minLength: 1, maxLength: 120, pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$' });
const DateTime = Type.String({ format: 'date-time' });
/** Minor units: an integer from 0 to 10^12 (exact as a JSON number). */
const Money = Type.Integer({ minimum: 0, maximum: MAX_MONEY });
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.' });
/** Bounded so that price × quantity stays within what the checks can see. */
export const MAX_QUANTITY = 10_000;
const Quantity = Type.Integer({ minimum: 1, maximum: MAX_QUANTITY });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const SlugParams = Type.Object({ slug: Slug }, { additionalProperties: false });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const ItemIdParams = Type.Object({ itemId: Uuid }, { additionalProperties: false });

// ---- categories

export const CategoryResponse = Type.Object({
  id: Uuid,
  parentId: Nullable(Uuid),
  slug: Type.String(),
  name: Type.String(),
  description: Type.String(),
  depth: Type.Integer(),
  position: Type.Integer(),
});
export type CategoryResponse = Static<typeof CategoryResponse>;

export interface CategoryNode extends CategoryResponse {
  children: CategoryNode[];
}

export const CategoryTreeQuery = Type.Object(
  {
    shape: Type.Optional(
      Type.Union([Type.Literal('nested'), Type.Literal('flat')], { default: 'nested' }),
    ),
  },
  { additionalProperties: false },
);
/** Nested: roots with `children` (each a category with its own `children`); flat: by path. */
export const CategoryTree = Type.Object({
  items: Type.Array(
    Type.Object({
      ...CategoryResponse.properties,
      children: Type.Optional(Type.Array(Type.Unknown())),
    }),
  ),
});

export const CreateCategoryBody = Type.Object(
  {
    slug: Slug,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 5000 })),
    parentId: Type.Optional(Nullable(Uuid)),
    position: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type CreateCategoryBody = Static<typeof CreateCategoryBody>;
export const UpdateCategoryBody = Type.Partial(CreateCategoryBody, { additionalProperties: false });
export type UpdateCategoryBody = Static<typeof UpdateCategoryBody>;
export const DeleteCategoryQuery = Type.Object(
  {
    moveItemsTo: Type.Optional(
      Type.String({ format: 'uuid', description: 'Moves every item of the subtree here first.' }),
    ),
  },
  { additionalProperties: false },
);

// ---- items

export const ImageResponse = Type.Object({
  fileId: Uuid,
  status: Type.Union([Type.Literal('processing'), Type.Literal('ready'), Type.Literal('failed')]),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  blurhash: Nullable(Type.String()),
  path: Nullable(Type.String()),
  variants: Type.Array(
    Type.Object({
      id: Type.String(),
      width: Type.Integer(),
      height: Type.Integer(),
      contentType: Type.String(),
      path: Type.String(),
    }),
  ),
});
export type ImageResponse = Static<typeof ImageResponse>;

const CategoryRef = Type.Object({ id: Uuid, slug: Type.String(), name: Type.String() });

export const ItemSummary = Type.Object({
  id: Uuid,
  sku: Type.String(),
  slug: Type.String(),
  name: Type.String(),
  price: Money,
  currency: Type.String(),
  inStock: Type.Boolean(),
  category: CategoryRef,
  image: Nullable(ImageResponse),
  createdAt: DateTime,
});
export type ItemSummary = Static<typeof ItemSummary>;

export const ItemResponse = Type.Object({
  id: Uuid,
  sku: Type.String(),
  slug: Type.String(),
  name: Type.String(),
  description: Type.String(),
  price: Money,
  currency: Type.String(),
  stock: Type.Integer(),
  inStock: Type.Boolean(),
  active: Type.Boolean(),
  category: CategoryRef,
  attributes: Type.Record(Type.String(), Type.Unknown()),
  images: Type.Array(ImageResponse),
  version: Type.Integer(),
  createdAt: DateTime,
  updatedAt: DateTime,
});
export type ItemResponse = Static<typeof ItemResponse>;

/**
 * Attributes: a JSON object checked by the service for size (SHOP_ATTRIBUTES_MAX_BYTES) and depth
 * (SHOP_ATTRIBUTES_MAX_DEPTH); the body limit refuses anything far larger before parsing.
 */
const Attributes = Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
  description: 'Free JSON (size and depth limited).',
});

export const CreateItemBody = Type.Object(
  {
    sku: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    slug: Slug,
    name: Type.String({ minLength: 1, maxLength: 300 }),
    description: Type.Optional(Type.String({ maxLength: 20_000 })),
    price: Money,
    currency: Currency,
    stock: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    categoryId: Uuid,
    images: Type.Optional(Type.Array(Uuid, { maxItems: 20, uniqueItems: true })),
    attributes: Type.Optional(Attributes),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateItemBody = Static<typeof CreateItemBody>;
export const UpdateItemBody = Type.Partial(CreateItemBody, { additionalProperties: false });
export type UpdateItemBody = Static<typeof UpdateItemBody>;
export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ maxLength: 200, description: 'The ETag read; a stale one answers 412.' }),
  ),
});

export const ItemListQuery = Type.Object(
  {
    category: Type.Optional(Slug),
    minPrice: Type.Optional(Money),
    maxPrice: Type.Optional(Money),
    currency: Type.Optional(Currency),
    inStock: Type.Optional(Type.Boolean()),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    attributes: Type.Optional(
      Type.String({
        maxLength: 1000,
        description:
          'A JSON object of attribute values the items must contain: `{"color":"blue"}`.',
      }),
    ),
    sort: Type.Optional(
      Type.Union(
        [
          Type.Literal('price'),
          Type.Literal('-price'),
          Type.Literal('newest'),
          Type.Literal('name'),
          Type.Literal('relevance'),
        ],
        { description: 'Default: `relevance` with `q`, else `newest`. `relevance` needs `q`.' },
      ),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);
export type ItemListQuery = Static<typeof ItemListQuery>;
export const ItemPage = pageSchema(ItemSummary);

// ---- customers

export const AddressInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    line1: Type.String({ minLength: 1, maxLength: 200 }),
    line2: Type.Optional(Type.String({ maxLength: 200 })),
    city: Type.String({ minLength: 1, maxLength: 100 }),
    postalCode: Type.String({ minLength: 1, maxLength: 20 }),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2.' }),
  },
  { additionalProperties: false },
);
export type AddressInput = Static<typeof AddressInput>;
export const AddressResponse = Type.Object({
  id: Uuid,
  name: Type.String(),
  line1: Type.String(),
  line2: Nullable(Type.String()),
  city: Type.String(),
  postalCode: Type.String(),
  country: Type.String(),
});
export type AddressResponse = Static<typeof AddressResponse>;
export const NewAddressBody = Type.Object(
  {
    ...AddressInput.properties,
    defaultShipping: Type.Optional(Type.Boolean()),
    defaultBilling: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type NewAddressBody = Static<typeof NewAddressBody>;

export const CustomerResponse = Type.Object({
  id: Uuid,
  name: Type.String(),
  phone: Type.String(),
  defaultShippingAddressId: Nullable(Uuid),
  defaultBillingAddressId: Nullable(Uuid),
  addresses: Type.Array(AddressResponse),
});
export type CustomerResponse = Static<typeof CustomerResponse>;
export const UpdateCustomerBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    phone: Type.Optional(Type.String({ maxLength: 32, pattern: '^[+0-9 ()-]*$' })),
    defaultShippingAddressId: Type.Optional(Nullable(Uuid)),
    defaultBillingAddressId: Type.Optional(Nullable(Uuid)),
  },
  { additionalProperties: false },
);
export type UpdateCustomerBody = Static<typeof UpdateCustomerBody>;

// ---- cart

export const CartQuantityBody = Type.Object(
  { quantity: Quantity },
  { additionalProperties: false },
);
export const CartResponse = Type.Object({
  lines: Type.Array(
    Type.Object({
      itemId: Uuid,
      sku: Type.String(),
      slug: Type.String(),
      name: Type.String(),
      unitPrice: Money,
      currency: Type.String(),
      quantity: Type.Integer(),
      lineTotal: Type.Integer(),
      available: Type.Boolean({ description: 'Active and enough in stock right now.' }),
    }),
  ),
  /** Per currency, since a cart may hold several (an order may not). */
  subtotals: Type.Array(Type.Object({ currency: Type.String(), subtotal: Type.Integer() })),
});
export type CartResponse = Static<typeof CartResponse>;

// ---- orders

export const OrderStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('paid'),
  Type.Literal('shipped'),
  Type.Literal('delivered'),
  Type.Literal('cancelled'),
  Type.Literal('refunded'),
]);
export type OrderStatus = Static<typeof OrderStatus>;

export const PlaceOrderBody = Type.Object(
  {
    lines: Type.Optional(
      Type.Array(
        Type.Object({ itemId: Uuid, quantity: Quantity }, { additionalProperties: false }),
        {
          minItems: 1,
          maxItems: 100,
        },
      ),
    ),
    shippingAddressId: Type.Optional(Uuid),
    shippingAddress: Type.Optional(AddressInput),
  },
  { additionalProperties: false },
);
export type PlaceOrderBody = Static<typeof PlaceOrderBody>;

export const OrderLineResponse = Type.Object({
  lineNo: Type.Integer(),
  itemId: Uuid,
  sku: Type.String(),
  name: Type.String(),
  unitPrice: Money,
  quantity: Type.Integer(),
  lineTotal: Type.Integer(),
});
export const OrderSummary = Type.Object({
  id: Uuid,
  customerId: Uuid,
  status: OrderStatus,
  currency: Type.String(),
  subtotal: Type.Integer(),
  shipping: Type.Integer(),
  tax: Type.Integer(),
  total: Type.Integer(),
  refunded: Type.Integer(),
  lineCount: Type.Integer(),
  createdAt: DateTime,
  updatedAt: DateTime,
});
export type OrderSummary = Static<typeof OrderSummary>;
export const OrderResponse = Type.Object({
  ...OrderSummary.properties,
  shippingAddress: Type.Omit(AddressResponse, ['id']),
  paymentReference: Nullable(Type.String()),
  carrier: Nullable(Type.String()),
  trackingNumber: Nullable(Type.String()),
  lines: Type.Array(OrderLineResponse),
  history: Type.Array(
    Type.Object({
      kind: Type.String(),
      at: DateTime,
      actorId: Nullable(Uuid),
      from: Nullable(Type.String()),
      to: Nullable(Type.String()),
      itemId: Nullable(Uuid),
      quantity: Nullable(Type.Integer()),
      amount: Nullable(Type.Integer()),
      reason: Type.String(),
    }),
  ),
});
export type OrderResponse = Static<typeof OrderResponse>;
export const OrderPage = pageSchema(OrderSummary);

export const orderListSpec: ListSpec = {
  name: 'shop-orders',
  sorts: { createdAt: 'created_at' },
  defaultSort: '-createdAt',
};
export const adminOrderListSpec: ListSpec = {
  name: 'shop-admin-orders',
  filters: {
    status: { column: 'status', type: 'string', ops: ['eq', 'in'] },
    customerId: { column: 'customer_id', type: 'uuid', ops: ['eq'] },
    createdAt: { column: 'created_at', type: 'timestamp', ops: ['gte', 'lte'] },
    total: { column: 'total', type: 'integer', ops: ['gte', 'lte'] },
  },
  sorts: { createdAt: 'created_at', total: 'total' },
  defaultSort: '-createdAt',
};
export const OrderListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ maxLength: 3 })),
    cursor: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);

export const PayBody = Type.Object(
  { reference: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);
export const ShipBody = Type.Object(
  {
    carrier: Type.String({ minLength: 1, maxLength: 100 }),
    trackingNumber: Type.String({ minLength: 1, maxLength: 100 }),
  },
  { additionalProperties: false },
);
export const RefundBody = Type.Object(
  {
    amount: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MONEY })),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export const ReasonBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
