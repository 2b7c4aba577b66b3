/**
 * Shop benchmark (issue 18), on a scratch database `gw_bench_shop` of 1,000,000 items in a
 * three-level category tree (10 × 10 × 10), generated in SQL:
 *
 * (a) the race: BENCH_CUSTOMERS (500) signed-in customers order the last 50 units of one item at
 *     once. Exactly 50 units must be sold, every other order refused with 409 OUT_OF_STOCK, no
 *     5xx, no deadlock (pg_stat_database.deadlocks unchanged).
 * (b) order throughput: orders of 3 lines each over 10,000 items (autocannon, a fresh
 *     Idempotency-Key per request, customers in turn). Target: at least 500 orders/s.
 * (c) the catalog listing of a category with filters (`sort=price`, `minPrice`, `inStock`),
 *     through the whole stack, against a bare node:http + pg server sending the same SQL
 *     (the raw baseline, in the same run): requests/s at saturation (at least 0.6× raw), and
 *     the p99 of both at the same steady rate, half the raw server's saturation throughput
 *     (at most 25 ms; at saturation a p99 is the load generator's own queue: lib.ts), taken
 *     before Groundwork's saturation run (`listing`).
 *
 * Each server runs in its own child process (this file, forked with a server kind); autocannon
 * runs here. `BENCH_SCALE` scales the catalog (0.001: 1,000 items, to check the benchmark runs);
 * `BENCH_DURATION` the seconds of each load; `BENCH_KEEP=1` keeps the database for the next run;
 * `BENCH_SHOP_PARTS` runs only some parts (`b`, or `a,b`; all three by default), e.g. (b) alone to
 * profile order placement (`NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'` profiles the
 * servers too).
 */
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { buildApp, enabledModules, knownModules } from '../src/app.ts';
import { shopApp } from '../src/apps/shop/index.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig, type Config } from '../src/platform/config/index.ts';
import { migrateToLatest, openDatabase } from '../src/platform/db/index.ts';
import { identitySettings, PasswordHasher } from '../src/platform/identity/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import {
  CONNECTIONS,
  load,
  PIPELINING,
  ServerChild,
  STEADY_SHARE,
  WARMUP_SECONDS,
  steadyLatency,
} from './lib.ts';

const DATABASE = 'gw_bench_shop';
const HOST = '127.0.0.1';
const POOL_SIZE = 10;
const PASSWORD = 'violet-Harbor-83-quantum-Mosaic';
/** Cheap argon2id on both sides (the benchmark measures orders, not sign-ins). */
const ARGON2 = { ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' };
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ITEMS = Math.max(1_000, Math.round(1_000_000 * SCALE));
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 500);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const RACE_STOCK = 50;
const THROUGHPUT_ITEMS = Math.min(10_000, ITEMS);
const TARGETS = { ordersPerSecond: 500, listingP99Ms: 25, listingVsRaw: 0.6 };
const SEED_MARK = `bench shop v2 (listing table): ${String(ITEMS)} items, ${String(CUSTOMERS)} customers`;
/** The listing of (c): one second-level category (10 leaves) and one top one (100 leaves). */
const LISTINGS = [
  { name: 'level-2 category', slug: 'c-3-4' },
  { name: 'top category', slug: 'c-7' },
];
const LISTING_QUERY = 'sort=price&minPrice=20000&inStock=true&limit=20';
const PARTS = ['a', 'b', 'c'] as const;
type Part = (typeof PARTS)[number];

/** The parts `BENCH_SHOP_PARTS` names (`a,b`), all of them when unset; an unknown one throws. */
function parts(value: string | undefined): ReadonlySet<Part> {
  if (value === undefined || value.trim() === '') return new Set(PARTS);
  const named = value.split(',').map((p) => p.trim().toLowerCase());
  const unknown = named.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0)
    throw new Error(`BENCH_SHOP_PARTS: unknown part ${unknown.join(', ')} (a, b or c)`);
  return new Set(named as Part[]);
}

function serverUrl(): string {
  return process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

function benchUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench:shop' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The platform's and every module's settings, the shop's included (listed in src/apps or not). */
function shopConfig(env: Record<string, string>): Config {
  const modules = knownModules();
  return loadConfig(env, {
    modules: modules.some((m) => m.name === 'shop') ? modules : [...modules, shopApp],
  });
}

// ---------------------------------------------------------------------------------------------
// Servers (this file, forked)

/** The full stack: buildApp with the shop, every request logged to /dev/null. */
async function groundwork(url: string): Promise<number> {
  const storage = await mkdtemp(join(tmpdir(), 'gw-bench-shop-'));
  // The uploads folder goes with the server (a kept database keeps no files).
  process.once('exit', () => rmSync(storage, { recursive: true, force: true }));
  const config = shopConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST,
    PORT: '0',
    DATABASE_URL: url,
    DATABASE_POOL_MAX: String(POOL_SIZE),
    // Sign-in limits (5 a minute per IP) would stop the 500 customers signing in from one IP.
    RATE_LIMIT_ENABLED: 'false',
    STORAGE_LOCAL_DIR: storage,
    ...ARGON2,
  });
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork' },
  });
  const platform = await createPlatform(config, {
    logger,
    metrics: createMetricsRegistry(),
    modules: enabledModules(config, [shopApp]),
    role: 'bench',
  });
  const app = await buildApp(config, { platform, apps: [shopApp] });
  await app.listen({ host: HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/**
 * The page (c) reads, written by hand: the same statement the shop sends for one category and
 * its subtree (catalog.repository.ts, `listCategoryItems`): one range of the listing table.
 */
const RAW_PAGE_SQL = `
  select i.id, i.sku, i.slug, i.name, i.price::text as price, i.currency, i.stock,
         i.created_at as "createdAt",
         json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) as category,
         (select json_build_object('fileId', m.file_id, 'status', m.status, 'width', m.width,
                 'height', m.height, 'blurhash', m.blurhash, 'path', m.path, 'variants', m.variants)
            from shop_item_image m where m.item_id = i.id and m.status = 'ready'
           order by m.position limit 1) as image,
         (l.price)::text as k1, i.id::text as k2
    from shop_item_listing l
    join shop_item i on i.id = l.item_id
    join shop_category c on c.id = i.category_id
   where l.category_id = $1::uuid and i.active and i.deleted_at is null
     and l.price >= $2 and l.in_stock
   order by l.price asc, l.item_id asc
   limit $3`;

interface RawRow {
  id: string;
  sku: string;
  slug: string;
  name: string;
  price: string;
  currency: string;
  stock: number;
  createdAt: Date;
  category: unknown;
  image: unknown;
  k1: string;
  k2: string;
}

/** node:http and a pg pool: the same page by hand, JSON.stringify, an unsigned cursor. */
async function bare(url: string): Promise<number> {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    application_name: 'bench:bare',
  });
  pool.on('error', () => undefined);
  const ids = new Map<string, string>();
  for (const { slug } of LISTINGS) {
    const { rows } = await pool.query<{ id: string }>(
      'select id from shop_category where slug = $1',
      [slug],
    );
    if (rows[0]) ids.set(slug, rows[0].id);
  }
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const id = ids.get(url.searchParams.get('category') ?? '');
    if (id === undefined) {
      res.writeHead(404).end();
      return;
    }
    try {
      const limit = 20;
      const { rows } = await pool.query<RawRow>(RAW_PAGE_SQL, [
        id,
        Number(url.searchParams.get('minPrice') ?? 0),
        limit + 1,
      ]);
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const items = page.map((r) => ({
        id: r.id,
        sku: r.sku,
        slug: r.slug,
        name: r.name,
        price: Number(r.price),
        currency: r.currency,
        inStock: r.stock > 0,
        category: r.category,
        image: r.image,
        createdAt: r.createdAt,
      }));
      const nextCursor =
        hasMore && last
          ? Buffer.from(JSON.stringify([last.k1, last.k2])).toString('base64url')
          : null;
      const json = JSON.stringify({ items, page: { limit, nextCursor, hasMore } });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(json),
      });
      res.end(json);
    } catch {
      res.writeHead(500).end();
    }
  }
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

const SERVERS = { 'shop-groundwork': groundwork, 'shop-bare': bare } as const;
type ServerKind = keyof typeof SERVERS;

// ---------------------------------------------------------------------------------------------
// Scratch database

async function isSeeded(): Promise<boolean> {
  const exists = await withClient(serverUrl(), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [
      DATABASE,
    ]);
    return rowCount === 1;
  });
  if (!exists) return false;
  return withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ mark: string | null }>(
      "select obj_description(to_regclass('shop_item'), 'pg_class') as mark",
    );
    return rows[0]?.mark === SEED_MARK;
  });
}

async function seed(): Promise<{ reused: boolean; seconds: number }> {
  const started = performance.now();
  if (await isSeeded()) {
    process.stderr.write(`reusing ${DATABASE} (seeded by an earlier run with BENCH_KEEP=1)\n`);
    return { reused: true, seconds: 0 };
  }
  await withClient(serverUrl(), async (client) => {
    await client.query(`drop database if exists ${DATABASE} with (force)`);
    await client.query(`create database ${DATABASE}`);
  });
  const config = shopConfig({ APP_ENV: 'test', DATABASE_URL: benchUrl(), ...ARGON2 });
  const database = await openDatabase(config, {
    logger: pino({ level: 'silent' }),
    url: benchUrl(),
  });
  try {
    await migrateToLatest(database.db, allMigrations([shopApp]));
  } finally {
    await database.close();
  }
  const hash = await new PasswordHasher(identitySettings(config).argon2).hash(PASSWORD);
  process.stderr.write(`seeding ${DATABASE}: ${ITEMS.toLocaleString('en-US')} items\n`);
  await withClient(benchUrl(), async (client) => {
    await client.query("set maintenance_work_mem = '256MB'");
    await client.query('select setseed(0.18)');
    // Three levels: c-1..c-10, c-1-1..c-10-10, c-1-1-1..c-10-10-10.
    await client.query(`
      with l0 as (select gen_random_uuid() as id, g from generate_series(1, 10) g)
      insert into shop_category (id, slug, name, path, depth, position)
      select id, 'c-' || g, 'Category ' || g, '/' || id || '/', 0, g from l0`);
    for (const depth of [1, 2])
      await client.query(
        `with x as (
           select gen_random_uuid() as id, p.id as parent, p.slug, p.name, p.path, g
             from shop_category p, generate_series(1, 10) g where p.depth = $1)
         insert into shop_category (id, parent_id, slug, name, path, depth, position)
         select id, parent, slug || '-' || g, name || '.' || g, path || id || '/', $2, g from x`,
        [depth - 1, depth],
      );
    const leaves = (
      await client.query<{ id: string }>(
        'select id from shop_category where depth = 2 order by path',
      )
    ).rows.map((r) => r.id);
    const chunk = 100_000;
    for (let from = 1; from <= ITEMS; from += chunk) {
      const to = Math.min(ITEMS, from + chunk - 1);
      await client.query(
        `insert into shop_item (id, sku, slug, name, description, price, currency, stock, category_id, attributes, created_at)
         select gen_random_uuid(), 'SKU-' || g, 'item-' || g,
                (array['Mug','Teapot','Lamp','Chair','Shelf','Kettle','Bowl','Vase'])[g % 8 + 1] || ' ' || g,
                'A generated item, number ' || g, 100 + (g::bigint * 7919 % 99900), 'EUR',
                case when g % 10 = 0 then 0 else 1 + g % 50 end,
                ($3::uuid[])[1 + g % array_length($3::uuid[], 1)],
                jsonb_build_object('color', (array['red','blue','green','black'])[g % 4 + 1]),
                timestamptz '2026-01-01' + (g || ' seconds')::interval
           from generate_series($1::int, $2::int) g`,
        [from, to, leaves],
      );
      process.stderr.write(`  ${to.toLocaleString('en-US')} items\n`);
    }
    // The race item and the throughput items' stock are reset before each run.
    await client.query(
      `insert into gw_user (id, email, username, password_hash, email_verified_at)
       select gen_random_uuid(), 'customer' || g || '@bench.example', 'customer_' || g, $1, now()
         from generate_series(1, $2::int) g`,
      [hash, CUSTOMERS],
    );
    await client.query('vacuum (analyze) shop_item');
    // The listing table (filled by the insert trigger): visible for index-only scans.
    await client.query('vacuum (analyze) shop_item_listing');
    await client.query('analyze');
    await client.query(`comment on table shop_item is '${SEED_MARK}'`);
  });
  return { reused: false, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Load

async function signInAll(base: string): Promise<string[]> {
  const tokens: string[] = new Array<string>(CUSTOMERS);
  let next = 0;
  const worker = async () => {
    while (next < CUSTOMERS) {
      const i = next++;
      const res = await fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: `customer${i + 1}@bench.example`, password: PASSWORD }),
      });
      if (res.status !== 200)
        throw new Error(`sign-in ${i + 1}: ${res.status} ${await res.text()}`);
      tokens[i] = ((await res.json()) as { accessToken: string }).accessToken;
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  return tokens;
}

const ADDRESS = {
  name: 'Bench Customer',
  line1: '1 Load Street',
  city: 'Testville',
  postalCode: '12345',
  country: 'GB',
};

async function deadlocks(): Promise<number> {
  return withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ n: string }>(
      'select deadlocks::text as n from pg_stat_database where datname = current_database()',
    );
    return Number(rows[0]?.n ?? 0);
  });
}

/** (a) Every customer at once orders one unit of the item with the last 50. */
async function race(base: string, tokens: string[]) {
  const item = await withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `update shop_item set stock = $1 where sku = 'SKU-1' returning id`,
      [RACE_STOCK],
    );
    return rows[0]?.id as string;
  });
  const deadlocksBefore = await deadlocks();
  // Only this run's orders count (BENCH_KEEP=1 keeps the earlier runs' lines of the same item).
  const since = new Date();
  const started = performance.now();
  const statuses = await Promise.all(
    tokens.map(async (token) => {
      const res = await fetch(`${base}/api/v1/shop/orders`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify({ lines: [{ itemId: item, quantity: 1 }], shippingAddress: ADDRESS }),
      });
      const text = await res.text();
      let body: { code?: string } = {};
      try {
        body = JSON.parse(text) as { code?: string };
      } catch {
        // a 5xx without JSON: counted by its status alone
      }
      return res.status === 409 ? `409 ${body.code ?? ''}` : String(res.status);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const byStatus: Record<string, number> = {};
  for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
  const { sold, stock } = await withClient(benchUrl(), async (client) => {
    const sold = await client.query<{ n: string }>(
      `select coalesce(sum(l.quantity), 0)::text as n from shop_order_line l
         join shop_order o on o.id = l.order_id
        where l.item_id = $1 and o.created_at >= $2`,
      [item, since],
    );
    const stock = await client.query<{ stock: number }>(
      'select stock from shop_item where id = $1',
      [item],
    );
    return { sold: Number(sold.rows[0]?.n), stock: stock.rows[0]?.stock };
  });
  const deadlocksDuring = (await deadlocks()) - deadlocksBefore;
  const met =
    sold === RACE_STOCK &&
    stock === 0 &&
    byStatus['201'] === RACE_STOCK &&
    byStatus['409 OUT_OF_STOCK'] === tokens.length - RACE_STOCK &&
    deadlocksDuring === 0;
  return {
    customers: tokens.length,
    stock: RACE_STOCK,
    sold,
    stockLeft: stock,
    byStatus,
    deadlocks: deadlocksDuring,
    seconds,
    met,
  };
}

/**
 * CPU time (µs) of the whole PostgreSQL server, read from /proc: only when it runs on this host
 * (null otherwise). Its live processes (backends, WAL writer, checkpointer...) plus what the
 * postmaster counts for the children it has reaped, so backends that end during the load (pg-boss
 * and the pool open and close some) are counted too; summing the backends open at the start and
 * the end missed them (and could go negative). On a 2-core machine the server and PostgreSQL
 * share the cores, so an order's cost is both. On an idle machine the whole server's CPU is the
 * bench's.
 */
async function postgresCpuMicros(): Promise<number | null> {
  // The fields after the command name: state is [0], ppid [1], utime [11], stime [12], cutime
  // [13] and cstime [14], in clock ticks (100 a second on Linux).
  const statOf = async (pid: number | string) => {
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
    return stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
  };
  try {
    // A backend's parent is the postmaster (read while that backend is still connected).
    const postmaster = await withClient(benchUrl(), async (client) => {
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      return (await statOf(rows[0]?.pid ?? 0))[1] ?? 0;
    });
    const own = await statOf(postmaster);
    let ticks = (own[11] ?? 0) + (own[12] ?? 0) + (own[13] ?? 0) + (own[14] ?? 0);
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = await statOf(entry).catch(() => null);
      if (fields !== null && fields[1] === postmaster)
        ticks += (fields[11] ?? 0) + (fields[12] ?? 0);
    }
    return ticks * 10_000;
  } catch {
    return null;
  }
}

/** (b) Orders of 3 lines over THROUGHPUT_ITEMS items with stock enough for the whole run. */
async function throughput(server: ServerChild<ServerKind>, tokens: string[], duration: number) {
  const base = `http://${HOST}:${String(server.port)}`;
  const items = await withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `update shop_item set stock = 1000000000
        where id in (select id from shop_item where sku <> 'SKU-1' and active order by sku limit $1)
        returning id`,
      [THROUGHPUT_ITEMS],
    );
    return rows.map((r) => r.id);
  });
  const deadlocksBefore = await deadlocks();
  let n = 0;
  const pick = () => items[Math.floor(Math.random() * items.length)] as string;
  const run = (seconds: number) =>
    autocannon({
      url: `${base}/api/v1/shop/orders`,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          setupRequest: (request) => {
            n += 1;
            const token = tokens[n % tokens.length] as string;
            const lines = new Map<string, number>();
            while (lines.size < 3) lines.set(pick(), 1 + (n % 3));
            return {
              ...request,
              headers: {
                'content-type': 'application/json',
                authorization: `Bearer ${token}`,
                'idempotency-key': `${String(n)}-${randomUUID()}`,
              },
              body: JSON.stringify({
                lines: [...lines].map(([itemId, quantity]) => ({ itemId, quantity })),
                shippingAddress: ADDRESS,
              }),
            };
          },
        },
      ],
    });
  await run(WARMUP_SECONDS);
  // The pool's connections are open after the warm-up: the same backends serve the run.
  const pgCpu = await postgresCpuMicros();
  const cpu = await server.cpuMicros();
  const result = await run(duration);
  const serverCpuUs = (await server.cpuMicros()) - cpu;
  const pgCpuAfter = await postgresCpuMicros();
  const ok = result['2xx'];
  const ordersPerSecond = ok / duration;
  return {
    items: items.length,
    connections: CONNECTIONS,
    durationSeconds: duration,
    orders: ok,
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes: result.statusCodeStats,
    ordersPerSecond,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    /** The server's own CPU per order (PostgreSQL's is not counted). */
    serverCpuUsPerOrder: ok > 0 ? serverCpuUs / ok : null,
    /** The PostgreSQL server's CPU per order (all its processes), when it runs on this host. */
    postgresCpuUsPerOrder:
      ok > 0 && pgCpu !== null && pgCpuAfter !== null ? (pgCpuAfter - pgCpu) / ok : null,
    deadlocks: (await deadlocks()) - deadlocksBefore,
    met: ordersPerSecond >= TARGETS.ordersPerSecond && result.non2xx === 0 && result.errors === 0,
  };
}

/** (c) One listing through the stack and raw, same page, each server alone under load. */
interface Saturation {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerRequest: number;
}

/** One server at saturation on `path`: 50 connections after a warm-up. */
async function saturate(
  server: ServerChild<ServerKind>,
  path: string,
  duration: number,
): Promise<Saturation> {
  const url = `http://${HOST}:${String(server.port)}${path}`;
  const first = await fetch(url);
  if (first.status !== 200) throw new Error(`${server.kind} ${path}: ${first.status}`);
  await load(url, WARMUP_SECONDS);
  const cpu = await server.cpuMicros();
  const r = await load(url, duration);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpuUsPerRequest: ((await server.cpuMicros()) - cpu) / r.requests.total,
  };
}

/**
 * (c) In three phases, so that no steady-rate p99 is taken on a server just saturated: (1) the
 * raw server at saturation on each listing, which sets each listing's steady rate (half of it);
 * (2) both servers at that steady rate (the target's p99); (3) Groundwork at saturation, then at
 * the steady rate once more, reported as the p99 right after an overload (not the target's: 50
 * connections keep 50 requests' objects alive, and the collections they cost land in the next
 * seconds).
 */
async function listing(servers: Record<ServerKind, ServerChild<ServerKind>>, duration: number) {
  const pages = LISTINGS.map(({ name, slug }) => ({
    name,
    path: `/api/v1/shop/items?category=${slug}&${LISTING_QUERY}`,
  }));
  const at = (kind: ServerKind, path: string) =>
    `http://${HOST}:${String(servers[kind].port)}${path}`;
  const raw: Saturation[] = [];
  for (const { path } of pages) raw.push(await saturate(servers['shop-bare'], path, duration));
  const rates = raw.map((r) => r.rps * STEADY_SHARE);
  const steady = [];
  for (const [i, { path }] of pages.entries()) {
    const rate = rates[i] ?? 0;
    steady.push({
      groundwork: await steadyLatency(at('shop-groundwork', path), rate, duration),
      raw: await steadyLatency(at('shop-bare', path), rate, duration),
    });
  }
  const rows = [];
  for (const [i, { name, path }] of pages.entries()) {
    const gw = await saturate(servers['shop-groundwork'], path, duration);
    const afterSaturation = await steadyLatency(
      at('shop-groundwork', path),
      rates[i] ?? 0,
      duration,
    );
    const ratio = gw.rps / (raw[i]?.rps ?? 1);
    const pair = steady[i];
    if (pair === undefined) throw new Error(`no steady figures for ${name}`);
    rows.push({
      name,
      path,
      groundwork: gw,
      raw: raw[i],
      ratio,
      steady: { ...pair, groundworkAfterSaturation: afterSaturation },
      met: pair.groundwork.p99 <= TARGETS.listingP99Ms && ratio >= TARGETS.listingVsRaw,
    });
  }
  return rows;
}

export async function main(): Promise<void> {
  const keep = process.env.BENCH_KEEP === '1';
  const run = parts(process.env.BENCH_SHOP_PARTS);
  const seeded = await seed();
  const script = new URL(import.meta.url);
  const groundworkServer = await ServerChild.start(script, 'shop-groundwork', [benchUrl()]);
  // The bare server serves (c) only.
  const bareServer = run.has('c')
    ? await ServerChild.start(script, 'shop-bare', [benchUrl()])
    : undefined;
  const base = `http://${HOST}:${String(groundworkServer.port)}`;
  try {
    const tokens = await signInAll(base);
    const catalog =
      run.has('c') && bareServer
        ? await listing({ 'shop-groundwork': groundworkServer, 'shop-bare': bareServer }, DURATION)
        : [];
    const a = run.has('a') ? await race(base, tokens) : undefined;
    const b = run.has('b') ? await throughput(groundworkServer, tokens, DURATION) : undefined;
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    process.stdout.write(
      [
        ...(a
          ? [
              `(a) race: ${a.customers} customers for the last ${a.stock} units: sold ${a.sold}, left ${String(a.stockLeft)}, answers ${JSON.stringify(a.byStatus)}, deadlocks ${a.deadlocks}, ${a.seconds.toFixed(2)} s: ${verdict(a.met)}`,
            ]
          : []),
        ...(b
          ? [
              `(b) throughput: ${b.ordersPerSecond.toFixed(0)} orders/s of 3 lines (p50 ${b.latencyMs.p50} ms, p99 ${b.latencyMs.p99} ms, server CPU ${b.serverCpuUsPerOrder?.toFixed(0) ?? '-'} µs/order, PostgreSQL CPU ${b.postgresCpuUsPerOrder?.toFixed(0) ?? '-'} µs/order, non-2xx ${b.non2xx}, deadlocks ${b.deadlocks}; target >= ${TARGETS.ordersPerSecond}): ${verdict(b.met)}`,
            ]
          : []),
        ...catalog.map(
          (c) =>
            `(c) ${c.name}: at saturation Groundwork ${c.groundwork?.rps.toFixed(0)} req/s p99 ${c.groundwork?.p99} ms, raw ${c.raw?.rps.toFixed(0)} req/s p99 ${c.raw?.p99} ms, ratio ${c.ratio.toFixed(2)}; at a steady ${String(c.steady.groundwork.offered)} req/s p99 Groundwork ${String(c.steady.groundwork.p99)} ms, raw ${String(c.steady.raw.p99)} ms (Groundwork right after its saturation run ${String(c.steady.groundworkAfterSaturation.p99)} ms) (targets p99 <= ${TARGETS.listingP99Ms} ms at the steady rate, >= ${TARGETS.listingVsRaw}x): ${verdict(c.met)}`,
        ),
        '',
      ].join('\n'),
    );
    const report = {
      benchmark: 'shop',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      settings: {
        items: ITEMS,
        customers: CUSTOMERS,
        durationSeconds: DURATION,
        poolSize: POOL_SIZE,
        connections: CONNECTIONS,
        parts: [...run],
      },
      seed: seeded,
      race: a ?? null,
      throughput: b ?? null,
      listing: catalog,
      targets: TARGETS,
    };
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('shop.json', dir), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await groundworkServer.stop();
    await bareServer?.stop();
    if (!keep)
      await withClient(serverUrl(), (client) =>
        client.query(`drop database if exists ${DATABASE} with (force)`),
      );
  }
}

// Forked by main() as a server child: `shop-groundwork|shop-bare <database url>`.
const [kind, url] = process.argv.slice(2);
if (process.send !== undefined && kind !== undefined && Object.hasOwn(SERVERS, kind) && url) {
  const port = await SERVERS[kind as ServerKind](url);
  // Exit (rather than die) on the parent's SIGTERM, so that `--cpu-prof` writes the profile.
  process.once('SIGTERM', () => process.exit(0));
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  });
  process.send({ port });
}
