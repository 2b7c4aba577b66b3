import type { FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { listQuerySchema } from '../../platform/db/index.ts';
import { currentUser } from '../../platform/identity/index.ts';
import type { ModuleApp } from '../../platform/modules/index.ts';
import { itemEtag, type CatalogService } from './catalog.service.ts';
import type { Actor, OrdersService } from './orders.service.ts';
import { ORDERS_MANAGE, SHOP_MANAGE } from './shop.events.ts';
import {
  adminOrderListSpec,
  CartQuantityBody,
  CartResponse,
  CategoryResponse,
  CategoryTree,
  CategoryTreeQuery,
  CreateCategoryBody,
  CreateItemBody,
  CustomerResponse,
  DeleteCategoryQuery,
  IdParams,
  IfMatchHeaders,
  ItemIdParams,
  ItemListQuery,
  ItemPage,
  ItemResponse,
  NewAddressBody,
  OrderListQuery,
  OrderPage,
  OrderResponse,
  PayBody,
  PlaceOrderBody,
  ReasonBody,
  RefundBody,
  ShipBody,
  SlugParams,
  UpdateCategoryBody,
  UpdateCustomerBody,
  UpdateItemBody,
} from './shop.schemas.ts';

const tags = ['shop'];
const bearer = [{ bearerAuth: [] }];
const NoContent = Type.Null({ description: 'No content.' });
const NOT_FOUND = 'SHOP_NOT_FOUND';

function actor(request: FastifyRequest): Actor {
  return { userId: currentUser(request).userId, requestId: request.id };
}

/** HTTP only: schemas in, a service call, schemas out. Mounted under `/api/v1/shop`. */
export function registerShopRoutes(
  app: ModuleApp,
  catalog: CatalogService,
  orders: OrdersService,
): Promise<void> {
  // ---- categories

  app.get(
    '/categories',
    {
      config: { cache: { maxAge: 60 } },
      schema: {
        tags,
        summary: 'The category tree (nested, or flat in path order)',
        querystring: CategoryTreeQuery,
        response: { 200: CategoryTree },
      },
    },
    (request) => catalog.tree(request.query.shape ?? 'nested'),
  );

  app.get(
    '/categories/:slug',
    {
      config: { cache: { maxAge: 60 } },
      schema: {
        tags,
        summary: 'One category',
        params: SlugParams,
        response: { 200: CategoryResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    (request) => catalog.category(request.params.slug),
  );

  app.post(
    '/categories',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary: 'Create a category (under `parentId`, or a root)',
        security: bearer,
        body: CreateCategoryBody,
        response: { 201: CategoryResponse },
        errorCodes: [NOT_FOUND, 'DUPLICATE_SLUG'],
      },
    },
    async (request, reply) => reply.code(201).send(await catalog.createCategory(request.body)),
  );

  app.patch(
    '/categories/:id',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary: 'Rename, reorder or move a category with its subtree (cycles refused)',
        security: bearer,
        params: IdParams,
        body: UpdateCategoryBody,
        response: { 200: CategoryResponse },
        errorCodes: [NOT_FOUND, 'DUPLICATE_SLUG', 'CATEGORY_CYCLE'],
      },
    },
    (request) => catalog.updateCategory(request.params.id, request.body),
  );

  app.delete(
    '/categories/:id',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary:
          'Delete an empty category, or move its items (`moveItemsTo`) and delete its subtree',
        security: bearer,
        params: IdParams,
        querystring: DeleteCategoryQuery,
        response: { 204: NoContent },
        errorCodes: [NOT_FOUND, 'CATEGORY_NOT_EMPTY', 'CATEGORY_CYCLE'],
      },
    },
    async (request, reply) => {
      await catalog.deleteCategory(request.params.id, request.query.moveItemsTo);
      return reply.code(204).send(null);
    },
  );

  // ---- items

  app.get(
    '/items',
    {
      schema: {
        tags,
        summary: 'List items: by category (with its descendants), price, stock, text, attributes',
        querystring: ItemListQuery,
        response: { 200: ItemPage },
        errorCodes: ['INVALID_LIST_QUERY', 'INVALID_CURSOR'],
      },
    },
    (request) => catalog.list(request.query),
  );

  app.get(
    '/items/:slug',
    {
      // Revalidated on every use: the ETag (id and version) answers 304 while nothing changed.
      config: { cache: { maxAge: 0 } },
      schema: {
        tags,
        summary: 'One listed item, with its images',
        params: SlugParams,
        response: { 200: ItemResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    async (request, reply) => {
      const item = await catalog.item(request.params.slug);
      reply.header('etag', itemEtag(item));
      return item;
    },
  );

  app.get(
    '/admin/items/:id',
    {
      config: { permission: SHOP_MANAGE, cache: 'private' },
      schema: {
        tags,
        summary: 'One item for its admins (inactive too), with the ETag to send as If-Match',
        security: bearer,
        params: IdParams,
        response: { 200: ItemResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    async (request, reply) => {
      const item = await catalog.adminItem(request.params.id);
      reply.header('etag', itemEtag(item));
      return item;
    },
  );

  app.post(
    '/items',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary: 'Create an item',
        security: bearer,
        body: CreateItemBody,
        response: { 201: ItemResponse },
        errorCodes: [
          NOT_FOUND,
          'DUPLICATE_SKU',
          'INVALID_CURRENCY',
          'INVALID_ATTRIBUTES',
          'INVALID_IMAGE',
        ],
      },
    },
    async (request, reply) => {
      const item = await catalog.createItem(request.body);
      return reply.code(201).header('etag', itemEtag(item)).send(item);
    },
  );

  app.patch(
    '/items/:id',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary: 'Change an item; with If-Match, a stale write answers 412',
        security: bearer,
        params: IdParams,
        headers: IfMatchHeaders,
        body: UpdateItemBody,
        response: { 200: ItemResponse },
        errorCodes: [
          NOT_FOUND,
          'DUPLICATE_SKU',
          'INVALID_CURRENCY',
          'INVALID_ATTRIBUTES',
          'INVALID_IMAGE',
          'STALE_WRITE',
        ],
      },
    },
    async (request, reply) => {
      const item = await catalog.updateItem(
        request.params.id,
        request.body,
        request.headers['if-match'],
      );
      return reply.header('etag', itemEtag(item)).send(item);
    },
  );

  app.delete(
    '/items/:id',
    {
      config: { permission: SHOP_MANAGE },
      schema: {
        tags,
        summary: 'Delete an item (soft: past orders keep their lines)',
        security: bearer,
        params: IdParams,
        headers: IfMatchHeaders,
        response: { 204: NoContent },
        errorCodes: [NOT_FOUND, 'STALE_WRITE'],
      },
    },
    async (request, reply) => {
      await catalog.deleteItem(request.params.id, request.headers['if-match']);
      return reply.code(204).send(null);
    },
  );

  // ---- customers

  app.get(
    '/customers/me',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        tags,
        summary: 'The caller’s customer profile (made on first use)',
        security: bearer,
        response: { 200: CustomerResponse },
      },
    },
    (request) => orders.me(actor(request).userId),
  );

  app.patch(
    '/customers/me',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Change the caller’s name, phone or default addresses',
        security: bearer,
        body: UpdateCustomerBody,
        response: { 200: CustomerResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    (request) => orders.updateMe(actor(request).userId, request.body),
  );

  app.post(
    '/customers/me/addresses',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Add an address (the first becomes the default shipping and billing one)',
        security: bearer,
        body: NewAddressBody,
        response: { 201: CustomerResponse },
        errorCodes: ['INVALID_COUNTRY'],
      },
    },
    async (request, reply) =>
      reply.code(201).send(await orders.addAddress(actor(request).userId, request.body)),
  );

  app.delete(
    '/customers/me/addresses/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Remove an address (orders keep their copy)',
        security: bearer,
        params: IdParams,
        response: { 204: NoContent },
        errorCodes: [NOT_FOUND],
      },
    },
    async (request, reply) => {
      await orders.removeAddress(actor(request).userId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  // ---- cart

  app.get(
    '/cart',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        tags,
        summary: 'The caller’s cart, with live prices (it reserves nothing)',
        security: bearer,
        response: { 200: CartResponse },
      },
    },
    (request) => orders.cart(actor(request).userId),
  );

  app.put(
    '/cart/items/:itemId',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Set the quantity of an item in the cart',
        security: bearer,
        params: ItemIdParams,
        body: CartQuantityBody,
        response: { 200: CartResponse },
        errorCodes: ['ITEM_UNAVAILABLE'],
      },
    },
    (request) =>
      orders.setCartLine(actor(request).userId, request.params.itemId, request.body.quantity),
  );

  app.delete(
    '/cart/items/:itemId',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Take an item out of the cart',
        security: bearer,
        params: ItemIdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      await orders.removeCartLine(actor(request).userId, request.params.itemId);
      return reply.code(204).send(null);
    },
  );

  // ---- orders (the customer's)

  app.post(
    '/orders',
    {
      config: { auth: 'required', idempotency: 'required' },
      schema: {
        tags,
        summary: 'Place an order (its lines, or the cart’s); needs an Idempotency-Key',
        security: bearer,
        body: PlaceOrderBody,
        response: { 201: OrderResponse },
        errorCodes: [
          NOT_FOUND,
          'OUT_OF_STOCK',
          'ITEM_UNAVAILABLE',
          'CURRENCY_MISMATCH',
          'AMOUNT_TOO_LARGE',
          'EMPTY_ORDER',
          'ADDRESS_REQUIRED',
          'INVALID_COUNTRY',
        ],
      },
    },
    async (request, reply) => {
      const order = await orders.place(actor(request), request.body);
      return reply
        .code(201)
        .header('location', `${request.url.replace(/\/orders.*$/, '')}/orders/${order.id}`)
        .send(order);
    },
  );

  app.get(
    '/orders',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        tags,
        summary: 'The caller’s orders, newest first',
        security: bearer,
        querystring: OrderListQuery,
        response: { 200: OrderPage },
        errorCodes: ['INVALID_LIST_QUERY', 'INVALID_CURSOR'],
      },
    },
    (request) => orders.list(actor(request).userId, request.query),
  );

  app.get(
    '/orders/:id',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        tags,
        summary: 'One of the caller’s orders, with its lines and history',
        security: bearer,
        params: IdParams,
        response: { 200: OrderResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    (request) => orders.order(request.params.id, actor(request).userId),
  );

  app.post(
    '/orders/:id/cancel',
    {
      config: { auth: 'required', idempotency: true },
      schema: {
        tags,
        summary: 'Cancel one of the caller’s orders while pending or paid (stock returns)',
        security: bearer,
        params: IdParams,
        body: Type.Optional(ReasonBody),
        response: { 200: OrderResponse },
        errorCodes: [NOT_FOUND, 'INVALID_ORDER_TRANSITION'],
      },
    },
    (request) =>
      orders.transition('cancel', request.params.id, actor(request), {
        asCustomer: true,
        reason: request.body?.reason,
      }),
  );

  // ---- orders (admin)

  app.get(
    '/admin/orders',
    {
      config: { permission: ORDERS_MANAGE, cache: 'private' },
      schema: {
        tags,
        summary: 'Every order: filters status, customerId, createdAt, total',
        security: bearer,
        querystring: listQuerySchema(adminOrderListSpec),
        response: { 200: OrderPage },
        errorCodes: ['INVALID_LIST_QUERY', 'INVALID_CURSOR'],
      },
    },
    (request) => orders.adminList(request.query),
  );

  app.get(
    '/admin/orders/:id',
    {
      config: { permission: ORDERS_MANAGE, cache: 'private' },
      schema: {
        tags,
        summary: 'Any order, with its lines and history',
        security: bearer,
        params: IdParams,
        response: { 200: OrderResponse },
        errorCodes: [NOT_FOUND],
      },
    },
    (request) => orders.order(request.params.id),
  );

  /** The admin's order actions: orders:manage, an optional Idempotency-Key, one transition each. */
  const action = <B extends TSchema>(summary: string, body: B, extra: readonly string[] = []) => ({
    config: { permission: ORDERS_MANAGE, idempotency: true as const },
    schema: {
      tags,
      summary,
      security: bearer,
      params: IdParams,
      body,
      response: { 200: OrderResponse },
      errorCodes: [NOT_FOUND, 'INVALID_ORDER_TRANSITION', ...extra],
    },
  });

  app.post(
    '/orders/:id/pay',
    action('Record an order’s payment (pending → paid)', Type.Optional(PayBody), [
      'PAYMENT_FAILED',
    ]),
    (request) =>
      orders.transition('pay', request.params.id, actor(request), {
        reference: request.body?.reference,
      }),
  );

  app.post(
    '/orders/:id/ship',
    action('Ship an order (paid → shipped); mails the customer', ShipBody),
    (request) =>
      orders.transition('ship', request.params.id, actor(request), {
        carrier: request.body.carrier,
        trackingNumber: request.body.trackingNumber,
      }),
  );

  app.post(
    '/orders/:id/deliver',
    action('Mark an order delivered (shipped → delivered)', Type.Optional(ReasonBody)),
    (request) =>
      orders.transition('deliver', request.params.id, actor(request), {
        reason: request.body?.reason,
      }),
  );

  app.post(
    '/orders/:id/refund',
    action(
      'Refund an order, whole or `amount` (partial refunds add up; stock returns if not shipped)',
      Type.Optional(RefundBody),
      ['REFUND_TOO_LARGE'],
    ),
    (request) =>
      orders.transition('refund', request.params.id, actor(request), {
        amount: request.body?.amount,
        reason: request.body?.reason,
      }),
  );
  return Promise.resolve();
}
