import { sql, type Kysely } from 'kysely';

/** Customers, addresses, carts, orders, their lines and history. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table shop_customer (
      id uuid primary key,
      user_id uuid not null unique,
      name text not null default '',
      phone text not null default '',
      default_shipping_address_id uuid,
      default_billing_address_id uuid,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table shop_address (
      id uuid primary key,
      customer_id uuid not null references shop_customer (id),
      name text not null,
      line1 text not null,
      line2 text,
      city text not null,
      postal_code text not null,
      country char(2) not null,
      created_at timestamptz not null default now(),
      deleted_at timestamptz
    )`.execute(db);
  await sql`create index shop_address_customer_idx on shop_address (customer_id, created_at) where deleted_at is null`.execute(
    db,
  );
  await sql`alter table shop_customer
    add foreign key (default_shipping_address_id) references shop_address (id),
    add foreign key (default_billing_address_id) references shop_address (id)`.execute(db);

  await sql`
    create table shop_cart_line (
      customer_id uuid not null references shop_customer (id),
      item_id uuid not null references shop_item (id),
      quantity integer not null check (quantity > 0),
      added_at timestamptz not null default now(),
      primary key (customer_id, item_id)
    )`.execute(db);

  await sql`
    create table shop_order (
      id uuid primary key,
      customer_id uuid not null references shop_customer (id),
      user_id uuid not null,
      status text not null check (status in ('pending','paid','shipped','delivered','cancelled','refunded')),
      currency char(3) not null,
      subtotal bigint not null,
      shipping bigint not null,
      tax bigint not null,
      total bigint not null check (total >= 0 and total <= 1000000000000),
      refunded bigint not null default 0 check (refunded >= 0 and refunded <= total),
      line_count integer not null,
      shipping_address jsonb not null,
      payment_reference text,
      carrier text,
      tracking_number text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  // A customer's orders, newest first; the admin listing by date, by status and date, by total.
  await sql`create index shop_order_customer_idx on shop_order (customer_id, created_at desc, id desc)`.execute(
    db,
  );
  await sql`create index shop_order_created_idx on shop_order (created_at desc, id desc)`.execute(
    db,
  );
  await sql`create index shop_order_status_idx on shop_order (status, created_at desc, id desc)`.execute(
    db,
  );
  await sql`create index shop_order_total_idx on shop_order (total, id)`.execute(db);
  await sql`create trigger shop_order_set_updated_at before update on shop_order for each row execute function gw_set_updated_at()`.execute(
    db,
  );

  await sql`
    create table shop_order_line (
      order_id uuid not null references shop_order (id),
      line_no integer not null,
      item_id uuid not null references shop_item (id),
      sku text not null,
      name text not null,
      unit_price bigint not null,
      quantity integer not null check (quantity > 0),
      line_total bigint not null,
      primary key (order_id, line_no)
    )`.execute(db);
  await sql`create index shop_order_line_item_idx on shop_order_line (item_id)`.execute(db);

  // Every status change and stock move: who, when, from, to, why.
  await sql`
    create table shop_order_history (
      id bigint generated always as identity primary key,
      order_id uuid not null references shop_order (id),
      kind text not null check (kind in ('status', 'stock', 'refund')),
      actor_id uuid,
      at timestamptz not null default now(),
      from_status text,
      to_status text,
      item_id uuid,
      quantity integer,
      amount bigint,
      reason text not null
    )`.execute(db);
  await sql`create index shop_order_history_order_idx on shop_order_history (order_id, id)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['shop_order_history', 'shop_order_line', 'shop_order', 'shop_cart_line'])
    await sql`drop table ${sql.table(t)}`.execute(db);
  await sql`alter table shop_customer drop column default_shipping_address_id, drop column default_billing_address_id`.execute(
    db,
  );
  await sql`drop table shop_address`.execute(db);
  await sql`drop table shop_customer`.execute(db);
}
