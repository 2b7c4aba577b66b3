/**
 * Spots benchmark (issue 17) on a scratch database of 1,000,000 spots (`BENCH_SPOTS`): 60% spread
 * over the globe, 40% in ten city clusters (about 40,000 around Paris, a Gaussian of ~5.5 km).
 *
 * Two queries, each through the whole stack (`buildApp` with the spots app, a child process) and
 * through a raw baseline (node:http + `pg` running the same SQL by hand, another child):
 *
 * - nearby: 20 nearest spots within 2 km of central Paris (the densest place of the seed);
 * - text: `q=sunset harbour` (full text, weighted ranking), 20 best.
 *
 * For each: latency p50/p99 from one connection at a time (`BENCH_LATENCY_SECONDS`), and
 * requests/s under load (autocannon, 50 connections, `BENCH_DURATION`). Targets: nearby p99 at
 * most 20 ms and at least 0.6× the raw requests/s; text p99 at most 50 ms.
 *
 * `BENCH_GEO=postgis` runs both servers' nearby search through PostGIS (the app's `SPOTS_GEO`;
 * the server needs PostGIS); earthdistance otherwise.
 *
 * The database `gw_bench_spots` is made on `BENCH_DATABASE_URL`'s server and dropped at the end
 * unless `BENCH_KEEP=1` (a later run reuses one seeded with the same count).
 */
import autocannon from 'autocannon';
import { cpus } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { spotsApp } from '../src/apps/spots/index.ts';
import { knownModules } from '../src/app.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrateToLatest, openDatabase } from '../src/platform/db/index.ts';
import { admin, load, ServerChild, serverUrl, WARMUP_SECONDS } from './lib.ts';
import { GEO, QUERIES, SERVER_KINDS, type QueryName, type ServerKind } from './spots-data.ts';

const DATABASE = 'gw_bench_spots';
const TARGETS = { nearbyP99Ms: 20, nearbyThroughput: 0.6, textP99Ms: 50 };

function positive(name: string, fallback: string): number {
  const raw = process.env[name] ?? fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function benchUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench:admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Scratch database

const CITIES: [string, number, number][] = [
  ['Paris', 48.8566, 2.3522],
  ['London', 51.5074, -0.1278],
  ['New York', 40.7128, -74.006],
  ['Tokyo', 35.6762, 139.6503],
  ['Sydney', -33.8688, 151.2093],
  ['São Paulo', -23.5505, -46.6333],
  ['Cairo', 30.0444, 31.2357],
  ['Mumbai', 19.076, 72.8777],
  ['Mexico City', 19.4326, -99.1332],
  ['Reykjavík', 64.1466, -21.9426],
];
const ADJECTIVES =
  'sunset,golden,misty,hidden,old,quiet,painted,rusty,blue,green,silent,windy,frozen,northern,southern,ancient,little,grand,secret,broken,bright,dark,lonely,royal,wild,stone,iron,glass,crooked,narrow,wide,high,low,sunny,rainy,foggy,twilight,morning,evening,midnight';
const NOUNS =
  'harbour,bridge,tower,mural,garden,market,pier,steps,square,chapel,fountain,alley,viewpoint,lighthouse,station,rooftop,park,canal,gate,wall,arch,hill,beach,cliff,forest,lake,river,statue,theatre,library,courtyard,terrace,quay,dock,tunnel,staircase,balcony,cafe,palace,ruins';
const TAGS = 'sunrise,sunset,night,street,river,sea,architecture,graffiti,panorama,reflection';
const CATEGORIES = 'viewpoint,mural,architecture,bridge,nature,street,monument,water,night,other';

const arr = (csv: string) => `string_to_array('${csv}', ',')`;

/**
 * One `insert ... select generate_series` with the secondary indexes dropped first and rebuilt
 * after (much faster than maintaining them row by row). Cities: a Gaussian (Box-Muller) of
 * σ = 0.05° latitude around each centre; the rest uniform over the sphere (asin of a uniform).
 */
function seedSql(rows: number): string {
  const lat = `(array[${CITIES.map((c) => String(c[1])).join(',')}]::float8[])`;
  const lng = `(array[${CITIES.map((c) => String(c[2])).join(',')}]::float8[])`;
  return `
  insert into spots_spot (id, owner_id, name, description, address, category, tags, lat, lng,
                          favourite_count, created_at, updated_at)
  select gen_random_uuid(),
         md5('owner' || (g % 20000))::uuid,
         initcap(a[1 + h % 40] || ' ' || n[1 + (h / 40) % 40]) || ' ' || g,
         'A ' || a[1 + (h / 1600) % 40] || ' ' || n[1 + (h / 64000) % 40] || ' seen from the '
           || (array['north','south','east','west'])[1 + g % 4] || '.',
         case when g % 3 = 0 then (g % 200) || ' ' || initcap(n[1 + (h / 7) % 40]) || ' Street' end,
         c[1 + g % 10],
         array[t[1 + h % 10], t[1 + (h / 10) % 10]],
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
         now() - random() * interval '730 days',
         now()
    from (select g, (hashint4(g) & 2147483647) as h, random() as r1, random() as r2,
                 random() as r3, random() as r4
            from generate_series(1, ${String(rows)}) g) x,
         (select ${arr(ADJECTIVES)} as a, ${arr(NOUNS)} as n, ${arr(TAGS)} as t,
                 ${arr(CATEGORIES)} as c) v`;
}

async function isSeeded(mark: string): Promise<boolean> {
  const exists = await withClient(serverUrl(), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [
      DATABASE,
    ]);
    return rowCount === 1;
  });
  if (!exists) return false;
  return withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ mark: string | null }>(
      "select obj_description(to_regclass('spots_spot'), 'pg_class') as mark",
    );
    return rows[0]?.mark === mark;
  });
}

/** The platform's tables and the spots app's, as a deployment has them. */
async function migrateBench(): Promise<void> {
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
}

async function prepareDatabase(rows: number): Promise<{ reused: boolean; seconds: number }> {
  const started = performance.now();
  const mark = `bench spots v3 (search tiers): ${String(rows)} spots`;
  if (await isSeeded(mark)) {
    process.stderr.write(`reusing ${DATABASE} (seeded by an earlier run with BENCH_KEEP=1)\n`);
    // Migrations added since (the PostGIS index, for one) are applied to the kept database.
    await migrateBench();
    return { reused: true, seconds: (performance.now() - started) / 1000 };
  }
  process.stderr.write(`seeding ${DATABASE} with ${rows.toLocaleString('en-US')} spots\n`);
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  await migrateBench();
  await withClient(benchUrl(), async (client) => {
    await client.query("set maintenance_work_mem = '512MB'");
    const { rows: indexes } = await client.query<{ name: string; def: string }>(
      `select indexname as name, indexdef as def from pg_indexes
        where tablename = 'spots_spot' and indexname <> 'spots_spot_pkey'`,
    );
    for (const index of indexes) await client.query(`drop index ${index.name}`);
    await client.query(seedSql(rows));
    for (const index of indexes) {
      process.stderr.write(`  index ${index.name}\n`);
      await client.query(index.def);
    }
    await client.query('vacuum (analyze) spots_spot');
    await client.query(`comment on table spots_spot is '${mark}'`);
  });
  return { reused: false, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Measurements

const urlOf = (server: ServerChild<ServerKind>, query: QueryName) =>
  `http://127.0.0.1:${String(server.port)}${QUERIES[query][server.kind]}`;

interface Body {
  items: Record<string, unknown>[];
}

/** Both servers must answer the same spots in the same order, field for field. */
async function checkSame(servers: ServerChild<ServerKind>[], query: QueryName): Promise<number> {
  const answers: Record<string, unknown>[][] = [];
  for (const server of servers) {
    const res = await fetch(urlOf(server, query));
    if (res.status !== 200)
      throw new Error(
        `${server.kind} ${query} answered ${String(res.status)}: ${await res.text()}`,
      );
    const body = (await res.json()) as Body;
    // Keys sorted: the same fields whatever order each server writes them in.
    answers.push(body.items.map((i) => Object.fromEntries(Object.entries(i).sort())));
  }
  const [first, ...others] = answers;
  if (!first || first.length === 0)
    throw new Error(`${query}: no results (the seed is too small?)`);
  for (const other of others)
    if (!isDeepStrictEqual(other, first))
      throw new Error(`${query}: the servers answered different spots`);
  return first.length;
}

interface Row {
  query: QueryName;
  server: ServerKind;
  p50Ms: number;
  p99Ms: number;
  sequentialRequests: number;
  requestsPerSecond: number;
  loadedP99Ms: number;
  serverCpuMicrosPerRequest: number;
}

async function sequential(url: string, seconds: number): Promise<autocannon.Result> {
  const result = await autocannon({ url, connections: 1, pipelining: 1, duration: seconds });
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${url}: errors under load`);
  return result;
}

async function measure(
  server: ServerChild<ServerKind>,
  query: QueryName,
  latencySeconds: number,
  duration: number,
): Promise<Row> {
  const url = urlOf(server, query);
  process.stderr.write(
    `${server.kind} ${query}: warm-up, ${String(latencySeconds)} s one at a time, ${String(duration)} s loaded\n`,
  );
  await load(url, WARMUP_SECONDS);
  const one = await sequential(url, latencySeconds);
  const cpuBefore = await server.cpuMicros();
  const loaded = await load(url, duration);
  const cpuAfter = await server.cpuMicros();
  return {
    query,
    server: server.kind,
    p50Ms: one.latency.p50,
    p99Ms: one.latency.p99,
    sequentialRequests: one.requests.total,
    requestsPerSecond: loaded.requests.average,
    loadedP99Ms: loaded.latency.p99,
    serverCpuMicrosPerRequest: (cpuAfter - cpuBefore) / loaded.requests.total,
  };
}

function table(rows: Row[]): string {
  return [
    '| Query | Server | p50 (ms, 1 conn.) | p99 (ms, 1 conn.) | Requests/s (50 conn.) | p99 (ms, 50 conn.) | Server CPU (µs/req) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.query} | ${r.server} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${Math.round(r.requestsPerSecond).toLocaleString('en-US')} | ${r.loadedP99Ms.toFixed(1)} | ${r.serverCpuMicrosPerRequest.toFixed(0)} |`,
    ),
  ].join('\n');
}

export async function main(): Promise<void> {
  const spots = Math.round(positive('BENCH_SPOTS', '1000000'));
  const duration = positive('BENCH_DURATION', '10');
  const latencySeconds = positive('BENCH_LATENCY_SECONDS', '5');
  const keep = process.env.BENCH_KEEP === '1';

  const seed = await prepareDatabase(spots);
  process.stderr.write(`${DATABASE} ready in ${seed.seconds.toFixed(1)} s\n`);
  const postgres = await withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ v: string }>(
      "select current_setting('server_version') as v",
    );
    return rows[0]?.v ?? 'unknown';
  });
  const results: Row[] = [];
  const found: Record<string, number> = {};
  try {
    const servers: ServerChild<ServerKind>[] = [];
    try {
      for (const kind of SERVER_KINDS)
        servers.push(
          await ServerChild.start(new URL('./spots-server.ts', import.meta.url), kind, [
            benchUrl(),
          ]),
        );
      for (const query of Object.keys(QUERIES) as QueryName[]) {
        found[query] = await checkSame(servers, query);
        for (const server of servers)
          results.push(await measure(server, query, latencySeconds, duration));
      }
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  } finally {
    if (keep) process.stderr.write(`keeping ${DATABASE} (BENCH_KEEP=1)\n`);
    else await admin(`drop database if exists ${DATABASE} with (force)`);
  }

  const row = (query: QueryName, server: ServerKind) =>
    results.find((r) => r.query === query && r.server === server);
  const ratio = (query: QueryName) =>
    (row(query, 'groundwork')?.requestsPerSecond ?? Number.NaN) /
    (row(query, 'raw')?.requestsPerSecond ?? Number.NaN);
  const met = {
    nearbyP99: (row('nearby', 'groundwork')?.p99Ms ?? Infinity) <= TARGETS.nearbyP99Ms,
    nearbyThroughput: ratio('nearby') >= TARGETS.nearbyThroughput,
    textP99: (row('text', 'groundwork')?.p99Ms ?? Infinity) <= TARGETS.textP99Ms,
  };
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  process.stdout.write(
    [
      table(results),
      '',
      `Nearby (2 km of central Paris, 20 of the spots found; geo ${GEO}): Groundwork p99 ${String(row('nearby', 'groundwork')?.p99Ms)} ms (target <= ${String(TARGETS.nearbyP99Ms)}: ${verdict(met.nearbyP99)}); Groundwork / raw requests/s ${ratio('nearby').toFixed(2)} (target >= ${TARGETS.nearbyThroughput.toFixed(2)}: ${verdict(met.nearbyThroughput)})`,
      `Text ("sunset harbour"): Groundwork p99 ${String(row('text', 'groundwork')?.p99Ms)} ms (target <= ${String(TARGETS.textP99Ms)}: ${verdict(met.textP99)}); Groundwork / raw requests/s ${ratio('text').toFixed(2)}`,
      '',
    ].join('\n'),
  );
  const report = {
    benchmark: 'spots',
    date: new Date().toISOString(),
    node: process.version,
    postgres,
    cpus: cpus().length,
    settings: {
      spots,
      geo: GEO,
      durationSeconds: duration,
      latencySeconds,
      warmupSeconds: WARMUP_SECONDS,
    },
    seed,
    found,
    results,
    ratios: { nearby: ratio('nearby'), text: ratio('text') },
    targets: TARGETS,
    met,
  };
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(new URL('spots.json', dir), `${JSON.stringify(report, null, 2)}\n`);
}
