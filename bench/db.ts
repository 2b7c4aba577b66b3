/**
 * Database benchmark on a scratch database of 1,000,000 rows:
 *
 * 1. Page latency, in process (no HTTP): the platform's `parseListQuery` + `paginate` over a
 *    Kysely query, keyset page 1 and page 1,000 against offset page 1 and page 1,000.
 * 2. Throughput of the first page (20 items): Groundwork's full stack against a bare node:http +
 *    `pg` server running the same query by hand. Each server runs in its own child process
 *    (`db-server.ts`); autocannon runs here, so the load generator never shares a process with a
 *    server.
 *
 * The database `gw_bench_db` is created on the server at `BENCH_DATABASE_URL` and dropped at the
 * end, unless `BENCH_KEEP=1` (a later run reuses a database seeded the same way).
 */
import { CONNECTIONS, load, PIPELINING, ServerChild, WARMUP_SECONDS } from './lib.ts';
import { Kysely, PostgresDialect, type CompiledQuery } from 'kysely';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/platform/config/index.ts';
import {
  openDatabase,
  paginate,
  parseListQuery,
  type AnySelect,
  type Database,
  type Page,
  tablesOf,
} from '../src/platform/db/index.ts';
import { createMetricsRegistry } from '../src/platform/observability/index.ts';
import {
  APPLICATION_NAME,
  LIST_PATH,
  PAGE_SIZE,
  POOL_SIZE,
  SERVER_KINDS,
  widgetSpec,
  type BenchDB,
  type ServerKind,
} from './db-data.ts';

const DATABASE = 'gw_bench_db';
const ROWS = 1_000_000;
/** Stored as the table's comment once seeding is complete; a kept database is reused only with it. */
const SEED_MARK = `bench db v1: ${String(ROWS)} rows`;
const FAR_PAGE = 1_000;
const LATENCY_WARMUP = 20;
const KEYSET_TARGET = 1.5;

const THROUGHPUT_TARGET = 0.6;

function positiveNumber(name: string, fallback: string): number {
  const raw = process.env[name] ?? fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a positive number, got "${raw}"`);
  }
  return value;
}

function serverUrl(): string {
  return process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
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

/**
 * One `insert ... select generate_series`, in `created_at` order like an append-only table.
 * `created_at` falls on a 4-second grid over 2025, so about 12% of the rows share their
 * timestamp with another (the `id` tiebreaker matters). `id` is UUID v7 made in SQL from `created_at`'s
 * milliseconds plus random bits, as `newId()` would have made it at insert time.
 */
const SEED_SQL = [
  "set maintenance_work_mem = '256MB'",
  `create table widgets (
    id uuid not null,
    created_at timestamptz not null,
    name text not null,
    status text not null,
    price integer not null
  )`,
  'select setseed(0.42)',
  `insert into widgets (id, created_at, name, status, price)
  select
    (lpad(to_hex(floor(extract(epoch from ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3)
      || substr('89ab', 1 + get_byte(decode(substr(h, 4, 2), 'hex'), 0) % 4, 1)
      || substr(h, 6, 15))::uuid,
    ts,
    'Widget ' || g,
    (array['draft', 'active', 'active', 'active', 'archived'])[1 + g % 5],
    100 + (g::bigint * 7919 % 99900)::int
  from (
    select g,
      timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => floor(random() * 7884000) * 4) as ts,
      md5(g::text || random()::text) as h
    from generate_series(1, ${String(ROWS)}) g
  ) seed
  order by ts`,
  'alter table widgets add constraint widgets_pkey primary key (id)',
  'create index widgets_created_at_id_idx on widgets (created_at desc, id desc)',
  'vacuum (analyze) widgets',
  `comment on table widgets is '${SEED_MARK}'`,
];

interface Seed {
  reused: boolean;
  seconds: number;
  rowsSharingCreatedAt: number;
}

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
      "select obj_description(to_regclass('widgets'), 'pg_class') as mark",
    );
    return rows[0]?.mark === SEED_MARK;
  });
}

async function prepareDatabase(): Promise<Seed> {
  const started = performance.now();
  const reused = await isSeeded();
  if (!reused) {
    process.stderr.write(`seeding ${DATABASE} with ${ROWS.toLocaleString('en-US')} rows\n`);
    await withClient(serverUrl(), async (client) => {
      await client.query(`drop database if exists ${DATABASE} with (force)`);
      await client.query(`create database ${DATABASE}`);
    });
    await withClient(benchUrl(), async (client) => {
      for (const statement of SEED_SQL) await client.query(statement);
    });
  } else {
    process.stderr.write(`reusing ${DATABASE} (seeded by an earlier run with BENCH_KEEP=1)\n`);
  }
  const rowsSharingCreatedAt = await withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ n: string }>(
      'select coalesce(sum(n), 0) as n from (select count(*) as n from widgets group by created_at having count(*) > 1) d',
    );
    return Number(rows[0]?.n ?? 0);
  });
  return { reused, seconds: (performance.now() - started) / 1000, rowsSharingCreatedAt };
}

async function dropDatabase(): Promise<void> {
  await withClient(serverUrl(), (client) =>
    client.query(`drop database if exists ${DATABASE} with (force)`),
  );
}

// ---------------------------------------------------------------------------------------------
// Page latency, in process

interface LatencyRow {
  name: string;
  query: Record<string, string>;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Statements one fetch sends (offset with a total adds the planner-estimate EXPLAIN). */
  statements: number;
  /** EXPLAIN ANALYZE of the page query: server-side planning and execution time, shared buffers. */
  dbPlanningMs: number;
  dbExecutionMs: number;
  dbBuffers: number;
  plan: string;
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

function benchConfig(): Config {
  return loadConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: benchUrl(),
    DATABASE_POOL_MAX: String(POOL_SIZE),
  });
}

type Fetch = (db: Kysely<BenchDB>, query: Record<string, string>) => Promise<Page<unknown>>;

function lister(config: Config): Fetch {
  const options = {
    secret: config.secrets.appSecret,
    estimateAbove: config.database.estimateAbove,
  };
  // One base factory per database handle, as a route holds one (statements compile once per shape).
  const bases = new WeakMap<Kysely<BenchDB>, () => AnySelect>();
  return (db, query) => {
    let base = bases.get(db);
    if (!base) {
      base = () =>
        db
          .selectFrom('widgets')
          .select(['id', 'name', 'status', 'price', 'created_at as createdAt']);
      bases.set(db, base);
    }
    return paginate(db, widgetSpec, parseListQuery(widgetSpec, query), base, options);
  };
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

function describePlan(node: PlanNode): string {
  const self = `${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}`;
  const children = (node.Plans ?? []).map(describePlan);
  return children.length === 0 ? self : `${self} > ${children.join(', ')}`;
}

/** The statements one fetch sends, captured through a Kysely on the same pool, then explained. */
async function explain(
  database: Database,
  fetch: Fetch,
  query: Record<string, string>,
): Promise<
  Pick<LatencyRow, 'statements' | 'dbPlanningMs' | 'dbExecutionMs' | 'dbBuffers' | 'plan'>
> {
  const captured: CompiledQuery[] = [];
  // Not destroyed: that would end the shared pool.
  const capturing = new Kysely<BenchDB>({
    dialect: new PostgresDialect({ pool: database.pool }),
    log: (event) => {
      if (event.level === 'query') captured.push(event.query);
    },
  });
  await fetch(capturing, query);
  const page = captured.find((q) => !q.sql.startsWith('explain'));
  if (!page) throw new Error('no page query captured');
  const { rows } = await database.pool.query<{
    'QUERY PLAN': { Plan: PlanNode; 'Planning Time': number; 'Execution Time': number }[];
  }>(`explain (analyze, buffers, format json) ${page.sql}`, [...page.parameters]);
  const [result] = rows[0]?.['QUERY PLAN'] ?? [];
  if (!result) throw new Error('EXPLAIN returned no plan');
  return {
    statements: captured.length,
    dbPlanningMs: result['Planning Time'],
    dbExecutionMs: result['Execution Time'],
    dbBuffers: (result.Plan['Shared Hit Blocks'] ?? 0) + (result.Plan['Shared Read Blocks'] ?? 0),
    plan: describePlan(result.Plan),
  };
}

interface Latency {
  rows: LatencyRow[];
  firstPageIds: string[];
}

async function measureLatency(samples: number): Promise<Latency> {
  const config = benchConfig();
  const database = await openDatabase(config, {
    logger: pino({ level: 'silent' }),
    metrics: createMetricsRegistry(),
    role: 'bench-latency',
  });
  try {
    const db = tablesOf<BenchDB>(database.db);
    const fetch = lister(config);
    const limit = String(PAGE_SIZE);

    // Walk the keyset pages once to get the cursor of page 1,000.
    let cursor: string | null = null;
    for (let page = 1; page < FAR_PAGE; page++) {
      const result: Page<unknown> = await fetch(db, cursor ? { limit, cursor } : { limit });
      cursor = result.page.nextCursor;
      if (cursor === null) throw new Error(`keyset walk ended at page ${String(page)}`);
    }
    const farCursor = cursor as string;

    const far = String(FAR_PAGE);
    const variants: { name: string; query: Record<string, string> }[] = [
      { name: 'keyset page 1', query: { limit } },
      {
        name: `keyset page ${FAR_PAGE.toLocaleString('en-US')}`,
        query: { limit, cursor: farCursor },
      },
      { name: 'offset page 1', query: { page: '1', size: limit, count: 'false' } },
      {
        name: `offset page ${FAR_PAGE.toLocaleString('en-US')}`,
        query: { page: far, size: limit, count: 'false' },
      },
      { name: 'offset page 1, with total', query: { page: '1', size: limit } },
      {
        name: `offset page ${FAR_PAGE.toLocaleString('en-US')}, with total`,
        query: { page: far, size: limit },
      },
    ];

    // Both ways of reaching a page must return the same rows, or the comparison means nothing.
    const ids = async (query: Record<string, string>) =>
      (await fetch(db, query)).items.map((item) => (item as { id: string }).id);
    const [keysetFirst, keysetFar, offsetFirst, offsetFar] = await Promise.all(
      variants.slice(0, 4).map((v) => ids(v.query)),
    );
    if (
      keysetFirst?.length !== PAGE_SIZE ||
      !isDeepStrictEqual(keysetFirst, offsetFirst) ||
      keysetFar?.length !== PAGE_SIZE ||
      !isDeepStrictEqual(keysetFar, offsetFar)
    ) {
      throw new Error('keyset and offset pages differ: the comparison would not be fair');
    }

    // Interleaved, one fetch of each variant per round, so that a busy moment on the shared
    // machine hits every variant alike.
    const timings = variants.map(() => [] as number[]);
    process.stderr.write(
      `page latency: ${String(LATENCY_WARMUP)} warm-up + ${String(samples)} rounds of ${String(variants.length)} fetches\n`,
    );
    for (let round = 0; round < LATENCY_WARMUP + samples; round++) {
      for (const [i, variant] of variants.entries()) {
        const started = performance.now();
        await fetch(db, variant.query);
        const elapsed = performance.now() - started;
        if (round >= LATENCY_WARMUP) timings[i]?.push(elapsed);
      }
    }

    const rows: LatencyRow[] = [];
    for (const [i, variant] of variants.entries()) {
      const sorted = (timings[i] ?? []).toSorted((a, b) => a - b);
      const query =
        'cursor' in variant.query ? { ...variant.query, cursor: '<page 1,000>' } : variant.query;
      rows.push({
        name: variant.name,
        query,
        samples: sorted.length,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
        ...(await explain(database, fetch, variant.query)),
      });
    }
    return { rows, firstPageIds: keysetFirst };
  } finally {
    await database.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Throughput, servers in child processes

interface ThroughputRow {
  server: ServerKind;
  path: string;
  requestsPerSecond: number;
  latencyP99Ms: number;
  latencyAverageMs: number;
  requests: number;
  /** Server process CPU time per request: steadier than requests/s when the machine is shared. */
  serverCpuMicrosPerRequest: number;
  /** CPU time of the server's PostgreSQL backends per request; null when they cannot be read. */
  postgresCpuMicrosPerRequest: number | null;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (µs) of each PostgreSQL backend serving `kind`'s pool, from /proc: null when the
 * database runs elsewhere (or /proc is not readable).
 */
async function backendCpu(admin: pg.Client, kind: ServerKind): Promise<Map<number, number> | null> {
  const { rows } = await admin.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = $1 and application_name = $2',
    [DATABASE, APPLICATION_NAME[kind]],
  );
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) return null;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
      cpu.set(pid, (ticks * 1_000_000) / CLOCK_TICKS);
    } catch {
      return null;
    }
  }
  return cpu;
}

function cpuDelta(before: Map<number, number> | null, after: Map<number, number> | null) {
  if (!before || !after) return null;
  let total = 0;
  for (const [pid, micros] of after) total += micros - (before.get(pid) ?? 0);
  return total;
}

interface Body {
  items: { id: string }[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
}

/** Fails fast unless both servers answer the same 20 items, in the order of keyset page 1. */
function listUrl(server: ServerChild<ServerKind>): string {
  return `http://127.0.0.1:${String(server.port)}${LIST_PATH}`;
}

async function checkResponses(
  servers: ServerChild<ServerKind>[],
  expectedIds: string[],
): Promise<void> {
  const bodies: Body[] = [];
  for (const server of servers) {
    const response = await fetch(listUrl(server));
    if (response.status !== 200) {
      throw new Error(`${server.kind} ${listUrl(server)} answered ${String(response.status)}`);
    }
    if (server.kind === 'groundwork' && !response.headers.has('x-request-id')) {
      throw new Error('groundwork answered without x-request-id: its full stack is not active');
    }
    const body = (await response.json()) as Body;
    const ids = body.items.map((item) => item.id);
    if (!isDeepStrictEqual(ids, expectedIds) || !body.page.hasMore || !body.page.nextCursor) {
      throw new Error(`${server.kind} ${listUrl(server)} answered other items than keyset page 1`);
    }
    bodies.push(body);
  }
  const [first, ...others] = bodies;
  if (!others.every((body) => isDeepStrictEqual(body.items, first?.items))) {
    throw new Error('the servers answered different items (fields or values)');
  }
}

async function measureThroughput(
  admin: pg.Client,
  server: ServerChild<ServerKind>,
  duration: number,
): Promise<ThroughputRow> {
  process.stderr.write(
    `${server.kind} ${LIST_PATH}: ${String(WARMUP_SECONDS)} s warm-up, ${String(duration)} s measured\n`,
  );
  await load(listUrl(server), WARMUP_SECONDS);
  const cpuBefore = await server.cpuMicros();
  const pgBefore = await backendCpu(admin, server.kind);
  const result = await load(listUrl(server), duration);
  const cpuAfter = await server.cpuMicros();
  const pgAfter = await backendCpu(admin, server.kind);
  const pgMicros = cpuDelta(pgBefore, pgAfter);
  return {
    server: server.kind,
    path: LIST_PATH,
    requestsPerSecond: result.requests.average,
    latencyP99Ms: result.latency.p99,
    latencyAverageMs: result.latency.average,
    requests: result.requests.total,
    serverCpuMicrosPerRequest: (cpuAfter - cpuBefore) / result.requests.total,
    postgresCpuMicrosPerRequest: pgMicros === null ? null : pgMicros / result.requests.total,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const ms = (value: number) => value.toFixed(2);

function latencyTable(rows: LatencyRow[]): string {
  return [
    '| Page (limit 20, sort -createdAt) | p50 (ms) | p99 (ms) | Statements | PostgreSQL planning (ms) | PostgreSQL execution (ms) | Buffers | Plan |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${String(r.statements)} | ${ms(r.dbPlanningMs)} | ${ms(r.dbExecutionMs)} | ${String(r.dbBuffers)} | ${r.plan} |`,
    ),
  ].join('\n');
}

function throughputTable(rows: ThroughputRow[], ratio: number): string {
  return [
    '| Server | Requests/s (avg) | p99 latency (ms) | Server CPU (µs/request) | PostgreSQL CPU (µs/request) | Groundwork / bare (req/s) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const rps = Math.round(r.requestsPerSecond).toLocaleString('en-US');
      const pgCpu = r.postgresCpuMicrosPerRequest?.toFixed(1) ?? 'n/a';
      const shown = r.server === 'groundwork' ? ratio.toFixed(2) : '';
      return `| ${r.server} | ${rps} | ${r.latencyP99Ms.toFixed(1)} | ${r.serverCpuMicrosPerRequest.toFixed(1)} | ${pgCpu} | ${shown} |`;
    }),
  ].join('\n');
}

export async function main(): Promise<void> {
  const duration = positiveNumber('BENCH_DURATION', '10');
  const samples = Math.round(positiveNumber('BENCH_SAMPLES', '1000'));
  const keep = process.env.BENCH_KEEP === '1';

  const seed = await prepareDatabase();
  const postgres = await withClient(benchUrl(), async (client) => {
    const { rows } = await client.query<{ v: string }>(
      "select current_setting('server_version') as v",
    );
    return rows[0]?.v ?? 'unknown';
  });
  process.stderr.write(
    `${DATABASE} ready in ${seed.seconds.toFixed(1)} s (${seed.rowsSharingCreatedAt.toLocaleString('en-US')} rows share their created_at)\n`,
  );

  let latency: Latency;
  const throughput: ThroughputRow[] = [];
  try {
    latency = await measureLatency(samples);

    // Both servers start first (an idle one costs little), then are measured back to back.
    const servers: ServerChild<ServerKind>[] = [];
    try {
      for (const kind of SERVER_KINDS)
        servers.push(
          await ServerChild.start(new URL('./db-server.ts', import.meta.url), kind, [benchUrl()]),
        );
      await checkResponses(servers, latency.firstPageIds);
      await withClient(benchUrl(), async (admin) => {
        for (const server of servers)
          throughput.push(await measureThroughput(admin, server, duration));
      });
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  } finally {
    if (keep) process.stderr.write(`keeping ${DATABASE} (BENCH_KEEP=1)\n`);
    else await dropDatabase();
  }

  const p50 = (index: number) => latency.rows[index]?.p50Ms ?? Number.NaN;
  const p99 = (index: number) => latency.rows[index]?.p99Ms ?? Number.NaN;
  // The target is on the median; p99 of a few hundred sub-millisecond samples on a shared
  // machine mostly measures the machine, so its ratio is reported, not judged.
  const keysetRatio = p50(1) / p50(0);
  const keysetP99Ratio = p99(1) / p99(0);
  const offsetRatio = p50(3) / p50(2);
  const offsetP99Ratio = p99(3) / p99(2);
  const rps = (kind: ServerKind) =>
    throughput.find((r) => r.server === kind)?.requestsPerSecond ?? Number.NaN;
  const throughputRatio = rps('groundwork') / rps('bare');
  const met = {
    keyset: keysetRatio <= KEYSET_TARGET,
    throughput: throughputRatio >= THROUGHPUT_TARGET,
  };
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

  process.stdout.write(
    [
      latencyTable(latency.rows),
      '',
      `Keyset page ${String(FAR_PAGE)} / page 1: p50 ${keysetRatio.toFixed(2)} (target <= ${KEYSET_TARGET.toFixed(2)}: ${verdict(met.keyset)}), p99 ${keysetP99Ratio.toFixed(2)}`,
      `Offset page ${String(FAR_PAGE)} / page 1: p50 ${offsetRatio.toFixed(2)}, p99 ${offsetP99Ratio.toFixed(2)}`,
      '',
      throughputTable(throughput, throughputRatio),
      '',
      `Groundwork / bare requests/s: ${throughputRatio.toFixed(2)} (target >= ${THROUGHPUT_TARGET.toFixed(2)}: ${verdict(met.throughput)})`,
      '',
    ].join('\n'),
  );

  const report = {
    benchmark: 'db',
    date: new Date().toISOString(),
    node: process.version,
    postgres,
    cpus: cpus().length,
    settings: {
      rows: ROWS,
      pageSize: PAGE_SIZE,
      farPage: FAR_PAGE,
      latencyWarmupRounds: LATENCY_WARMUP,
      latencySamples: samples,
      poolSize: POOL_SIZE,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      warmupSeconds: WARMUP_SECONDS,
      durationSeconds: duration,
    },
    seed,
    latency: latency.rows,
    throughput,
    ratios: {
      keyset: keysetRatio,
      keysetP99: keysetP99Ratio,
      offset: offsetRatio,
      offsetP99: offsetP99Ratio,
      throughput: throughputRatio,
    },
    targets: { keyset: KEYSET_TARGET, throughput: THROUGHPUT_TARGET },
    met,
  };
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(new URL('db.json', dir), `${JSON.stringify(report, null, 2)}\n`);
}
