/**
 * Named prepared statements against the unnamed statement, on the listings' own SQL (issue 23,
 * part 4): the spots listing (nearby: a CTE with GiST ordering and a lateral per row; newest) and a
 * `paginate` keyset listing (the shape of the admin users, authors and posts listings), each run
 * back to back on one connection, in alternating rounds so that a busy machine's drift hits every
 * variant alike. Prints the mean time per listing statement of each variant (no EXPLAIN: wall
 * time through the driver, as the app runs it).
 *
 * Variants: `unnamed` (before: a plain `pg.Client`, the marker is only a comment), `named` (the
 * platform's `PreparingClient`, PostgreSQL's plan cache in its default `auto` mode), and
 * `named-custom` (the same with `plan_cache_mode = force_custom_plan`: parse and analysis saved,
 * planning kept per call; a check that a generic plan is not what makes a difference).
 *
 *   node bench/listings-prepared.ts            # BENCH_SCALE=1: 50,000 spots; BENCH_ROUNDS=10
 *   BENCH_KEEP=1 node bench/listings-prepared.ts
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { listSpots, type ListFilters } from '../src/apps/spots/spots.repository.ts';
import {
  PreparingClient,
  paginate,
  parseListQuery,
  type AnyDb,
  type ListSpec,
} from '../src/platform/db/index.ts';
import {
  CENTRE,
  PAGE_SIZE,
  ROWS,
  benchUrl,
  dropListingsDatabase,
  prepareListingsDatabase,
} from './listings-data.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const CALLS = Number(process.env.BENCH_CALLS ?? 200);

type Variant = 'unnamed' | 'named' | 'named-custom';
const VARIANTS: Variant[] = ['unnamed', 'named', 'named-custom'];

function open(variant: Variant): Kysely<unknown> {
  const pool = new pg.Pool({
    connectionString: benchUrl(),
    max: 1,
    application_name: `bench:listings-${variant}`,
    ...(variant === 'unnamed' ? {} : { Client: PreparingClient }),
    ...(variant === 'named-custom' ? { options: '-c plan_cache_mode=force_custom_plan' } : {}),
  });
  return new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
}

/** A keyset listing on the primary key (the index answers it, as the apps' listings are). */
const spec: ListSpec = { name: 'bench-spots', sorts: { id: 'id' }, defaultSort: 'id' };
const paging = { secret: 'bench-secret-bench-secret-bench-secret-00', estimateAbove: 1_000_000 };

const near: ListFilters = { near: { ...CENTRE, radiusM: 2000 } };

const LISTINGS: Record<string, (db: AnyDb, prepared: boolean) => Promise<unknown>> = {
  'spots nearby': (db) => listSpots(db, near, 'distance', PAGE_SIZE, null),
  'spots newest': (db) => listSpots(db, {}, 'newest', PAGE_SIZE, null),
  'paginate (keyset on id)': (db, prepared) => {
    const list = parseListQuery(spec, { limit: String(PAGE_SIZE) });
    const base = (
      db as Kysely<{ spots_spot: { id: string; name: string; category: string; created_at: Date } }>
    )
      .selectFrom('spots_spot')
      .select(['id', 'name', 'category']);
    return paginate(db, spec, list, base, { ...paging, prepared });
  },
};

async function main(): Promise<void> {
  await prepareListingsDatabase();
  const dbs = new Map(VARIANTS.map((v) => [v, open(v)]));
  // Warm each connection (the named variants prepare here).
  for (const [variant, db] of dbs)
    for (const run of Object.values(LISTINGS))
      for (let i = 0; i < 10; i++) await run(db, variant !== 'unnamed');
  const totals = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(LISTINGS)) {
      // The order of the variants rotates with the round.
      for (let k = 0; k < VARIANTS.length; k++) {
        const variant = VARIANTS[(k + round) % VARIANTS.length] as Variant;
        const db = dbs.get(variant) as Kysely<unknown>;
        const started = performance.now();
        for (let i = 0; i < CALLS; i++) await run(db, variant !== 'unnamed');
        const key = `${name}|${variant}`;
        totals.set(key, (totals.get(key) ?? 0) + performance.now() - started);
      }
    }
  }
  process.stdout.write(
    `${ROWS.toLocaleString('en-US')} spots, ${String(ROUNDS)} rounds × ${String(CALLS)} calls, one connection per variant (busy machine: indicative)\n`,
  );
  for (const name of Object.keys(LISTINGS)) {
    const base = (totals.get(`${name}|unnamed`) ?? 0) / (ROUNDS * CALLS);
    const cells = VARIANTS.map((v) => {
      const us = ((totals.get(`${name}|${v}`) ?? 0) / (ROUNDS * CALLS)) * 1000;
      return `${v} ${us.toFixed(0)} µs (${((us / (base * 1000)) * 100).toFixed(0)}%)`;
    });
    process.stdout.write(`  ${name.padEnd(28)} ${cells.join('  ')}\n`);
  }
  const plans = await sql<{ name: string; generic_plans: number; custom_plans: number }>`
    select name, generic_plans, custom_plans from pg_prepared_statements`.execute(
    dbs.get('named') as Kysely<unknown>,
  );
  process.stdout.write(
    `  plans of the named variant: ${plans.rows.map((r) => `${r.name} generic ${String(r.generic_plans)} custom ${String(r.custom_plans)}`).join('; ')}\n`,
  );
  for (const db of dbs.values()) await db.destroy();
  if (process.env.BENCH_KEEP !== '1') await dropListingsDatabase();
}

await main();
