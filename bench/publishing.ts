/**
 * Publishing benchmark (issue 16): 10,000 targets due within one minute across 100 accounts on the
 * three fake platforms (test/fakes/social, in this process), published by 2 worker processes
 * (`node src/main.ts worker`), with 1 % of publishing writes failing transiently (503) and 0.5 %
 * creating the post then dropping the connection (an unknown outcome).
 *
 * Reports, counted from what the fakes received (`GET /_fake/posts`) against the targets' rows:
 * duplicates (a marker on a platform twice), misses (recorded published but not on the platform,
 * on the platform but not recorded, or due and never settled), targets held by a quota (never
 * sent: YouTube allows 6 uploads a day per channel), whether any account's quota was exceeded,
 * publish lag p50/p99 (scheduled time to published) and throughput.
 *
 * A scratch database `gw_bench_publishing` on `BENCH_DATABASE_URL` (dropped at the end); Redis at
 * `REDIS_URL` (default 127.0.0.1:6379) shares the quotas between the workers; `BENCH_REDIS=off`
 * runs without it (then each worker counts quotas alone: only right with one worker).
 * Scale: `BENCH_TARGETS` (default 10,000), `BENCH_ACCOUNTS` (100), `BENCH_WORKERS` (2),
 * `BENCH_WINDOW_S` (60), `BENCH_CONCURRENCY` (per platform queue and worker, 16).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { buildApp, enabledModules } from '../src/app.ts';
import { publishingApp } from '../src/apps/publishing/index.ts';
import { invisibleMarker, markerTag } from '../src/apps/publishing/platforms/marker.ts';
import type { PlatformId } from '../src/apps/publishing/platforms/types.ts';
import { publishingRuntime } from '../src/apps/publishing/runtime.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { migrateToLatest } from '../src/platform/db/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { jpeg, multipart } from '../test/fixtures/files/samples.ts';
import { LogCapture } from '../test/helpers/app.ts';
import { createUser, signIn, bearer } from '../test/helpers/identity.ts';
import { freePort } from '../test/helpers/process.ts';
import {
  connectFakeAccount,
  publishingTestConfig,
  publishingTestOverrides,
  startFakePlatforms,
  type FakePlatforms,
} from '../test/helpers/publishing.ts';

const SERVER = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DATABASE = 'gw_bench_publishing';
const TARGETS = Number(process.env.BENCH_TARGETS ?? 10_000);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 100);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_S ?? 60) * 1000;
const CONCURRENCY = process.env.BENCH_CONCURRENCY ?? '16';
const REDIS_URL =
  process.env.BENCH_REDIS === 'off'
    ? undefined
    : (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const TRANSIENT_RATE = 0.01;
const UNKNOWN_RATE = 0.005;
const LAG_P99_TARGET_MS = 5_000;
const PLATFORMS: readonly PlatformId[] = ['instagram', 'facebook', 'youtube'];

const root = join(import.meta.dirname, '..');
// Adds the publishing app to the workers' app list (until src/apps/index.ts lists it).
const preload = `data:text/javascript,${encodeURIComponent(
  `import { allApps } from ${JSON.stringify(pathToFileURL(join(root, 'src/apps/index.ts')).href)};
   import { publishingApp } from ${JSON.stringify(pathToFileURL(join(root, 'src/apps/publishing/index.ts')).href)};
   if (!allApps.includes(publishingApp)) allApps.push(publishingApp);`,
)}`;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client(SERVER);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function dbUrl(): string {
  const url = new URL(SERVER);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

/** The smallest MP4 the files area recognises (an `ftyp` box): YouTube's upload. */
const mp4 = () =>
  Buffer.concat([
    Buffer.from([0, 0, 0, 0x18]),
    Buffer.from('ftypmp42', 'latin1'),
    Buffer.from([0, 0, 0, 0]),
    Buffer.from('mp42isom', 'latin1'),
    Buffer.alloc(1024),
  ]);

async function startWorker(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
  const port = await freePort();
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...env,
    PORT: String(port),
    HOST: '127.0.0.1',
  };
  delete childEnv.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--import', preload, 'src/main.ts', 'worker'], {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = once(child, 'exit');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('a worker exited during start');
    if (Date.now() > deadline) throw new Error('a worker did not become ready');
    const ok = await fetch(`http://127.0.0.1:${String(port)}/health/ready`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, exited };
    await sleep(200);
  }
}

interface TargetRow {
  id: string;
  platform: PlatformId;
  status: string;
  account_external: string;
  account_id: string;
  scheduled_at: Date;
  published_at: Date | null;
  external_id: string | null;
  due_at: Date | null;
  attempts: number;
}

export async function main(): Promise<void> {
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  const dir = await mkdtemp(join(tmpdir(), 'gw-bench-pub-'));
  let fakes: FakePlatforms | undefined;
  const workers: { child: ChildProcess; exited: Promise<unknown> }[] = [];
  try {
    fakes = await startFakePlatforms();
    const overrides = {
      DATABASE_URL: dbUrl(),
      STORAGE_LOCAL_DIR: dir,
      PUBLIC_URL: 'http://127.0.0.1:1',
      LOG_LEVEL: 'warn',
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_POOL_MAX: '10',
      PUBLISHING_HTTP_TIMEOUT_MS: '3000',
      PUBLISHING_RETRY_INITIAL: '1s',
      PUBLISHING_RETRY_MAX: '5s',
      PUBLISHING_INSTAGRAM_CONCURRENCY: CONCURRENCY,
      PUBLISHING_FACEBOOK_CONCURRENCY: CONCURRENCY,
      PUBLISHING_YOUTUBE_CONCURRENCY: CONCURRENCY,
      ...(REDIS_URL ? { REDIS_URL } : {}),
    };
    const config = publishingTestConfig(fakes, overrides);
    const platform = await createPlatform(config, {
      modules: enabledModules(config, [publishingApp]),
      redis: null,
      work: false,
      logDestination: new LogCapture(),
    });
    await migrateToLatest(platform.database.db, allMigrations([publishingApp]));
    const app = await buildApp(config, { platform, apps: [publishingApp] });
    await app.ready();
    const h = { tdb: { database: platform.database }, config } as Parameters<typeof createUser>[0];

    // Users with their accounts (spread over the platforms) and one image and one video each.
    process.stdout.write(`setting up ${fmt(ACCOUNTS)} accounts…\n`);
    const perUser = 10;
    const owners: { headers: Record<string, string>; image: string; video: string }[] = [];
    const accounts: { id: string; platform: PlatformId; owner: number }[] = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const u = Math.floor(a / perUser);
      if (!owners[u]) {
        const user = await createUser(h);
        const token = (await signIn(app, user)).accessToken;
        const headers = bearer(token);
        const upload = async (name: string, type: string, data: Buffer) => {
          const form = multipart([
            { name: 'purpose', data: 'publishing.media' },
            { name: 'file', filename: name, contentType: type, data },
          ]);
          const res = await app.inject({
            method: 'POST',
            url: '/api/v1/files',
            headers: { ...headers, 'content-type': form.contentType },
            payload: form.body,
          });
          if (res.statusCode !== 201) throw new Error(`upload: ${res.statusCode} ${res.body}`);
          return res.json<{ id: string }>().id;
        };
        owners[u] = {
          headers: { ...headers, token },
          image: await upload('a.jpg', 'image/jpeg', await jpeg(400, 400)),
          video: await upload('a.mp4', 'video/mp4', mp4()),
        };
      }
      const owner = owners[u] as { headers: Record<string, string> };
      const p = PLATFORMS[a % PLATFORMS.length] as PlatformId;
      const acc = await connectFakeAccount(app, owner.headers.token as string, p);
      accounts.push({ id: acc.id, platform: p, owner: u });
    }

    // The posts: one target each, due evenly over the window, which starts once all are made.
    const createBudgetMs = Math.max(15_000, TARGETS * 12);
    const start = Date.now() + createBudgetMs;
    process.stdout.write(
      `creating ${fmt(TARGETS)} posts (window opens in ${fmt(createBudgetMs / 1000)} s)…\n`,
    );
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < TARGETS) {
          const i = next++;
          const account = accounts[i % accounts.length] as (typeof accounts)[number];
          const owner = owners[account.owner] as (typeof owners)[number];
          const { token: _t, ...headers } = owner.headers;
          const media =
            account.platform === 'instagram'
              ? [owner.image]
              : account.platform === 'youtube'
                ? [owner.video]
                : [];
          const res = await app.inject({
            method: 'POST',
            url: '/api/v1/publishing/posts',
            headers,
            payload: {
              text: `bench post ${String(i)}`,
              mediaFileIds: media,
              targets: [
                {
                  accountId: account.id,
                  ...(account.platform === 'youtube'
                    ? { options: { title: `bench ${String(i)}` } }
                    : account.platform === 'instagram'
                      ? { options: {} }
                      : {}),
                },
              ],
              scheduledAt: new Date(start + Math.floor((i * WINDOW_MS) / TARGETS)).toISOString(),
              timeZone: 'UTC',
            },
          });
          if (res.statusCode !== 201)
            failures.push(`${String(res.statusCode)} ${res.body.slice(0, 300)}`);
        }
      }),
    );
    if (failures.length > 0)
      throw new Error(`${String(failures.length)} posts refused, first: ${failures[0]}`);
    if (Date.now() > start)
      process.stdout.write('warning: the window opened before every post was made\n');

    // The failure injection, then the workers.
    fakes.set('*', { transientRate: TRANSIENT_RATE, timeoutAfterCreateRate: UNKNOWN_RATE });
    const { FAKE_PLATFORMS_URL: _url, ...fakeEnv } = fakes.env;
    const env = {
      ...publishingTestOverrides(fakes, overrides),
      ...fakeEnv,
      APP_ENV: 'test',
      APP_SECRET: config.secrets.appSecret,
      ARGON2_MEMORY_KIB: '64',
      ARGON2_TIME_COST: '1',
      RATE_LIMIT_ENABLED: 'false',
    };
    for (let w = 0; w < WORKERS; w++) workers.push(await startWorker(env));
    process.stdout.write(
      `${String(WORKERS)} workers running; waiting for the window and the drain…\n`,
    );

    const pool = platform.database.pool;
    const unsettled = async () =>
      (
        await pool.query<{ n: number }>(
          `select count(*)::int as n from publishing_target
           where status = 'publishing' or (status = 'scheduled' and due_at <= now() + interval '10 seconds')`,
        )
      ).rows[0]?.n ?? 0;
    await sleep(Math.max(0, start + WINDOW_MS - Date.now()));
    const drainUntil = Date.now() + 180_000;
    while ((await unsettled()) > 0 && Date.now() < drainUntil) await sleep(500);
    const endedAt = new Date();

    // What the platforms received, against what we recorded.
    const received = (await (await fetch(`${fakes.url}/_fake/posts`)).json()) as Record<
      string,
      { id: string; accountId: string; markerHash: string | null }[]
    >;
    const onPlatform = new Map<string, { id: string; accountId: string }[]>();
    for (const list of Object.values(received))
      for (const post of list) {
        if (!post.markerHash) continue;
        onPlatform.set(post.markerHash, [...(onPlatform.get(post.markerHash) ?? []), post]);
      }
    const rows = (
      await pool.query<TargetRow>(
        `select t.id, t.platform, t.status, a.external_id as account_external, t.account_id,
           p.scheduled_at, t.published_at, t.external_id, t.due_at, t.attempts
         from publishing_target t join publishing_post p on p.id = t.post_id
         join publishing_account a on a.id = t.account_id`,
      )
    ).rows;
    let duplicates = 0;
    let recordedNotOnPlatform = 0;
    let onPlatformNotRecorded = 0;
    let unsettledDue = 0;
    let heldByQuota = 0;
    let failed = 0;
    let retried = 0;
    const known = new Set<string>();
    const lags: number[] = [];
    for (const t of rows) {
      const marker = t.platform === 'youtube' ? markerTag(t.id) : invisibleMarker(t.id);
      known.add(marker);
      const copies = onPlatform.get(marker)?.length ?? 0;
      if (copies > 1) duplicates += copies - 1;
      if (t.attempts > 1) retried += 1;
      if (t.status === 'published') {
        if (copies === 0) recordedNotOnPlatform += 1;
        if (t.published_at) lags.push(t.published_at.getTime() - t.scheduled_at.getTime());
      } else {
        if (copies > 0) onPlatformNotRecorded += 1;
        if (t.status === 'failed') failed += 1;
        else if (t.status === 'scheduled' && t.due_at && t.due_at > endedAt) heldByQuota += 1;
        else unsettledDue += 1;
      }
    }
    let strays = 0;
    for (const [marker, list] of onPlatform) if (!known.has(marker)) strays += list.length;
    const misses = recordedNotOnPlatform + onPlatformNotRecorded + unsettledDue + failed;

    // Quotas: posts per account on each platform never above the adapter's publish limit (the
    // run is far shorter than every quota's period).
    const rt = publishingRuntime(platform);
    const perAccount = new Map<string, number>();
    for (const [p, list] of Object.entries(received))
      for (const post of list)
        perAccount.set(
          `${p}:${post.accountId}`,
          (perAccount.get(`${p}:${post.accountId}`) ?? 0) + 1,
        );
    let quotaExceeded = 0;
    for (const [key, n] of perAccount) {
      const p = key.split(':')[0] as PlatformId;
      const limit = Math.min(...(rt.adapters.get(p)?.quotas.map((q) => q.limit) ?? [Infinity]));
      if (n > limit) quotaExceeded += 1;
    }

    const sorted = lags.sort((a, b) => a - b);
    const published = sorted.length;
    const firstDue = start;
    const lastPublished = Math.max(...rows.map((r) => r.published_at?.getTime() ?? 0));
    const throughput = published / Math.max(1, (lastPublished - firstDue) / 1000);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      settings: {
        targets: TARGETS,
        accounts: ACCOUNTS,
        workers: WORKERS,
        windowSeconds: WINDOW_MS / 1000,
        concurrency: Number(CONCURRENCY),
        redis: REDIS_URL !== undefined,
        transientRate: TRANSIENT_RATE,
        unknownOutcomeRate: UNKNOWN_RATE,
      },
      published,
      heldByQuota,
      retried,
      duplicates,
      misses,
      missDetail: { recordedNotOnPlatform, onPlatformNotRecorded, unsettledDue, failed, strays },
      quotaExceeded,
      lagMs: { p50, p99, max: sorted.at(-1) ?? NaN },
      throughputPerSecond: throughput,
    };
    process.stdout.write(
      [
        `\n## Publishing (${process.version}, ${String(cpus().length)} cores, ${fmt(TARGETS)} targets over ${String(WINDOW_MS / 1000)} s, ${String(ACCOUNTS)} accounts, ${String(WORKERS)} workers, concurrency ${CONCURRENCY} per queue)\n`,
        '| Measurement | Figure | Target |',
        '| --- | ---: | ---: |',
        `| published | ${fmt(published)} | |`,
        `| held by a quota (never sent) | ${fmt(heldByQuota)} | |`,
        `| needed more than one call (injected failures, unknown outcomes) | ${fmt(retried)} | |`,
        `| duplicates on the platforms | ${fmt(duplicates)} | 0 ${duplicates === 0 ? '(met)' : '(missed)'} |`,
        `| misses | ${fmt(misses)} | 0 ${misses === 0 ? '(met)' : '(missed)'} |`,
        `| accounts over a quota | ${fmt(quotaExceeded)} | 0 ${quotaExceeded === 0 ? '(met)' : '(missed)'} |`,
        `| publish lag p50 | ${fmt(p50)} ms | |`,
        `| publish lag p99 | ${fmt(p99)} ms | ≤ ${fmt(LAG_P99_TARGET_MS)} ${p99 <= LAG_P99_TARGET_MS ? '(met)' : '(missed)'} |`,
        `| throughput | ${throughput.toFixed(1)} targets/s | |`,
        '',
        `misses: ${JSON.stringify(report.missDetail)}`,
        '',
      ].join('\n'),
    );
    const out = new URL('./results/', import.meta.url);
    await mkdir(out, { recursive: true });
    await writeFile(new URL('publishing.json', out), `${JSON.stringify(report, null, 2)}\n`);
    await app.close();
    await platform.close();
  } finally {
    for (const w of workers) {
      w.child.kill('SIGTERM');
      await Promise.race([w.exited, sleep(15_000).then(() => w.child.kill('SIGKILL'))]);
    }
    await fakes?.close();
    await rm(dir, { recursive: true, force: true });
    await admin(`drop database if exists ${DATABASE} with (force)`);
  }
}

if (import.meta.main) await main();
