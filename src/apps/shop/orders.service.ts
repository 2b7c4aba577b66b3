import { HttpError } from '../../platform/http/index.ts';
import {
  newId,
  paginate,
  parseListQuery,
  withTransaction,
  type AnyDb,
  type PaginateOptions,
} from '../../platform/db/index.ts';
import { accountContact } from '../../platform/identity/index.ts';
import type { Platform } from '../../platform/modules/index.ts';
import type { CatalogService } from './catalog.service.ts';
import {
  cartLines,
  clearCart,
  deleteAddress,
  deleteCartLine,
  ensureCustomer,
  findAddress,
  findOrder,
  insertAddress,
  insertOrder,
  listAddresses,
  orderDetail,
  ordersDb,
  allOrdersBase,
  customerOrdersBase,
  returnStock,
  setCartLine,
  setOrderStatus,
  takeItems,
  updateCustomer,
  writeHistory,
  type AddressRow,
  type CustomerRow,
  type HistoryEntry,
  type OrderDetail,
  type OrderRow,
} from './orders.repository.ts';
import { findItem } from './catalog.repository.ts';
import { isCountry } from './shop.countries.ts';
import { notFound, ShopCodes } from './shop.errors.ts';
import {
  itemLowStock,
  orderCancelled,
  orderDelivered,
  orderPaid,
  orderPlaced,
  orderRefunded,
  orderShipped,
} from './shop.events.ts';
import { formatMoney, orderShippedMail, orderPlacedMail, orderRefundedMail } from './shop.mail.ts';
import { MAX_MONEY, orderTotals } from './shop.money.ts';
import { PaymentDeclined, type PaymentProvider } from './shop.payments.ts';
import {
  adminOrderListSpec,
  orderListSpec,
  type AddressInput,
  type CartResponse,
  type CustomerResponse,
  type NewAddressBody,
  type OrderResponse,
  type OrderStatus,
  type OrderSummary,
  type PlaceOrderBody,
  type UpdateCustomerBody,
} from './shop.schemas.ts';

export interface OrderSettings {
  shippingFlat: number;
  freeShippingOver: number;
  taxBp: number;
  lowStockThreshold: number;
  paging: PaginateOptions;
}

export interface Actor {
  userId: string;
  requestId: string;
}

/** The actions on an order and the statuses each may start from; nothing else is allowed. */
export const TRANSITIONS = {
  pay: { from: ['pending'], to: 'paid' },
  ship: { from: ['paid'], to: 'shipped' },
  deliver: { from: ['shipped'], to: 'delivered' },
  cancel: { from: ['pending', 'paid'], to: 'cancelled' },
  refund: { from: ['paid', 'shipped', 'delivered'], to: 'refunded' },
} as const satisfies Record<string, { from: readonly OrderStatus[]; to: OrderStatus }>;
export type OrderAction = keyof typeof TRANSITIONS;

/** Thrown inside an order's transaction when the account has no customer profile yet. */
class NoCustomerYet extends Error {}

/** Statuses in which the goods have not left: giving the order up returns its stock. */
const BEFORE_SHIPMENT: readonly string[] = ['pending', 'paid'];

const PAST: Record<OrderAction, string> = {
  pay: 'paid',
  ship: 'shipped',
  deliver: 'delivered',
  cancel: 'cancelled',
  refund: 'refunded',
};

function invalidTransition(action: OrderAction, status: string): HttpError {
  return new HttpError(ShopCodes.INVALID_ORDER_TRANSITION, {
    detail: `The order is ${status}: it cannot be ${PAST[action]}.`,
    // `status` is the problem's own member (the HTTP status): the order's is `currentStatus`.
    extensions: { currentStatus: status },
  });
}

function toAddress(a: AddressRow) {
  return { ...a, line2: a.line2 ?? null };
}

function toSummary(o: {
  id: string;
  customerId: string;
  status: string;
  currency: string;
  subtotal: string;
  shipping: string;
  tax: string;
  total: string;
  refunded: string;
  lineCount: number;
  createdAt: Date;
  updatedAt: Date;
}): OrderSummary {
  return {
    id: o.id,
    customerId: o.customerId,
    status: o.status as OrderStatus,
    currency: o.currency,
    subtotal: Number(o.subtotal),
    shipping: Number(o.shipping),
    tax: Number(o.tax),
    total: Number(o.total),
    refunded: Number(o.refunded),
    lineCount: o.lineCount,
    createdAt: new Date(o.createdAt).toISOString(),
    updatedAt: new Date(o.updatedAt).toISOString(),
  };
}

function toOrder(o: OrderDetail): OrderResponse {
  return {
    ...toSummary(o),
    shippingAddress: { ...o.shippingAddress, line2: o.shippingAddress.line2 ?? null },
    paymentReference: o.paymentReference,
    carrier: o.carrier,
    trackingNumber: o.trackingNumber,
    lines: o.lines.map((l) => ({
      ...l,
      unitPrice: Number(l.unitPrice),
      lineTotal: Number(l.lineTotal),
    })),
    history: o.history.map((h) => ({
      ...h,
      at: new Date(h.at).toISOString(),
      amount: h.amount === null ? null : Number(h.amount),
    })),
  };
}

/** Customers, carts and orders: the rules. No Fastify, no SQL. */
export class OrdersService {
  readonly #platform: Platform;
  readonly #settings: OrderSettings;
  readonly #payments: PaymentProvider;
  readonly #catalog: CatalogService;

  constructor(
    platform: Platform,
    settings: OrderSettings,
    payments: PaymentProvider,
    catalog: CatalogService,
  ) {
    this.#platform = platform;
    this.#settings = settings;
    this.#payments = payments;
    this.#catalog = catalog;
  }

  get #db() {
    return this.#platform.database.db;
  }

  #customer(db: AnyDb, userId: string): Promise<CustomerRow> {
    return ensureCustomer(db, userId, newId());
  }

  // ---- customers

  async me(userId: string): Promise<CustomerResponse> {
    const customer = await this.#customer(this.#db, userId);
    const addresses = await listAddresses(this.#db, customer.id);
    return {
      id: customer.id,
      name: customer.name,
      phone: customer.phone,
      defaultShippingAddressId: customer.defaultShippingAddressId,
      defaultBillingAddressId: customer.defaultBillingAddressId,
      addresses: addresses.map(toAddress),
    };
  }

  async updateMe(userId: string, input: UpdateCustomerBody): Promise<CustomerResponse> {
    await withTransaction(this.#db, async (trx) => {
      const customer = await this.#customer(trx, userId);
      for (const id of [input.defaultShippingAddressId, input.defaultBillingAddressId])
        if (id && !(await findAddress(trx, customer.id, id))) throw notFound('address');
      await updateCustomer(trx, customer.id, input);
    });
    return this.me(userId);
  }

  #checkCountry(address: AddressInput): void {
    if (!isCountry(address.country))
      throw new HttpError(ShopCodes.INVALID_COUNTRY, {
        detail: `${address.country} is not an ISO 3166-1 alpha-2 country code.`,
      });
  }

  async addAddress(userId: string, input: NewAddressBody): Promise<CustomerResponse> {
    this.#checkCountry(input);
    await withTransaction(this.#db, async (trx) => {
      const customer = await this.#customer(trx, userId);
      const id = newId();
      await insertAddress(trx, customer.id, {
        id,
        name: input.name,
        line1: input.line1,
        line2: input.line2 ?? null,
        city: input.city,
        postalCode: input.postalCode,
        country: input.country,
      });
      // The first address of each kind becomes its default, unless told otherwise.
      const shipping =
        (input.defaultShipping ?? customer.defaultShippingAddressId === null) ? id : undefined;
      const billing =
        (input.defaultBilling ?? customer.defaultBillingAddressId === null) ? id : undefined;
      await updateCustomer(trx, customer.id, {
        ...(input.defaultShipping !== false && shipping ? { defaultShippingAddressId: id } : {}),
        ...(input.defaultBilling !== false && billing ? { defaultBillingAddressId: id } : {}),
      });
    });
    return this.me(userId);
  }

  async removeAddress(userId: string, id: string): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const customer = await this.#customer(trx, userId);
      if (!(await deleteAddress(trx, customer.id, id))) throw notFound('address');
    });
  }

  // ---- cart

  async cart(userId: string): Promise<CartResponse> {
    const customer = await this.#customer(this.#db, userId);
    const lines = await cartLines(this.#db, customer.id);
    const subtotals = new Map<string, bigint>();
    const out = lines.map((l) => {
      const lineTotal = BigInt(l.price) * BigInt(l.quantity);
      subtotals.set(l.currency, (subtotals.get(l.currency) ?? 0n) + lineTotal);
      return {
        itemId: l.itemId,
        sku: l.sku,
        slug: l.slug,
        name: l.name,
        unitPrice: Number(l.price),
        currency: l.currency,
        quantity: l.quantity,
        lineTotal: Number(lineTotal),
        available: l.active && l.stock >= l.quantity,
      };
    });
    return {
      lines: out,
      subtotals: [...subtotals].map(([currency, subtotal]) => ({
        currency,
        subtotal: Number(subtotal),
      })),
    };
  }

  /** Sets a cart line; the item must be listed (active, not deleted). A cart reserves nothing. */
  async setCartLine(userId: string, itemId: string, quantity: number): Promise<CartResponse> {
    await withTransaction(this.#db, async (trx) => {
      const item = await findItem(trx, { id: itemId }, { includeInactive: true });
      if (!item || !item.active)
        throw new HttpError(ShopCodes.ITEM_UNAVAILABLE, {
          detail: 'This item is not for sale (inactive or deleted).',
        });
      const customer = await this.#customer(trx, userId);
      await setCartLine(trx, customer.id, itemId, quantity);
    });
    return this.cart(userId);
  }

  async removeCartLine(userId: string, itemId: string): Promise<void> {
    const customer = await this.#customer(this.#db, userId);
    await deleteCartLine(this.#db, customer.id, itemId);
  }

  // ---- orders

  /**
   * Places an order in one transaction: the items locked in id order and every line's stock taken
   * with `stock = stock - n where stock >= n` in one statement, or nothing at all (409
   * OUT_OF_STOCK naming each short item), the totals computed here from the locked prices, then
   * the order, its lines and its history in one statement, its events and its confirmation mail,
   * all committed together.
   */
  async place(actor: Actor, input: PlaceOrderBody): Promise<OrderResponse> {
    if (input.shippingAddress) this.#checkCountry(input.shippingAddress);
    let placed: { slugs: string[]; order: OrderDetail };
    try {
      placed = await this.#place(actor, input, false);
    } catch (error) {
      if (!(error instanceof NoCustomerYet)) throw error;
      // The account's first use of the shop: its profile is made with no row locked (made
      // after the items' locks, it could wait on another first order of the same account that
      // holds its unique key and waits for those locks), then the order is placed anew.
      await this.#customer(this.#db, actor.userId);
      placed = await this.#place(actor, input, true);
    }
    await this.#catalog.stockMoved(placed.slugs);
    return toOrder(placed.order);
  }

  #place(
    actor: Actor,
    input: PlaceOrderBody,
    customerFirst: boolean,
  ): Promise<{ slugs: string[]; order: OrderDetail }> {
    return withTransaction(this.#db, async (trx) => {
      // The profile is read first when the order needs it for its lines (the cart) or its
      // address (a saved one); otherwise the stock statement reads its id along (a round trip
      // less per order).
      const customer =
        customerFirst ||
        input.lines === undefined ||
        input.shippingAddressId !== undefined ||
        input.shippingAddress === undefined
          ? await this.#customer(trx, actor.userId)
          : undefined;
      let requested = input.lines;
      const fromCart = requested === undefined;
      if (fromCart && customer) {
        requested = (await cartLines(trx, customer.id)).map((l) => ({
          itemId: l.itemId,
          quantity: l.quantity,
        }));
      }
      if (!requested || requested.length === 0)
        throw new HttpError(ShopCodes.EMPTY_ORDER, {
          detail: 'Give lines, or put items in the cart first.',
        });

      let address: Omit<AddressRow, 'id'>;
      if (customer && input.shippingAddressId !== undefined) {
        const found = await findAddress(trx, customer.id, input.shippingAddressId);
        if (!found) throw notFound('address');
        const { id: _, ...rest } = found;
        address = rest;
      } else if (input.shippingAddress) {
        address = { ...input.shippingAddress, line2: input.shippingAddress.line2 ?? null };
      } else if (customer?.defaultShippingAddressId) {
        const found = await findAddress(trx, customer.id, customer.defaultShippingAddressId);
        if (!found) throw new HttpError(ShopCodes.ADDRESS_REQUIRED);
        const { id: _, ...rest } = found;
        address = rest;
      } else {
        throw new HttpError(ShopCodes.ADDRESS_REQUIRED, {
          detail: 'Give shippingAddressId or shippingAddress, or set a default shipping address.',
        });
      }

      // One line per item, in id order: the order every transaction locks and updates rows in.
      const merged = new Map<string, number>();
      for (const l of requested) merged.set(l.itemId, (merged.get(l.itemId) ?? 0) + l.quantity);
      const lines = [...merged]
        .map(([itemId, quantity]) => ({ itemId, quantity }))
        .sort((a, b) => (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0));

      const took = await takeItems(trx, actor.userId, lines);
      const items = new Map(took.items.map((i) => [i.id, i]));
      const unavailable = lines.filter((l) => {
        const item = items.get(l.itemId);
        return !item || item.deleted || !item.active;
      });
      if (unavailable.length > 0)
        throw new HttpError(ShopCodes.ITEM_UNAVAILABLE, {
          detail: 'Some items are not for sale (inactive, deleted or unknown).',
          extensions: { items: unavailable.map((l) => ({ itemId: l.itemId })) },
        });
      const currencies = new Set(lines.map((l) => items.get(l.itemId)?.currency));
      if (currencies.size > 1)
        throw new HttpError(ShopCodes.CURRENCY_MISMATCH, {
          detail: `An order holds one currency; these items are in ${[...currencies].sort().join(', ')}.`,
        });
      const short = lines.filter((l) => (items.get(l.itemId)?.stock ?? 0) < l.quantity);
      if (short.length > 0) throw this.#outOfStock(short, items);
      // Every line could be filled, so the statement took them all (the rows stay locked); a
      // line not taken would be a bug, and it still refuses the whole order.
      const notTaken = lines.filter((l) => (items.get(l.itemId)?.stockAfter ?? null) === null);
      if (notTaken.length > 0) throw this.#outOfStock(notTaken, items);
      const customerId = customer?.id ?? took.customerId;
      if (customerId === null) throw new NoCustomerYet();

      const priced = lines.map((l) => {
        const item = items.get(l.itemId);
        if (!item) throw new Error('locked item missing');
        const unitPrice = BigInt(item.price);
        return {
          itemId: l.itemId,
          sku: item.sku,
          name: item.name,
          unitPrice,
          quantity: l.quantity,
          lineTotal: unitPrice * BigInt(l.quantity),
        };
      });
      const totals = orderTotals(priced, this.#settings);
      if (totals.total > BigInt(MAX_MONEY))
        throw new HttpError(ShopCodes.AMOUNT_TOO_LARGE, {
          detail: `An order's total is at most ${MAX_MONEY} minor units.`,
        });

      const currency = [...currencies][0] as string;
      const orderId = newId();
      const history: HistoryEntry[] = [
        {
          orderId,
          kind: 'status',
          actorId: actor.userId,
          from: null,
          to: 'pending',
          reason: 'placed',
        },
        ...lines.map((l): HistoryEntry => ({
          orderId,
          kind: 'stock',
          actorId: actor.userId,
          itemId: l.itemId,
          quantity: -l.quantity,
          reason: 'taken by the order',
        })),
      ];
      const order = await insertOrder(
        trx,
        {
          id: orderId,
          customerId,
          userId: actor.userId,
          currency,
          ...totals,
          shippingAddress: address,
          lines: priced,
        },
        history,
      );
      if (fromCart && customer) await clearCart(trx, customer.id);
      await this.#publish(trx, orderPlaced, order, actor);
      const threshold = this.#settings.lowStockThreshold;
      for (const t of took.items) {
        if (t.stockAfter !== null && t.stockAfter <= threshold && t.stock > threshold)
          await this.#platform.events.publish(trx, itemLowStock, {
            data: { itemId: t.id, sku: t.sku, stock: t.stockAfter, threshold },
            subject: { type: 'shop.item', id: t.id },
            actorId: actor.userId,
            requestId: actor.requestId,
          });
      }
      const contact = await accountContact(trx, actor.userId);
      if (contact)
        await this.#platform.mail.send(
          {
            template: orderPlacedMail,
            to: contact.email,
            vars: {
              username: contact.username,
              orderId: order.id,
              total: formatMoney(totals.total, currency),
              lines: priced.map((l) => `${l.quantity} × ${l.name} (${l.sku})`).join('\n'),
            },
            userId: actor.userId,
            requestId: actor.requestId,
          },
          { trx },
        );
      // The answer is built from what was written (no read back: one statement less per order).
      const at = new Date(order.createdAt).toISOString();
      const detail: OrderDetail = {
        ...order,
        lines: priced.map((l, i) => ({
          lineNo: i + 1,
          itemId: l.itemId,
          sku: l.sku,
          name: l.name,
          unitPrice: l.unitPrice.toString(),
          quantity: l.quantity,
          lineTotal: l.lineTotal.toString(),
        })),
        history: history.map((e) => ({
          kind: e.kind,
          at,
          actorId: e.actorId,
          from: e.from ?? null,
          to: e.to ?? null,
          itemId: e.itemId ?? null,
          quantity: e.quantity ?? null,
          amount: null,
          reason: e.reason,
        })),
      };
      return { order: detail, slugs: took.items.map((i) => i.slug) };
    });
  }

  #outOfStock(
    short: readonly { itemId: string; quantity: number }[],
    items: Map<string, { sku: string; stock: number }>,
  ): HttpError {
    const list = short.map((l) => ({
      itemId: l.itemId,
      sku: items.get(l.itemId)?.sku ?? null,
      requested: l.quantity,
      available: items.get(l.itemId)?.stock ?? 0,
    }));
    return new HttpError(ShopCodes.OUT_OF_STOCK, {
      detail: `Not enough stock: ${list.map((s) => `${s.sku ?? s.itemId} (${s.available} left, ${s.requested} asked)`).join(', ')}. Nothing was ordered.`,
      extensions: { items: list },
    });
  }

  async #publish(
    trx: AnyDb,
    type: typeof orderPlaced,
    order: Pick<OrderRow, 'id' | 'customerId' | 'userId' | 'currency' | 'total'> & {
      status: string;
    },
    actor: Actor | null,
    extra: { amount?: number; refunded?: number } = {},
  ): Promise<void> {
    await this.#platform.events.publish(trx, type, {
      data: {
        orderId: order.id,
        customerId: order.customerId,
        status: order.status,
        currency: order.currency,
        total: Number(order.total),
        ...extra,
      },
      subject: { type: 'shop.order', id: order.id },
      actorId: actor?.userId ?? null,
      ownerId: order.userId,
      requestId: actor?.requestId ?? null,
    });
  }

  async order(id: string, userId?: string): Promise<OrderResponse> {
    let customerId: string | undefined;
    if (userId !== undefined) customerId = (await this.#customer(this.#db, userId)).id;
    const detail = await orderDetail(this.#db, id, customerId);
    if (!detail) throw notFound('order');
    return toOrder(detail);
  }

  /** The caller's orders: one statement per page (the profile is looked up inside it). */
  async list(userId: string, query: Readonly<Record<string, unknown>>) {
    const db = ordersDb(this.#db);
    const list = parseListQuery(orderListSpec, query);
    const base = customerOrdersBase(db, userId);
    const page = await paginate(db, orderListSpec, list, base, this.#settings.paging);
    return { items: page.items.map(toSummary), page: page.page };
  }

  readonly #adminBase = () => allOrdersBase(this.#db);

  async adminList(query: Readonly<Record<string, unknown>>) {
    const list = parseListQuery(adminOrderListSpec, query);
    const page = await paginate(
      ordersDb(this.#db),
      adminOrderListSpec,
      list,
      this.#adminBase,
      this.#settings.paging,
    );
    return { items: page.items.map(toSummary), page: page.page };
  }

  /**
   * One status change, in one transaction with the order row locked: the action must start from
   * an allowed status (409 INVALID_ORDER_TRANSITION naming the current one otherwise); stock
   * returns with the change when the goods have not left; history, event and mail commit with it.
   */
  async transition(
    action: OrderAction,
    orderId: string,
    actor: Actor,
    options: {
      /** The customer's own cancellation: another customer's order is not found. */
      asCustomer?: boolean;
      reference?: string | undefined;
      carrier?: string;
      trackingNumber?: string;
      amount?: number | undefined;
      reason?: string | undefined;
    } = {},
  ): Promise<OrderResponse> {
    const returned = await withTransaction(this.#db, async (trx) => {
      let customerId: string | undefined;
      if (options.asCustomer) customerId = (await this.#customer(trx, actor.userId)).id;
      const order = await findOrder(trx, orderId, {
        lock: true,
        ...(customerId !== undefined ? { customerId } : {}),
      });
      if (!order) throw notFound('order');
      const rule = TRANSITIONS[action];
      if (!(rule.from as readonly string[]).includes(order.status))
        throw invalidTransition(action, order.status);
      const total = BigInt(order.total);
      const history: HistoryEntry[] = [];
      const status = (to: string, reason: string) =>
        history.push({
          orderId,
          kind: 'status',
          actorId: actor.userId,
          from: order.status,
          to,
          reason,
        });
      let returnedItems: string[] = [];
      const giveBack = async () => {
        const moved = await returnStock(trx, orderId);
        returnedItems = moved.map((m) => m.slug);
        for (const m of moved)
          history.push({
            orderId,
            kind: 'stock',
            actorId: actor.userId,
            itemId: m.id,
            quantity: m.quantity,
            reason: `returned (${action})`,
          });
      };
      const charge = async () => {
        try {
          return await this.#payments.charge({
            orderId,
            amount: Number(order.total),
            currency: order.currency,
            reference: options.reference,
          });
        } catch (error) {
          if (error instanceof PaymentDeclined)
            throw new HttpError(ShopCodes.PAYMENT_FAILED, { detail: error.message });
          throw error;
        }
      };

      switch (action) {
        case 'pay': {
          const { reference } = await charge();
          await setOrderStatus(trx, orderId, 'paid', { paymentReference: reference });
          status('paid', options.reason ?? `payment ${reference}`);
          await this.#publish(trx, orderPaid, { ...order, status: 'paid' }, actor);
          break;
        }
        case 'ship': {
          await setOrderStatus(trx, orderId, 'shipped', {
            carrier: options.carrier ?? '',
            trackingNumber: options.trackingNumber ?? '',
          });
          status('shipped', `${options.carrier ?? ''} ${options.trackingNumber ?? ''}`.trim());
          await this.#publish(trx, orderShipped, { ...order, status: 'shipped' }, actor);
          const contact = await accountContact(trx, order.userId);
          if (contact)
            await this.#platform.mail.send(
              {
                template: orderShippedMail,
                to: contact.email,
                vars: {
                  username: contact.username,
                  orderId,
                  carrier: options.carrier ?? '',
                  trackingNumber: options.trackingNumber ?? '',
                },
                userId: actor.userId,
                requestId: actor.requestId,
              },
              { trx },
            );
          break;
        }
        case 'deliver': {
          await setOrderStatus(trx, orderId, 'delivered');
          status('delivered', options.reason ?? 'delivered');
          await this.#publish(trx, orderDelivered, { ...order, status: 'delivered' }, actor);
          break;
        }
        case 'cancel': {
          // Money taken is given back whole: a paid order cancelled is refunded what remains
          // (partial refunds before it count), recorded as a refund entry.
          let refunded: bigint | undefined;
          const remaining = total - BigInt(order.refunded);
          if (order.status === 'paid' && order.paymentReference && remaining > 0n) {
            await this.#payments.refund({
              orderId,
              reference: order.paymentReference,
              amount: Number(remaining),
              currency: order.currency,
            });
            refunded = total;
            history.push({
              orderId,
              kind: 'refund',
              actorId: actor.userId,
              from: order.status,
              to: 'cancelled',
              amount: remaining,
              reason: 'refunded with the cancellation',
            });
          }
          await setOrderStatus(
            trx,
            orderId,
            'cancelled',
            refunded !== undefined ? { refunded } : {},
          );
          status(
            'cancelled',
            options.reason ?? (options.asCustomer ? 'cancelled by the customer' : 'cancelled'),
          );
          await giveBack();
          await this.#publish(trx, orderCancelled, { ...order, status: 'cancelled' }, actor);
          break;
        }
        case 'refund': {
          const already = BigInt(order.refunded);
          const remaining = total - already;
          const amount = options.amount === undefined ? remaining : BigInt(options.amount);
          if (amount <= 0n || amount > remaining)
            throw new HttpError(ShopCodes.REFUND_TOO_LARGE, {
              detail: `At most ${remaining} minor units remain to refund on this order.`,
            });
          await this.#payments.refund({
            orderId,
            reference: order.paymentReference ?? '',
            amount: Number(amount),
            currency: order.currency,
          });
          const refunded = already + amount;
          const full = refunded === total;
          // A partial refund is recorded and leaves the status; the last one makes it refunded.
          await setOrderStatus(trx, orderId, full ? 'refunded' : order.status, { refunded });
          history.push({
            orderId,
            kind: 'refund',
            actorId: actor.userId,
            from: order.status,
            to: full ? 'refunded' : order.status,
            amount,
            reason: options.reason ?? (full ? 'refunded' : 'partial refund'),
          });
          if (full) {
            status('refunded', options.reason ?? 'refunded in full');
            if (BEFORE_SHIPMENT.includes(order.status)) await giveBack();
          }
          await this.#publish(
            trx,
            orderRefunded,
            { ...order, status: full ? 'refunded' : order.status },
            actor,
            { amount: Number(amount), refunded: Number(refunded) },
          );
          const contact = await accountContact(trx, order.userId);
          if (contact)
            await this.#platform.mail.send(
              {
                template: orderRefundedMail,
                to: contact.email,
                vars: {
                  username: contact.username,
                  orderId,
                  amount: formatMoney(amount, order.currency),
                },
                userId: actor.userId,
                requestId: actor.requestId,
              },
              { trx },
            );
          break;
        }
      }
      await writeHistory(trx, history);
      return returnedItems;
    });
    await this.#catalog.stockMoved(returned);
    return this.order(orderId);
  }
}
