/**
 * What the API benchmark (`api.ts`) and its bare server (`api-bare.ts`) share: the four listings
 * measured, the scratch database `gw_bench_api` and its seed (accounts, spots, a shop catalog, a
 * public dataset), and the SQL each listing sends, captured from the apps' own repository code.
 *
 * The seeds follow those of the spots, shop and public data benchmarks (`spots.ts`, `shop.ts`,
 * `public-data.ts`: their generators are module-private there, so their shapes are repeated here
 * at a smaller default scale), in one database, because one pair of `serve` processes answers the
 * four listings.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import pg from 'pg';
import { allApps } from '../src/apps/index.ts';
import { importVersion } from '../src/apps/public-data/import.ts';
import { metadataOf } from '../src/apps/public-data/metadata.ts';
import { pageSql, planRows } from '../src/apps/public-data/query.ts';
import type { PublicDataSettings } from '../src/apps/public-data/settings.ts';
import { listItems } from '../src/apps/shop/catalog.repository.ts';
import { listSpots } from '../src/apps/spots/spots.repository.ts';
import { allMigrations } from '../src/migrations/index.ts';
import type { Config } from '../src/platform/config/index.ts';
import type { Platform } from '../src/platform/modules/index.ts';
import { migrateToLatest, newId, paginate, parseListQuery } from '../src/platform/db/index.ts';
import { adminUsersSpec } from '../src/platform/identity/admin/service.ts';
import { adminUsers } from '../src/platform/identity/rbac/repository.ts';
import { serverUrl } from './lib.ts';
import { CENTRE, PAGE_SIZE, QUERIES, RADIUS_M } from './spots-data.ts';

export const DATABASE = 'gw_bench_api';
/** The accounts signed in and sending the load, each with its own session and token. */
export const SIGNED_IN = 1_000;
export const PASSWORD = 'violet-Harbor-83-quantum-Mosaic';
/** The role the admin listing asks for (`users:read`), without MFA (a password session holds it). */
export const READER_ROLE = 'bench-api-reader';
export const READER_PERMISSIONS = ['users:read'];
const SEED_VERSION = 'bench api v1';

/** The login (e-mail) of signed-in account `i` (0-based). */
export const loginOf = (i: number) => `api-bench-${String(i + 1)}@bench.example`;

/** A client address per account (sent as X-Forwarded-For): 1,000 clients behind one proxy. */
export function clientIp(i: number): string {
  return `10.${String((i >> 16) & 255)}.${String((i >> 8) & 255)}.${String(i & 255)}`;
}

/** The public dataset's slug and the page of its rows measured. */
const DATASET = 'bench';
const PD_CATEGORIES = 20;
const PD_PAGE = 50;
const PD_QUERY = { category: 'cat-7', sort: '-price' } as const;
/** The shop listing: a second-level category (10 leaves), by price, with filters (as `shop.ts`). */
const SHOP_CATEGORY = 'c-3-4';
const SHOP_MIN_PRICE = 20_000;

export const LISTING_NAMES = [
  'admin-users',
  'spots-nearby',
  'shop-catalog',
  'public-data-rows',
] as const;
export type ListingName = (typeof LISTING_NAMES)[number];

/** The URL (path and query) of each listing: the same on Groundwork and on the bare server. */
export const LISTING_URLS: Record<ListingName, string> = {
  'admin-users': `/api/v1/admin/users?limit=${String(PAGE_SIZE)}`,
  'spots-nearby': QUERIES.nearby.groundwork,
  'shop-catalog': `/api/v1/shop/items?category=${SHOP_CATEGORY}&sort=price&minPrice=${String(SHOP_MIN_PRICE)}&inStock=true&limit=${String(PAGE_SIZE)}`,
  'public-data-rows': `/api/v1/public-data/datasets/${DATASET}/rows?category=${PD_QUERY.category}&sort=${PD_QUERY.sort}&limit=${String(PD_PAGE)}`,
};

/** One statement as the app sent it: its text and its bound values. */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * A listing as the bare server answers it: the app's statements in order, the page size (each
 * statement asks one row more, to tell whether more follow), and how rows become the answer:
 * `rows` as they come, or `json`, each row's `j` column already JSON (the public data app).
 */
export interface BareListing {
  path: string;
  statements: Statement[];
  limit: number;
  shape: 'rows' | 'json';
}

/** Row counts at `BENCH_SCALE` (1: 100,000 spots, items and dataset rows; 10,000 accounts). */
export function counts(scale: number) {
  const n = (base: number, floor: number) => Math.max(floor, Math.round(base * scale));
  return {
    users: n(10_000, SIGNED_IN),
    spots: n(100_000, 1_000),
    items: n(100_000, 1_000),
    rows: n(100_000, 1_000),
  };
}
export type Counts = ReturnType<typeof counts>;

export function benchUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench:api' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The seed mark of an existing `gw_bench_api` (`markOf`), or null (none, or no database). */
export async function currentMark(): Promise<string | null> {
  const exists = await withClient(serverUrl(), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [
      DATABASE,
    ]);
    return rowCount === 1;
  });
  if (!exists) return null;
  return withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ mark: string | null }>(
      "select obj_description(to_regclass('gw_user'), 'pg_class') as mark",
    );
    return rows[0]?.mark ?? null;
  });
}

// ---------------------------------------------------------------------------------------------
// Seed

/** What a seeded database says of itself (a comment on `gw_user`): the seed's version and counts. */
export const markOf = (c: Counts) =>
  `${SEED_VERSION}: ${String(c.users)} users, ${String(c.spots)} spots, ${String(c.items)} items, ${String(c.rows)} rows`;

/** Accounts (one argon2id hash for all: the same password), the reader role for the first 1,000. */
async function seedUsers(client: pg.ClientBase, users: number, hash: string): Promise<void> {
  await client.query(
    `insert into gw_user (id, email, username, password_hash, email_verified_at, created_at)
     select gen_random_uuid(), 'api-bench-' || g || '@bench.example', 'api_bench_' || g, $1, now(),
            timestamptz '2026-01-01' + (g || ' minutes')::interval
       from generate_series(1, $2::int) g`,
    [hash, users],
  );
  await client.query(
    `insert into gw_role (id, name, description, permissions, mfa_required, builtin)
     values ($1, $2, 'The API benchmark''s readers of the admin listing', $3::text[], false, false)`,
    [newId(), READER_ROLE, READER_PERMISSIONS],
  );
  await client.query(
    `insert into gw_user_role (user_id, role_id)
     select u.id, r.id from gw_user u join gw_role r on r.name = 'user'
      where u.email like 'api-bench-%'
     union all
     select u.id, r.id from gw_user u join gw_role r on r.name = $1
      where u.email like 'api-bench-%' and split_part(substr(u.email, 11), '@', 1)::int <= $2`,
    [READER_ROLE, SIGNED_IN],
  );
}

/** Spots as `spots.ts` makes them: 40% in ten city clusters (Paris first), the rest worldwide. */
async function seedSpots(client: pg.ClientBase, rows: number): Promise<void> {
  const cities = [
    [48.8566, 2.3522],
    [51.5074, -0.1278],
    [40.7128, -74.006],
    [35.6762, 139.6503],
    [-33.8688, 151.2093],
    [-23.5505, -46.6333],
    [30.0444, 31.2357],
    [19.076, 72.8777],
    [19.4326, -99.1332],
    [64.1466, -21.9426],
  ];
  const lat = `(array[${cities.map((c) => String(c[0])).join(',')}]::float8[])`;
  const lng = `(array[${cities.map((c) => String(c[1])).join(',')}]::float8[])`;
  const { rows: indexes } = await client.query<{ name: string; def: string }>(
    `select indexname as name, indexdef as def from pg_indexes
      where tablename = 'spots_spot' and indexname <> 'spots_spot_pkey'`,
  );
  for (const index of indexes) await client.query(`drop index ${index.name}`);
  await client.query(`
    insert into spots_spot (id, owner_id, name, description, category, tags, lat, lng,
                            favourite_count, created_at, updated_at)
    select gen_random_uuid(), md5('owner' || (g % 20000))::uuid,
           initcap(a[1 + h % 8] || ' ' || n[1 + (h / 8) % 8]) || ' ' || g,
           'A ' || a[1 + (h / 64) % 8] || ' ' || n[1 + (h / 512) % 8] || ' seen from the '
             || (array['north','south','east','west'])[1 + g % 4] || '.',
           (array['viewpoint','mural','architecture','bridge','nature'])[1 + g % 5],
           array[(array['sunset','night','street','river','sea'])[1 + h % 5]],
           case when g % 10 < 4
             then greatest(-90, least(90, ${lat}[1 + (g / 10) % 10]
                  + sqrt(-2 * ln(greatest(r1, 1e-12))) * cos(2 * pi() * r2) * 0.05))
             else degrees(asin(2 * r3 - 1)) end,
           case when g % 10 < 4
             then mod((${lng}[1 + (g / 10) % 10]
                  + sqrt(-2 * ln(greatest(r1, 1e-12))) * sin(2 * pi() * r2) * 0.05
                    / cos(radians(${lat}[1 + (g / 10) % 10])) + 540)::numeric, 360)::float8 - 180
             else r4 * 360 - 180 end,
           floor(power(random(), 6) * 1000)::int,
           now() - random() * interval '730 days', now()
      from (select g, (hashint4(g) & 2147483647) as h, random() as r1, random() as r2,
                   random() as r3, random() as r4
              from generate_series(1, ${String(rows)}) g) x,
           (select string_to_array('sunset,golden,misty,hidden,old,quiet,painted,rusty', ',') as a,
                   string_to_array('harbour,bridge,tower,mural,garden,market,pier,steps', ',') as n) v`);
  for (const index of indexes) await client.query(index.def);
}

/** The shop's three-level category tree (10 × 10 × 10) and its items, as `shop.ts` makes them. */
async function seedShop(client: pg.ClientBase, items: number): Promise<void> {
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
    await client.query<{ id: string }>('select id from shop_category where depth = 2 order by path')
  ).rows.map((r) => r.id);
  await client.query(
    `insert into shop_item (id, sku, slug, name, description, price, currency, stock, category_id, attributes, created_at)
     select gen_random_uuid(), 'SKU-' || g, 'item-' || g,
            (array['Mug','Teapot','Lamp','Chair','Shelf','Kettle','Bowl','Vase'])[g % 8 + 1] || ' ' || g,
            'A generated item, number ' || g, 100 + (g::bigint * 7919 % 99900), 'EUR',
            case when g % 10 = 0 then 0 else 1 + g % 50 end,
            ($2::uuid[])[1 + g % array_length($2::uuid[], 1)],
            jsonb_build_object('color', (array['red','blue','green','black'])[g % 4 + 1]),
            timestamptz '2026-01-01' + (g || ' seconds')::interval
       from generate_series(1, $1::int) g`,
    [items, leaves],
  );
}

/** The CSV of `public-data.ts`: ids in order, 20 categories, prices, times, points, words. */
function* csv(rows: number): Generator<string> {
  yield 'id,name,category,price,created,location,score\n';
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
  let batch = '';
  for (let i = 1; i <= rows; i++) {
    const lat = ((i * 7919) % 18_000) / 100 - 90;
    const lng = ((i * 104_729) % 36_000) / 100 - 180;
    const created = new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString();
    batch += `${String(i)},${words[i % 8] as string} ${words[(i >> 3) % 8] as string} ${String(i)},cat-${String(i % PD_CATEGORIES)},${String((i * 37) % 100_000)}.${String(i % 100).padStart(2, '0')},${created},"${lat.toFixed(2)},${lng.toFixed(2)}",${String((i * 13) % 1000)}\n`;
    if (batch.length > 65_536) {
      yield batch;
      batch = '';
    }
  }
  if (batch !== '') yield batch;
}

/** The dataset, through the app's own import (stored CSV, two streamed passes, COPY). */
async function seedDataset(platform: Platform, rows: number): Promise<void> {
  const pool = platform.database.pool;
  const settings = platform.config.modules['public-data'] as unknown as PublicDataSettings;
  await pool.query('drop schema if exists public_data cascade');
  await pool.query('create schema public_data');
  const owner = (await pool.query<{ id: string }>('select id from gw_user limit 1')).rows[0]?.id;
  const fileId = newId();
  const key = `files/${fileId}/upload`;
  const stored = await platform.storage.put(key, Readable.from(csv(rows)), {
    contentType: 'text/csv',
  });
  await pool.query(
    `insert into gw_file (id, owner_id, purpose, status, content_type, size, checksum_sha256,
       filename, upload_key, original_key, original_content_type, original_size, quota_bytes)
     values ($1, $2, 'public-data.dataset', 'ready', 'text/csv', $3, '', 'bench.csv', $4, $4, 'text/csv', $3, $3)`,
    [fileId, owner, stored.size, key],
  );
  const datasetId = newId();
  await pool.query(`insert into pd_dataset (id, slug, title) values ($1, $2, 'Benchmark')`, [
    datasetId,
    DATASET,
  ]);
  const versionId = newId();
  await pool.query(
    `insert into pd_version (id, dataset_id, number, status, file_id, format) values ($1, $2, 1, 'queued', $3, 'csv')`,
    [versionId, datasetId, fileId],
  );
  const outcome = await importVersion(platform, versionId, settings);
  if (outcome.status !== 'ready' || outcome.rowCount !== rows)
    throw new Error(`public data import: ${JSON.stringify(outcome)}`);
}

/**
 * Migrates `gw_bench_api` (always: a kept database gets the code's new migrations) and seeds it,
 * unless it holds the seed of these counts already (`BENCH_KEEP=1` on an earlier run). The caller
 * makes the database afresh when it holds anything else.
 * `platform` is connected to it; `passwordHash` is the accounts' argon2id hash.
 */
export async function prepareDatabase(
  platform: Platform,
  c: Counts,
  passwordHash: () => Promise<string>,
): Promise<{ reused: boolean; seconds: number }> {
  const started = performance.now();
  await migrateToLatest(platform.database.db, allMigrations(allApps));
  const mark = markOf(c);
  const { rows } = await platform.database.pool.query<{ mark: string | null }>(
    "select obj_description(to_regclass('gw_user'), 'pg_class') as mark",
  );
  if (rows[0]?.mark === mark) return { reused: true, seconds: 0 };
  const hash = await passwordHash();
  // A connection of its own, without the pool's statement timeout: a large seed takes minutes.
  const seeding = (fn: (client: pg.Client) => Promise<void>) =>
    withClient(benchUrl(), async (client) => {
      await client.query('set statement_timeout = 0');
      await client.query("set maintenance_work_mem = '256MB'");
      await fn(client);
    });
  await seeding(async (client) => {
    await client.query('select setseed(0.23)');
    process.stderr.write(`  ${c.users.toLocaleString('en-US')} accounts\n`);
    await seedUsers(client, c.users, hash);
    process.stderr.write(`  ${c.spots.toLocaleString('en-US')} spots\n`);
    await seedSpots(client, c.spots);
    process.stderr.write(`  ${c.items.toLocaleString('en-US')} shop items\n`);
    await seedShop(client, c.items);
  });
  process.stderr.write(`  ${c.rows.toLocaleString('en-US')} dataset rows (the app's import)\n`);
  await seedDataset(platform, c.rows);
  await seeding(async (client) => {
    for (const table of ['gw_user', 'gw_user_role', 'spots_spot', 'shop_item', 'shop_item_listing'])
      await client.query(`vacuum (analyze) ${table}`);
    await client.query('analyze');
    await client.query(`comment on table gw_user is '${mark}'`);
  });
  return { reused: false, seconds: (performance.now() - started) / 1000 };
}

/** The ids of the signed-in accounts, in their order (`loginOf`). */
export async function signedInIds(platform: Platform): Promise<string[]> {
  const { rows } = await platform.database.pool.query<{ id: string; email: string }>(
    `select id, email from gw_user where email = any($1::text[])`,
    [Array.from({ length: SIGNED_IN }, (_, i) => loginOf(i))],
  );
  const byEmail = new Map(rows.map((r) => [r.email, r.id]));
  return Array.from({ length: SIGNED_IN }, (_, i) => {
    const id = byEmail.get(loginOf(i));
    if (id === undefined) throw new Error(`account ${loginOf(i)} is missing from the seed`);
    return id;
  });
}

// ---------------------------------------------------------------------------------------------
// The apps' statements

/**
 * Each listing's statements as the app sends them: its repository functions run here on a Kysely
 * over the same pool, whose query log records each compiled statement and its values (the public
 * data app builds its text itself: `planRows` and `pageSql`, as its service calls them). So the
 * bare server sends what Groundwork sends, and follows the apps when their SQL changes.
 */
export async function captureStatements(
  platform: Platform,
  /** The servers' configuration (the public data app's settings shape its statement). */
  config: Config,
): Promise<Record<ListingName, BareListing>> {
  const captured: Statement[] = [];
  const db = new Kysely<never>({
    dialect: new PostgresDialect({ pool: platform.database.pool }),
    log: (event) => {
      if (event.level === 'query')
        captured.push({ text: event.query.sql, values: [...event.query.parameters] });
    },
  });
  const take = async (run: () => Promise<unknown>): Promise<Statement[]> => {
    captured.length = 0;
    await run();
    if (captured.length === 0) throw new Error('no statement captured');
    return captured.splice(0);
  };
  const path = (name: ListingName) => LISTING_URLS[name].split('?')[0] as string;
  // As AdminService.listUsers pages: keyset, marked as a named prepared statement (the bare
  // server sends the same text unnamed; the mark is a comment to PostgreSQL).
  const paging = {
    secret: config.secrets.appSecret,
    estimateAbove: config.database.estimateAbove,
    prepared: true,
  };

  // GET /admin/users (AdminService.listUsers without `role`): the keyset page of accounts.
  const admin = await take(() =>
    paginate(
      db,
      adminUsersSpec,
      parseListQuery(adminUsersSpec, { limit: String(PAGE_SIZE) }),
      adminUsers(db as never),
      paging,
    ),
  );
  // GET /spots?near=...&radiusM=... (SpotsService.list: distance order, no text).
  const spots = await take(() =>
    listSpots(
      db,
      { near: { lat: CENTRE.lat, lng: CENTRE.lng, radiusM: RADIUS_M } },
      'distance',
      PAGE_SIZE,
      null,
    ),
  );
  // GET /shop/items?category=...&sort=price&minPrice=...&inStock=true (the category's path is
  // cached by the app, so only the listing statement runs per request).
  const categoryPath = (
    await platform.database.pool.query<{ path: string }>(
      'select path from shop_category where slug = $1',
      [SHOP_CATEGORY],
    )
  ).rows[0]?.path;
  if (categoryPath === undefined) throw new Error(`no shop category ${SHOP_CATEGORY}`);
  const shop = await take(() =>
    listItems(
      db,
      { categoryPath, minPrice: SHOP_MIN_PRICE, inStock: true },
      'price',
      PAGE_SIZE,
      null,
    ),
  );
  // GET /public-data/datasets/bench/rows?category=cat-7&sort=-price (PublicDataService.rows).
  const settings = config.modules['public-data'] as unknown as PublicDataSettings;
  const meta = await metadataOf(platform).get(DATASET);
  if (!meta?.current) throw new Error('the public dataset has no current version');
  const plan = planRows(meta.current, { ...PD_QUERY }, settings, { inline: false });
  const publicData: Statement[] = [
    {
      text: pageSql(plan, { limit: PD_PAGE, secret: config.secrets.appSecret }),
      values: [...plan.binder.params],
    },
  ];

  return {
    'admin-users': {
      path: path('admin-users'),
      statements: admin,
      limit: PAGE_SIZE,
      shape: 'rows',
    },
    'spots-nearby': {
      path: path('spots-nearby'),
      statements: spots,
      limit: PAGE_SIZE,
      shape: 'rows',
    },
    'shop-catalog': {
      path: path('shop-catalog'),
      statements: shop,
      limit: PAGE_SIZE,
      shape: 'rows',
    },
    'public-data-rows': {
      path: path('public-data-rows'),
      statements: publicData,
      limit: PD_PAGE,
      shape: 'json',
    },
  };
}
