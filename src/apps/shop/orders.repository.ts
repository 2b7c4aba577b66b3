import type { ColumnType, Kysely } from 'kysely';
import { sql, type RawBuilder } from 'kysely';
import { executePrepared, tablesOf, type AnyDb } from '../../platform/db/index.ts';

/** The order tables as Kysely sees them (for the platform's paginated listings). */
export interface OrdersDB {
  shop_order: {
    id: string;
    customer_id: string;
    user_id: string;
    status: string;
    currency: string;
    subtotal: string;
    shipping: string;
    tax: string;
    total: string;
    refunded: string;
    line_count: number;
    created_at: ColumnType<Date, never, never>;
    updated_at: ColumnType<Date, never, never>;
  };
  shop_customer: { id: string; user_id: string };
}

export function ordersDb(db: AnyDb): Kysely<OrdersDB> {
  return tablesOf<OrdersDB>(db);
}

// ---- customers and addresses

export interface CustomerRow {
  id: string;
  userId: string;
  name: string;
  phone: string;
  defaultShippingAddressId: string | null;
  defaultBillingAddressId: string | null;
}

const CUSTOMER = sql`id, user_id as "userId", name, phone,
  default_shipping_address_id as "defaultShippingAddressId",
  default_billing_address_id as "defaultBillingAddressId"`;

export async function findCustomer(db: AnyDb, userId: string): Promise<CustomerRow | undefined> {
  const { rows } =
    await sql<CustomerRow>`select ${CUSTOMER} from shop_customer where user_id = ${userId}`.execute(
      db,
    );
  return rows[0];
}

/** The account's customer profile, made on first use (a read first: most calls find it). */
export async function ensureCustomer(db: AnyDb, userId: string, id: string): Promise<CustomerRow> {
  const found = await findCustomer(db, userId);
  if (found) return found;
  const { rows } = await sql<CustomerRow>`
    insert into shop_customer (id, user_id) values (${id}, ${userId})
    on conflict (user_id) do nothing
    returning ${CUSTOMER}`.execute(db);
  // Nothing returned: a concurrent first use made it meanwhile.
  const row = rows[0] ?? (await findCustomer(db, userId));
  if (!row) throw new Error('customer profile vanished');
  return row;
}

export async function updateCustomer(
  db: AnyDb,
  id: string,
  fields: {
    name?: string;
    phone?: string;
    defaultShippingAddressId?: string | null;
    defaultBillingAddressId?: string | null;
  },
): Promise<void> {
  const sets: RawBuilder<unknown>[] = [];
  if (fields.name !== undefined) sets.push(sql`name = ${fields.name}`);
  if (fields.phone !== undefined) sets.push(sql`phone = ${fields.phone}`);
  if (fields.defaultShippingAddressId !== undefined)
    sets.push(sql`default_shipping_address_id = ${fields.defaultShippingAddressId}`);
  if (fields.defaultBillingAddressId !== undefined)
    sets.push(sql`default_billing_address_id = ${fields.defaultBillingAddressId}`);
  if (sets.length === 0) return;
  await sql`update shop_customer set ${sql.join(sets)} where id = ${id}`.execute(db);
}

export interface AddressRow {
  id: string;
  name: string;
  line1: string;
  line2: string | null;
  city: string;
  postalCode: string;
  country: string;
}

const ADDRESS = sql`id, name, line1, line2, city, postal_code as "postalCode", country`;

export async function listAddresses(db: AnyDb, customerId: string): Promise<AddressRow[]> {
  const { rows } = await sql<AddressRow>`
    select ${ADDRESS} from shop_address where customer_id = ${customerId} and deleted_at is null
     order by created_at, id`.execute(db);
  return rows;
}

/** The customer's own live address; another customer's is not found. */
export async function findAddress(
  db: AnyDb,
  customerId: string,
  id: string,
): Promise<AddressRow | undefined> {
  const { rows } = await sql<AddressRow>`
    select ${ADDRESS} from shop_address
     where id = ${id} and customer_id = ${customerId} and deleted_at is null`.execute(db);
  return rows[0];
}

export async function insertAddress(db: AnyDb, customerId: string, a: AddressRow): Promise<void> {
  await sql`
    insert into shop_address (id, customer_id, name, line1, line2, city, postal_code, country)
    values (${a.id}, ${customerId}, ${a.name}, ${a.line1}, ${a.line2}, ${a.city}, ${a.postalCode}, ${a.country})`.execute(
    db,
  );
}

export async function deleteAddress(db: AnyDb, customerId: string, id: string): Promise<boolean> {
  const { rows } = await sql<{ id: string }>`
    update shop_address set deleted_at = now()
     where id = ${id} and customer_id = ${customerId} and deleted_at is null returning id`.execute(
    db,
  );
  if (rows.length === 0) return false;
  await sql`
    update shop_customer
       set default_shipping_address_id = nullif(default_shipping_address_id, ${id}),
           default_billing_address_id = nullif(default_billing_address_id, ${id})
     where id = ${customerId}`.execute(db);
  return true;
}

// ---- cart

export interface CartLineRow {
  itemId: string;
  sku: string;
  slug: string;
  name: string;
  price: string;
  currency: string;
  stock: number;
  active: boolean;
  quantity: number;
}

/** The cart with each item's live price and availability (deleted items drop out). */
export async function cartLines(db: AnyDb, customerId: string): Promise<CartLineRow[]> {
  const { rows } = await sql<CartLineRow>`
    select l.item_id as "itemId", i.sku, i.slug, i.name, i.price::text as price, i.currency,
           i.stock, i.active, l.quantity
      from shop_cart_line l join shop_item i on i.id = l.item_id
     where l.customer_id = ${customerId} and i.deleted_at is null
     order by l.added_at, l.item_id`.execute(db);
  return rows;
}

export async function setCartLine(
  db: AnyDb,
  customerId: string,
  itemId: string,
  quantity: number,
): Promise<void> {
  await sql`
    insert into shop_cart_line (customer_id, item_id, quantity) values (${customerId}, ${itemId}, ${quantity})
    on conflict (customer_id, item_id) do update set quantity = excluded.quantity`.execute(db);
}

export async function deleteCartLine(
  db: AnyDb,
  customerId: string,
  itemId: string,
): Promise<boolean> {
  const r =
    await sql`delete from shop_cart_line where customer_id = ${customerId} and item_id = ${itemId}`.execute(
      db,
    );
  return Number(r.numAffectedRows ?? 0) > 0;
}

export async function clearCart(db: AnyDb, customerId: string): Promise<void> {
  await sql`delete from shop_cart_line where customer_id = ${customerId}`.execute(db);
}

// ---- stock

export interface StockItem {
  id: string;
  sku: string;
  slug: string;
  name: string;
  price: string;
  currency: string;
  /** The stock when locked, before this order. */
  stock: number;
  active: boolean;
  deleted: boolean;
  /** The stock after this order took its quantity; null when nothing was taken. */
  stockAfter: number | null;
}

/**
 * What an order reads and takes, in one round trip: the ordering account's customer id (null
 * before its first use) and the ordered items locked in id order (the same order in every
 * transaction, so two orders never wait on each other in a cycle) with what the order snapshots;
 * then, only when every line can be filled (every item found, for sale, in one currency, with
 * `stock >= n`), every line's stock taken with `stock = stock - n where stock >= n`. Otherwise
 * nothing is taken and the rows say why (`stockAfter` null).
 *
 * The locking CTE is materialised and the update joins the verdict, an aggregate over every
 * locked row: no row is updated before all of them are locked, in id order. The condition
 * `stock >= n` is the locked row's: under READ COMMITTED a lock returns the row's latest version,
 * while the update's own scan may see the version of the statement's snapshot, older when the
 * lock waited on another transaction (a filter on it could refuse stock returned meanwhile; the
 * update itself re-reads the latest version, so `stock - n` is computed on what was locked). The
 * table's `check (stock >= 0)` stands behind it. `lines` must name each item once.
 */
export async function takeItems(
  db: AnyDb,
  userId: string,
  lines: readonly { itemId: string; quantity: number }[],
): Promise<{ customerId: string | null; items: StockItem[] }> {
  const req = JSON.stringify(lines.map((l) => ({ id: l.itemId, qty: l.quantity })));
  // A named prepared statement (as insertOrder's), planned once per connection rather than on
  // every order (planning cost more than running it). The lines travel as one JSON parameter:
  // PostgreSQL estimates `jsonb_to_recordset` at the same row count whatever the value, so the
  // generic plan costs no more than a custom one and its plan cache keeps it (with arrays and
  // `unnest`, a custom plan knows the array's length, looks cheaper, and is planned every time).
  const { rows } = await executePrepared(
    db,
    sql<StockItem & { customerId: string | null }>`
    with req as (select * from jsonb_to_recordset(${req}::jsonb) as r(id uuid, qty int)),
    locked as materialized (
      select i.id, i.sku, i.slug, i.name, i.price, i.currency, i.stock, i.active,
             i.deleted_at is not null as deleted
        from shop_item i where i.id in (select id from req) order by i.id for update),
    verdict as (
      select count(*) = ${lines.length}::int
             and bool_and(l.active and not l.deleted and l.stock >= r.qty)
             and count(distinct l.currency) = 1 as go
        from locked l join req r on r.id = l.id),
    taken as (
      update shop_item i set stock = i.stock - r.qty, version = i.version + 1
        from locked l join req r on r.id = l.id, verdict v
       where v.go and i.id = l.id and l.stock >= r.qty
      returning i.id, i.stock)
    select (select c.id from shop_customer c where c.user_id = ${userId}) as "customerId",
           l.id, l.sku, l.slug, l.name, l.price::text as price, l.currency, l.stock, l.active,
           l.deleted, t.stock as "stockAfter"
      from locked l left join taken t on t.id = l.id
     order by l.id`,
  );
  // No row: no item found (the order is refused for that; the customer does not matter).
  return {
    customerId: rows[0]?.customerId ?? null,
    items: rows.map(({ customerId: _, ...item }) => item),
  };
}

/** Gives an order's stock back (cancellation, refund before shipment); returns the new stock. */
export async function returnStock(
  db: AnyDb,
  orderId: string,
): Promise<{ id: string; slug: string; quantity: number; stock: number }[]> {
  // Locked first, in id order, as placing an order does: the two never wait on each other in a cycle.
  await sql`
    select id from shop_item
     where id in (select item_id from shop_order_line where order_id = ${orderId})
     order by id for update`.execute(db);
  const { rows } = await sql<{ id: string; slug: string; quantity: number; stock: number }>`
    with q as (
      select item_id, sum(quantity)::int as quantity from shop_order_line
       where order_id = ${orderId} group by item_id)
    update shop_item i set stock = i.stock + q.quantity, version = i.version + 1
      from q where i.id = q.item_id
    returning i.id, i.slug, q.quantity, i.stock`.execute(db);
  return rows;
}

// ---- orders

export interface OrderRow {
  id: string;
  customerId: string;
  userId: string;
  status: string;
  currency: string;
  subtotal: string;
  shipping: string;
  tax: string;
  total: string;
  refunded: string;
  lineCount: number;
  shippingAddress: Omit<AddressRow, 'id'>;
  paymentReference: string | null;
  carrier: string | null;
  trackingNumber: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const ORDER = sql`id, customer_id as "customerId", user_id as "userId", status, currency,
  subtotal::text as subtotal, shipping::text as shipping, tax::text as tax, total::text as total,
  refunded::text as refunded, line_count as "lineCount", shipping_address as "shippingAddress",
  payment_reference as "paymentReference", carrier, tracking_number as "trackingNumber",
  created_at as "createdAt", updated_at as "updatedAt"`;

export interface NewOrder {
  id: string;
  customerId: string;
  userId: string;
  currency: string;
  subtotal: bigint;
  shipping: bigint;
  tax: bigint;
  total: bigint;
  shippingAddress: Omit<AddressRow, 'id'>;
  lines: {
    itemId: string;
    sku: string;
    name: string;
    unitPrice: bigint;
    quantity: number;
    lineTotal: bigint;
  }[];
}

/** The order, its lines and its first history rows (one named prepared statement per shape). */
export async function insertOrder(
  db: AnyDb,
  o: NewOrder,
  history: readonly HistoryEntry[],
): Promise<OrderRow> {
  const lines = JSON.stringify(
    o.lines.map((l, i) => ({
      n: i + 1,
      item: l.itemId,
      sku: l.sku,
      name: l.name,
      price: l.unitPrice.toString(),
      qty: l.quantity,
      total: l.lineTotal.toString(),
    })),
  );
  const { rows } = await executePrepared(
    db,
    sql<OrderRow>`
    with o as (
      insert into shop_order (id, customer_id, user_id, status, currency, subtotal, shipping, tax, total, line_count, shipping_address)
      values (${o.id}, ${o.customerId}, ${o.userId}, 'pending', ${o.currency}, ${o.subtotal.toString()},
              ${o.shipping.toString()}, ${o.tax.toString()}, ${o.total.toString()}, ${o.lines.length},
              ${JSON.stringify(o.shippingAddress)}::jsonb)
      returning *),
    l as (
      insert into shop_order_line (order_id, line_no, item_id, sku, name, unit_price, quantity, line_total)
      select (select id from o), (e->>'n')::int, (e->>'item')::uuid, e->>'sku', e->>'name',
             (e->>'price')::bigint, (e->>'qty')::int, (e->>'total')::bigint
        from jsonb_array_elements(${lines}::jsonb) e)
    ${
      history.length > 0
        ? sql`, h as (
      insert into shop_order_history (order_id, kind, actor_id, from_status, to_status, item_id, quantity, amount, reason)
      ${historyRows(history)})`
        : sql``
    }
    select ${ORDER} from o`,
  );
  return rows[0] as OrderRow;
}

export interface HistoryEntry {
  orderId: string;
  kind: 'status' | 'stock' | 'refund';
  actorId: string | null;
  from?: string | null;
  to?: string | null;
  itemId?: string | null;
  quantity?: number | null;
  amount?: bigint | null;
  reason: string;
}

/** The history rows as one `select` (rows in the given order, so ids follow it). */
function historyRows(entries: readonly HistoryEntry[]): RawBuilder<unknown> {
  const json = JSON.stringify(
    entries.map((e) => ({
      ...e,
      amount: e.amount === undefined || e.amount === null ? null : e.amount.toString(),
    })),
  );
  return sql`
    select (e->>'orderId')::uuid, e->>'kind', (e->>'actorId')::uuid, e->>'from', e->>'to',
           (e->>'itemId')::uuid, (e->>'quantity')::int, (e->>'amount')::bigint, e->>'reason'
      from jsonb_array_elements(${json}::jsonb) with ordinality as x(e, n) order by x.n`;
}

/** Writes history rows (one statement for any number). */
export async function writeHistory(db: AnyDb, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await sql`
    insert into shop_order_history (order_id, kind, actor_id, from_status, to_status, item_id, quantity, amount, reason)
    ${historyRows(entries)}`.execute(db);
}

export async function findOrder(
  db: AnyDb,
  id: string,
  options: { customerId?: string; lock?: boolean } = {},
): Promise<OrderRow | undefined> {
  const { rows } = await sql<OrderRow>`
    select ${ORDER} from shop_order where id = ${id}
      ${options.customerId !== undefined ? sql`and customer_id = ${options.customerId}` : sql``}
      ${options.lock ? sql`for update` : sql``}`.execute(db);
  return rows[0];
}

export interface OrderDetail extends OrderRow {
  lines: {
    lineNo: number;
    itemId: string;
    sku: string;
    name: string;
    unitPrice: string;
    quantity: number;
    lineTotal: string;
  }[];
  history: {
    kind: string;
    at: string;
    actorId: string | null;
    from: string | null;
    to: string | null;
    itemId: string | null;
    quantity: number | null;
    amount: string | null;
    reason: string;
  }[];
}

/** An order with its lines and history, in one statement. */
export async function orderDetail(
  db: AnyDb,
  id: string,
  customerId?: string,
): Promise<OrderDetail | undefined> {
  const { rows } = await sql<OrderDetail>`
    select ${ORDER},
      (select json_agg(json_build_object('lineNo', l.line_no, 'itemId', l.item_id, 'sku', l.sku,
              'name', l.name, 'unitPrice', l.unit_price::text, 'quantity', l.quantity,
              'lineTotal', l.line_total::text) order by l.line_no)
         from shop_order_line l where l.order_id = o.id) as lines,
      (select json_agg(json_build_object('kind', h.kind, 'at', h.at, 'actorId', h.actor_id,
              'from', h.from_status, 'to', h.to_status, 'itemId', h.item_id, 'quantity', h.quantity,
              'amount', h.amount::text, 'reason', h.reason) order by h.id)
         from shop_order_history h where h.order_id = o.id) as history
      from shop_order o where o.id = ${id}
      ${customerId !== undefined ? sql`and o.customer_id = ${customerId}` : sql``}`.execute(db);
  const row = rows[0];
  if (row) {
    row.lines ??= [];
    row.history ??= [];
  }
  return row;
}

export async function setOrderStatus(
  db: AnyDb,
  id: string,
  status: string,
  fields: {
    paymentReference?: string;
    carrier?: string;
    trackingNumber?: string;
    refunded?: bigint;
  } = {},
): Promise<void> {
  const sets: RawBuilder<unknown>[] = [sql`status = ${status}`];
  if (fields.paymentReference !== undefined)
    sets.push(sql`payment_reference = ${fields.paymentReference}`);
  if (fields.carrier !== undefined) sets.push(sql`carrier = ${fields.carrier}`);
  if (fields.trackingNumber !== undefined)
    sets.push(sql`tracking_number = ${fields.trackingNumber}`);
  if (fields.refunded !== undefined) sets.push(sql`refunded = ${fields.refunded.toString()}`);
  await sql`update shop_order set ${sql.join(sets)} where id = ${id}`.execute(db);
}

export const ORDER_SUMMARY_COLUMNS = [
  'id',
  'customer_id as customerId',
  'status',
  'currency',
  'subtotal',
  'shipping',
  'tax',
  'total',
  'refunded',
  'line_count as lineCount',
  'created_at as createdAt',
  'updated_at as updatedAt',
] as const;

/** The base of a customer's order listing (`paginate` adds order and cursor): their orders only. */
export function customerOrdersBase(db: AnyDb, userId: string) {
  return ordersDb(db)
    .selectFrom('shop_order')
    .select(ORDER_SUMMARY_COLUMNS)
    .where('customer_id', '=', (eb) =>
      eb.selectFrom('shop_customer').select('id').where('user_id', '=', userId),
    );
}

/** The base of the admin's order listing: every order. */
export function allOrdersBase(db: AnyDb) {
  return ordersDb(db).selectFrom('shop_order').select(ORDER_SUMMARY_COLUMNS);
}
