/**
 * What bench/listings-prepared.ts and bench/listings-pool.ts share: a small spots database
 * (`BENCH_SCALE` × 50,000 spots around ten cities, the spots app's tables and indexes), seeded once
 * and kept when `BENCH_KEEP=1`, and the listing URLs measured.
 */
import pg from 'pg';
import { pino } from 'pino';
import { knownModules } from '../src/app.ts';
import { spotsApp } from '../src/apps/spots/index.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrateToLatest, openDatabase } from '../src/platform/db/index.ts';
import { admin, serverUrl } from './lib.ts';

export const DATABASE = 'gw_bench_listings';
export const ROWS = Math.max(1_000, Math.round(Number(process.env.BENCH_SCALE ?? 1) * 50_000));
export const CENTRE = { lat: 48.8566, lng: 2.3522 };
export const PAGE_SIZE = 20;

export const LISTINGS = {
  nearby: `/api/v1/spots?near=${String(CENTRE.lat)},${String(CENTRE.lng)}&radiusM=2000&limit=${String(PAGE_SIZE)}`,
  newest: `/api/v1/spots?limit=${String(PAGE_SIZE)}`,
} as const;

export function benchUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

const CITIES = [
  [48.8566, 2.3522],
  [51.5072, -0.1276],
  [40.4168, -3.7038],
  [52.52, 13.405],
  [41.9028, 12.4964],
  [45.764, 4.8357],
  [50.8503, 4.3517],
  [52.3676, 4.9041],
  [38.7223, -9.1393],
  [48.2082, 16.3738],
] as const;

const WORDS = 'quiet,golden,hidden,old,bright,narrow,green,blue,tall,small'.split(',');

function seedSql(rows: number): string {
  const lat = `(array[${CITIES.map((c) => String(c[0])).join(',')}]::float8[])`;
  const lng = `(array[${CITIES.map((c) => String(c[1])).join(',')}]::float8[])`;
  const words = `string_to_array('${WORDS.join(',')}', ',')`;
  return `
  insert into spots_spot (id, owner_id, name, description, address, category, tags, lat, lng,
                          favourite_count, created_at, updated_at)
  select gen_random_uuid(), md5('owner' || (g % 2000))::uuid,
         initcap(w[1 + g % 10] || ' ' || w[1 + (g / 10) % 10]) || ' ' || g,
         'A ' || w[1 + (g / 100) % 10] || ' place.', null,
         (array['viewpoint','mural','bridge','nature','street'])[1 + g % 5],
         array[w[1 + g % 10]],
         ${lat}[1 + g % 10] + (random() - 0.5) * 0.2,
         ${lng}[1 + g % 10] + (random() - 0.5) * 0.3,
         floor(power(random(), 6) * 1000)::int,
         now() - random() * interval '730 days', now()
    from generate_series(1, ${String(rows)}) g, (select ${words} as w) v`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench:listings' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Seeds the database unless one seeded with the same row count is there. */
export async function prepareListingsDatabase(): Promise<void> {
  const mark = `bench listings v1: ${String(ROWS)} spots`;
  const exists = await withClient(serverUrl(), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [
      DATABASE,
    ]);
    return rowCount === 1;
  });
  if (exists) {
    const seeded = await withClient(benchUrl(), async (client) => {
      const { rows } = await client.query<{ mark: string | null }>(
        "select obj_description(to_regclass('spots_spot'), 'pg_class') as mark",
      );
      return rows[0]?.mark === mark;
    });
    if (seeded) return;
  }
  process.stderr.write(`seeding ${DATABASE} with ${ROWS.toLocaleString('en-US')} spots\n`);
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  const config = loadConfig(
    { APP_ENV: 'test', DATABASE_URL: benchUrl() },
    { modules: [...knownModules(), spotsApp] },
  );
  const database = await openDatabase(config, { logger: pino({ level: 'silent' }) });
  try {
    await migrateToLatest(database.db, allMigrations([spotsApp]));
  } finally {
    await database.close();
  }
  await withClient(benchUrl(), async (client) => {
    await client.query(seedSql(ROWS));
    await client.query('vacuum (analyze) spots_spot');
    await client.query(`comment on table spots_spot is '${mark}'`);
  });
}

export async function dropListingsDatabase(): Promise<void> {
  await admin(`drop database if exists ${DATABASE} with (force)`);
}
