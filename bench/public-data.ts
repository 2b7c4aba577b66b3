/**
 * Public data benchmark (`npm run bench -- public-data`), on a dataset of 1,000,000 rows
 * imported through the app's own import job (a generated CSV, two streamed passes, COPY):
 *
 * (a) a filtered, sorted page of 50 rows through the whole stack, against the same statement
 *     (the app's own, as it builds it) on a bare node:http + pg server: at least 0.6× its
 *     requests/s at saturation, and p99 ≤ 25 ms at a steady rate of half the raw server's
 *     saturation throughput, both servers measured at that rate (at saturation a p99 is the load
 *     generator's own queue: lib.ts, steadyLatency);
 * (b) a cached repeat (If-None-Match → 304) against bare Fastify answering a static 304: ≥ 0.6×;
 * (c) the whole dataset exported as CSV: ≥ 200,000 rows/s, server RSS growth < 50 MB.
 *
 * Servers run in child processes (`public-data-server.ts`); autocannon runs here.
 * `BENCH_SCALE` (default 1) scales the rows (0.01: 10,000 rows, to check the benchmark works),
 * `BENCH_DURATION` the seconds of each load (default 10). The database `gw_bench_public_data`
 * and the storage folder are dropped at the end unless `BENCH_KEEP=1` (a later run reuses them).
 */
import autocannon from 'autocannon';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { enabledModules, knownModules } from '../src/app.ts';
import { publicDataApp } from '../src/apps/public-data/index.ts';
import { importVersion } from '../src/apps/public-data/import.ts';
import { metadataOf } from '../src/apps/public-data/metadata.ts';
import { pageSql, planRows } from '../src/apps/public-data/query.ts';
import type { PublicDataSettings } from '../src/apps/public-data/settings.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrateToLatest, newId } from '../src/platform/db/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import {
  CONNECTIONS,
  PIPELINING,
  STEADY_SHARE,
  ServerChild,
  WARMUP_SECONDS,
  admin,
  serverUrl,
  steadyLatency,
} from './lib.ts';

const DATABASE = 'gw_bench_public_data';
const SLUG = 'bench';
const PAGE = 50;
const CATEGORIES = 20;
const TARGETS = {
  p99Ms: 25,
  pageRatio: 0.6,
  cachedRatio: 0.6,
  exportRowsPerS: 200_000,
  rssGrowthMb: 50,
};

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

function benchUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

/** The generated CSV: ids in order, 20 categories, prices with cents, times, points, words. */
function* csv(rows: number): Generator<string> {
  yield 'id,name,category,price,created,location,score\n';
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
  let batch = '';
  for (let i = 1; i <= rows; i++) {
    const lat = ((i * 7919) % 18_000) / 100 - 90;
    const lng = ((i * 104_729) % 36_000) / 100 - 180;
    const created = new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString();
    batch += `${String(i)},${words[i % 8] as string} ${words[(i >> 3) % 8] as string} ${String(i)},cat-${String(i % CATEGORIES)},${String((i * 37) % 100_000)}.${String(i % 100).padStart(2, '0')},${created},"${lat.toFixed(2)},${lng.toFixed(2)}",${String((i * 13) % 1000)}\n`;
    if (batch.length > 65_536) {
      yield batch;
      batch = '';
    }
  }
  if (batch !== '') yield batch;
}

/** Loads `url` and refuses any answer but `status` (autocannon counts a 304 as non-2xx). */
async function loadExpecting(
  url: string,
  duration: number,
  status: number,
  headers: Record<string, string> = {},
): Promise<autocannon.Result> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration,
    headers,
  });
  const other = Object.entries(result.statusCodeStats ?? {}).filter(
    ([code]) => Number(code) !== status,
  );
  if (result.errors > 0 || other.length > 0)
    throw new Error(
      `${url}: ${String(result.errors)} errors, statuses ${JSON.stringify(result.statusCodeStats)}`,
    );
  return result;
}

export async function main(): Promise<void> {
  const rows = Math.max(1_000, Math.round(1_000_000 * envNumber('BENCH_SCALE', 1)));
  const duration = envNumber('BENCH_DURATION', 10);
  const keep = process.env.BENCH_KEEP === '1';
  const storageDir = join(tmpdir(), 'gw-bench-public-data');
  await mkdir(storageDir, { recursive: true });
  const exists = await (async () => {
    const client = new pg.Client(serverUrl());
    await client.connect();
    try {
      return (
        (await client.query('select 1 from pg_database where datname = $1', [DATABASE]))
          .rowCount === 1
      );
    } finally {
      await client.end();
    }
  })();
  if (!exists) await admin(`create database ${DATABASE}`);

  const config = loadConfig(
    { APP_ENV: 'test', LOG_LEVEL: 'warn', DATABASE_URL: benchUrl(), STORAGE_LOCAL_DIR: storageDir },
    { modules: [...knownModules(), publicDataApp] },
  );
  const settings = config.modules['public-data'] as unknown as PublicDataSettings;
  const platform = await createPlatform(config, {
    logger: pino({ level: 'warn' }),
    modules: enabledModules(config, [publicDataApp]),
    role: 'bench',
  });
  const children: ServerChild[] = [];
  try {
    const db = platform.database;
    await migrateToLatest(db.db, allMigrations([publicDataApp]));
    // ---- the dataset, through the real import (reused when kept with the same size) ----
    const found = await db.pool.query<{ n: string }>(
      `select v.row_count::text as n from pd_dataset d join pd_version v
         on v.dataset_id = d.id and v.number = d.current_version
       where d.slug = $1 and d.deleted_at is null`,
      [SLUG],
    );
    let importSeconds: number | null = null;
    if (Number(found.rows[0]?.n ?? 0) !== rows) {
      process.stderr.write(
        `importing ${rows.toLocaleString('en-US')} rows through the import job...\n`,
      );
      await db.pool.query(`delete from pd_dataset where slug = $1`, [SLUG]);
      await db.pool.query('drop schema if exists public_data cascade');
      await db.pool.query('create schema public_data');
      const userId = newId();
      await db.pool.query(
        `insert into gw_user (id, email, username, password_hash) values ($1, $2, $3, 'x')`,
        [userId, `bench-${userId}@example.com`, `bench_${userId.slice(-12)}`],
      );
      const fileId = newId();
      const key = `files/${fileId}/upload`;
      const stored = await platform.storage.put(key, Readable.from(csv(rows)), {
        contentType: 'text/csv',
      });
      await db.pool.query(
        `insert into gw_file (id, owner_id, purpose, status, content_type, size, checksum_sha256,
           filename, upload_key, original_key, original_content_type, original_size, quota_bytes)
         values ($1, $2, 'public-data.dataset', 'ready', 'text/csv', $3, '', 'bench.csv', $4, $4, 'text/csv', $3, $3)`,
        [fileId, userId, stored.size, key],
      );
      const datasetId = newId();
      await db.pool.query(`insert into pd_dataset (id, slug, title) values ($1, $2, 'Benchmark')`, [
        datasetId,
        SLUG,
      ]);
      const versionId = newId();
      await db.pool.query(
        `insert into pd_version (id, dataset_id, number, status, file_id, format) values ($1, $2, 1, 'queued', $3, 'csv')`,
        [versionId, datasetId, fileId],
      );
      const started = performance.now();
      const outcome = await importVersion(platform, versionId, settings);
      importSeconds = (performance.now() - started) / 1000;
      if (outcome.status !== 'ready' || outcome.rowCount !== rows)
        throw new Error(`import: ${JSON.stringify(outcome)}`);
      process.stderr.write(`imported in ${importSeconds.toFixed(1)} s\n`);
    }

    // ---- the page of (a): the app's own statement ----
    const path = `/api/v1/public-data/datasets/${SLUG}/rows?category=cat-7&sort=-price&limit=${String(PAGE)}`;
    const meta = await metadataOf(platform).get(SLUG);
    if (!meta?.current) throw new Error('no current version');
    const plan = planRows(meta.current, { category: 'cat-7', sort: '-price' }, settings, {
      inline: false,
    });
    const statement = {
      text: pageSql(plan, { limit: PAGE, secret: 'x' }),
      params: plan.binder.params,
      limit: PAGE,
    };

    const url = benchUrl();
    const gw = await ServerChild.start(
      new URL('./public-data-server.ts', import.meta.url),
      'groundwork',
      [url, storageDir],
    );
    children.push(gw);
    const raw = await ServerChild.start(
      new URL('./public-data-server.ts', import.meta.url),
      'raw',
      [url, storageDir, JSON.stringify(statement)],
    );
    children.push(raw);
    const fixed = await ServerChild.start(
      new URL('./public-data-server.ts', import.meta.url),
      'static',
      [url, storageDir],
    );
    children.push(fixed);
    const base = (c: ServerChild) => `http://127.0.0.1:${String(c.port)}`;

    // Same rows both ways, or the comparison means nothing.
    const viaApp = (await (await fetch(`${base(gw)}${path}`)).json()) as { items: unknown[] };
    const viaRaw = (await (await fetch(`${base(raw)}/`)).json()) as { items: unknown[] };
    if (
      JSON.stringify(viaApp.items) !== JSON.stringify(viaRaw.items) ||
      viaApp.items.length !== PAGE
    )
      throw new Error('the app and the raw statement answer different rows');

    const run = async (
      name: string,
      server: ServerChild,
      target: string,
      status: number,
      headers: Record<string, string> = {},
    ) => {
      await loadExpecting(target, WARMUP_SECONDS, status, headers);
      const cpuBefore = await server.cpuMicros();
      const r = await loadExpecting(target, duration, status, headers);
      const cpu = (await server.cpuMicros()) - cpuBefore;
      process.stderr.write(
        `${name}: ${r.requests.average.toFixed(0)} req/s, p99 ${String(r.latency.p99)} ms\n`,
      );
      return {
        name,
        requestsPerSecond: r.requests.average,
        latencyP99Ms: r.latency.p99,
        latencyAverageMs: r.latency.average,
        requests: r.requests.total,
        // Steadier than requests/s on a shared machine.
        serverCpuMicrosPerRequest: cpu / Math.max(1, r.requests.total),
      };
    };
    // (a) The raw server at saturation sets the steady rate (half of it: lib.ts, steadyLatency);
    // both servers at that rate give the p99 target's figures, taken before Groundwork is
    // saturated: a saturated server keeps 50 requests' objects alive, and the collections they
    // cost land in the next seconds. Groundwork's saturation run comes last, then the steady rate
    // once more (printed as the p99 right after an overload, not the target's).
    const pageRaw = await run('page: raw SQL', raw, `${base(raw)}/`, 200);
    const steadyRate = pageRaw.requestsPerSecond * STEADY_SHARE;
    const pageSteady = {
      app: await steadyLatency(`${base(gw)}${path}`, steadyRate, duration),
      raw: await steadyLatency(`${base(raw)}/`, steadyRate, duration),
    };
    const pageApp = await run('page: groundwork', gw, `${base(gw)}${path}`, 200);
    const appAfterSaturation = await steadyLatency(`${base(gw)}${path}`, steadyRate, duration);
    process.stderr.write(
      `page at a steady ${String(pageSteady.app.offered)} req/s: p99 ${String(pageSteady.app.p99)} ms (raw ${String(pageSteady.raw.p99)} ms; Groundwork right after its saturation run ${String(appAfterSaturation.p99)} ms)\n`,
    );
    // (b)
    const etag = (await fetch(`${base(gw)}${path}`)).headers.get('etag') ?? '';
    const cachedApp = await run('304: groundwork', gw, `${base(gw)}${path}`, 304, {
      'if-none-match': etag,
    });
    const cachedBare = await run('304: bare Fastify', fixed, `${base(fixed)}/static`, 304, {
      'if-none-match': '"static-etag-0123456789abcdefghij"',
    });
    // (c)
    const before = await gw.report<{ cpuMicros: number; rss: number; peakRss: number }>();
    const started = performance.now();
    const res = await fetch(`${base(gw)}/api/v1/public-data/datasets/${SLUG}/rows.csv`);
    let lines = 0;
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const b of chunk) if (b === 10) lines++;
    }
    const exportSeconds = (performance.now() - started) / 1000;
    const during = await gw.report<{ cpuMicros: number; rss: number; peakRss: number }>();
    if (lines !== rows + 1)
      throw new Error(`export: ${String(lines)} lines for ${String(rows)} rows`);
    const exportRowsPerS = rows / exportSeconds;
    const rssGrowthMb = (during.peakRss - before.rss) / 1024 / 1024;
    process.stderr.write(
      `export: ${exportRowsPerS.toFixed(0)} rows/s, ${(bytes / 1e6).toFixed(1)} MB, RSS +${rssGrowthMb.toFixed(1)} MB\n`,
    );

    const report = {
      rows,
      durationSeconds: duration,
      importSeconds,
      page: {
        path,
        app: pageApp,
        raw: pageRaw,
        ratio: pageApp.requestsPerSecond / pageRaw.requestsPerSecond,
        steady: { ...pageSteady, appAfterSaturation },
      },
      cached: {
        app: cachedApp,
        bare: cachedBare,
        ratio: cachedApp.requestsPerSecond / cachedBare.requestsPerSecond,
      },
      export: {
        rowsPerSecond: exportRowsPerS,
        bytes,
        seconds: exportSeconds,
        rssGrowthMb,
        peakRssMb: during.peakRss / 1024 / 1024,
      },
      targets: TARGETS,
      met: {
        pageP99: pageSteady.app.p99 <= TARGETS.p99Ms,
        pageRatio: pageApp.requestsPerSecond / pageRaw.requestsPerSecond >= TARGETS.pageRatio,
        cachedRatio:
          cachedApp.requestsPerSecond / cachedBare.requestsPerSecond >= TARGETS.cachedRatio,
        exportRate: exportRowsPerS >= TARGETS.exportRowsPerS,
        exportRss: rssGrowthMb < TARGETS.rssGrowthMb,
      },
    };
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('public-data.json', dir), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const c of children) await c.stop();
    await platform.close();
    if (!keep) {
      await admin(`drop database if exists ${DATABASE} with (force)`);
      await rm(storageDir, { recursive: true, force: true });
    }
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) await main();
